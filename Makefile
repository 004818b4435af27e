# Every CI/CD step is one of these targets; workflows call them, so local runs and GitHub run the same code.
.DEFAULT_GOAL := help
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

VENV ?= .venv
PY := $(VENV)/bin/python
REGISTRY ?= 127.0.0.1:5000
PART ?= patch
BASELINE ?=
IMAGE ?=
TO ?=
ARTIFACTS ?= artifacts

.PHONY: help
help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z0-9-]+:.*## / {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# A stamp, not $(PY): that is a symlink, and make reads its time from the interpreter it points to (older
# than any checkout, so the venv was rebuilt every time; `touch` on it re-dated the system's Python).
VENV_READY := $(VENV)/.installed
$(VENV_READY): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	$(PY) -m pip check
	touch $@

.PHONY: setup
setup: $(VENV_READY) ## Create .venv with the pinned dependencies

SHELL_SCRIPTS := .ci/run $(wildcard scripts/*.sh scripts/bases/*/*.sh standin/*.sh)
DOCKERFILES := Dockerfile.train Dockerfile.serve $(wildcard scripts/*/Dockerfile scripts/bases/*/Dockerfile standin/Dockerfile)

.PHONY: lint
lint: $(VENV_READY) ## ruff + mypy + hadolint on every Dockerfile + shellcheck on every shell script
	$(VENV)/bin/ruff check ml serving scripts standin tests
	$(VENV)/bin/ruff format --check ml serving scripts standin tests
	$(VENV)/bin/mypy
	$(VENV)/bin/hadolint $(DOCKERFILES)
	$(VENV)/bin/shellcheck --external-sources $(SHELL_SCRIPTS)

.PHONY: test
test: $(VENV_READY) ## Run every test (unit, integration, Docker, registry)
	$(VENV)/bin/pytest

.PHONY: test-unit
test-unit: $(VENV_READY) ## Unit tests only: no Docker, no training
	$(VENV)/bin/pytest -m "not slow and not docker and not registry"

.PHONY: test-contract
test-contract: $(VENV_READY) ## TF Serving contract suite (stand-in by default; TFS_IMAGE=tensorflow/serving:<tag> for the real one)
	$(VENV)/bin/pytest tests/contract

.PHONY: train
train: $(VENV_READY) ## Train, evaluate and export the model into artifacts/
	$(PY) -m ml train --artifacts $(ARTIFACTS)

.PHONY: evaluate
evaluate: $(VENV_READY) ## Re-evaluate the exported model and print its metrics
	$(PY) -m ml evaluate --artifacts $(ARTIFACTS)

.PHONY: gate
gate: $(VENV_READY) ## Gate the candidate card against thresholds and BASELINE (path or URL)
	$(PY) -m ml gate --artifacts $(ARTIFACTS) $(if $(BASELINE),--baseline $(BASELINE))

.PHONY: bench
bench: $(VENV_READY) ## Benchmarks: prints measured figures side by side
	$(PY) -m tests.bench

.PHONY: clean
clean: ## Remove artifacts and caches (keeps .venv)
	rm -rf $(ARTIFACTS) .pytest_cache .mypy_cache .ruff_cache

.PHONY: platform
platform: ## Provision Docker + the local registry on 127.0.0.1:5000 (idempotent, root)
	bash scripts/platform.sh up

.PHONY: platform-down
platform-down: ## Stop the local registry (dockerd keeps running)
	bash scripts/platform.sh down

.PHONY: bases
bases: $(VENV_READY) ## Base images: official (as pinned) when pullable, else Debian stand-ins (FORCE=1 rebuilds)
	PYTHON=$(abspath $(PY)) OFFICIAL_PROXY=$(OFFICIAL_PROXY_IMAGE) OFFICIAL_MONITORING=$(OFFICIAL_MONITORING_IMAGE) bash scripts/bases.sh

.PHONY: bump
bump: $(VENV_READY) ## Bump VERSION: make bump PART=major|minor|patch
	$(PY) -m scripts.version bump $(PART)

.PHONY: images
images: $(VENV_READY) ## Build serving + training images, tagged from VERSION + git (TFS_BASE/PYTHON_BASE override bases)
	$(PY) -m scripts.images build --registry $(REGISTRY) --artifacts $(ARTIFACTS) \
	  $(if $(TFS_BASE),--serving-base $(TFS_BASE)) $(if $(PYTHON_BASE),--training-base $(PYTHON_BASE))

.PHONY: push
push: $(VENV_READY) ## Push every tag to REGISTRY, release tag first; OVERWRITE=1 replaces an existing release
	$(PY) -m scripts.images push --registry $(REGISTRY) $(if $(OVERWRITE),--force)

.PHONY: verify-release
VERIFY_ARTIFACTS := .work/verify/artifacts
verify-release: $(VENV_READY) ## Retrain and rebuild this commit's serving image, compare it with REGISTRY's (VERSION=x.y.z)
	$(PY) -m ml train --artifacts $(VERIFY_ARTIFACTS)
	$(PY) -m scripts.images verify --registry $(REGISTRY) --artifacts $(VERIFY_ARTIFACTS) \
	  $(if $(VERSION),--expect-version $(VERSION))

.PHONY: inspect
inspect: $(VENV_READY) ## Tags and labels of both images, read from the registry's HTTP API
	$(PY) -m scripts.images inspect --registry $(REGISTRY)

# --- CI/CD: .github/workflows/ call the targets below (and those above) in the order `pipeline` runs them ---

RELEASE_VERSION = $(strip $(file < VERSION))
RELEASED_CARD := .work/released_model_card.json
# The serving image under REGISTRY, named by pipeline.toml: `$(call serving_image,TAG)` in a recipe's shell
# (never at parse time: .venv may not exist yet). TAG defaults to what `make images` tagged: the release tag
# (VERSION) on the default branch, else sha-<7>.
serving_image = $(PY) -m scripts.images ref --registry $(REGISTRY) $(if $(1),--tag $(1))
# Only this repository's release workflow, run on its default branch, through GitHub's OIDC issuer, signs
# releases: a release.yml run on any other branch or tag is not a signer.
SIGNER_ISSUER := https://token.actions.githubusercontent.com
DEFAULT_BRANCH ?= main
SIGNER_IDENTITY = ^https://github\.com/$(subst .,\.,$(GITHUB_REPOSITORY))/\.github/workflows/release\.yml@refs/heads/$(subst .,\.,$(DEFAULT_BRANCH))$$

.PHONY: gate-released
gate-released: $(VENV_READY) ## Gate against the card of REGISTRY's `latest` serving image (thresholds only if none)
	@mkdir -p $(dir $(RELEASED_CARD)) && rm -f $(RELEASED_CARD)
	@latest=$$($(call serving_image,latest)) && \
	$(PY) -m scripts.images card "$$latest" --output $(RELEASED_CARD) --missing-ok
	@if [ -f $(RELEASED_CARD) ]; then $(MAKE) --no-print-directory gate BASELINE=$(RELEASED_CARD); \
	else $(MAKE) --no-print-directory gate; fi

.PHONY: sign
sign: ## Keyless cosign signature of IMAGE=REPOSITORY@sha256:… (a GitHub Actions job with id-token: write)
	$(if $(IMAGE),,$(error IMAGE=REGISTRY/REPOSITORY@sha256:DIGEST is required))
	cosign sign --yes $(IMAGE)

.PHONY: github-release
github-release: ## Tag vVERSION at GITHUB_SHA and publish a GitHub Release with the card, report and plots (gh)
	$(if $(GITHUB_SHA),,$(error GITHUB_SHA, the commit to tag, is required))
	gh release create v$(RELEASE_VERSION) --target $(GITHUB_SHA) --title v$(RELEASE_VERSION) \
	  --notes-file $(ARTIFACTS)/report.md $(if $(findstring -,$(RELEASE_VERSION)),--prerelease) \
	  $(ARTIFACTS)/model_card.json $(ARTIFACTS)/report.md $(wildcard $(ARTIFACTS)/*.png)

.PHONY: deploy-release
# The digest is pinned before verifying and deployed as verified: a tag could move, or name a local image.
deploy-release: $(VENV_READY) ## Check VERSION's image under REGISTRY was signed by this repository's release.yml, deploy it
	$(if $(GITHUB_REPOSITORY),,$(error GITHUB_REPOSITORY=OWNER/NAME, the repository that signs releases, is required))
	@release=$$($(call serving_image,$(RELEASE_VERSION))) && docker pull --quiet "$$release" >/dev/null && \
	pinned=$$(docker image inspect --format '{{range .RepoDigests}}{{println .}}{{end}}' "$$release" \
	  | grep -m1 "^$${release%:*}@sha256:") && \
	cosign verify --certificate-oidc-issuer $(SIGNER_ISSUER) \
	  --certificate-identity-regexp '$(SIGNER_IDENTITY)' "$$pinned" >/dev/null && \
	echo "signature of $$pinned verified: signed by $(GITHUB_REPOSITORY)'s release workflow" && \
	$(MAKE) --no-print-directory deploy IMAGE="$$pinned"

.PHONY: pipeline
pipeline: ## CI/CD on this machine: platform, bases, train, gate, images, push, Kubernetes manifests, deploy, status
	$(MAKE) --no-print-directory platform
	$(MAKE) --no-print-directory bases
	$(MAKE) --no-print-directory train
	$(MAKE) --no-print-directory gate-released
	$(MAKE) --no-print-directory images
	$(MAKE) --no-print-directory push
	$(MAKE) --no-print-directory k8s-manifests k8s-validate
	$(MAKE) --no-print-directory deploy
	$(MAKE) --no-print-directory status

.PHONY: act
act: $(VENV_READY) ## The workflows under act, event by event, one row per job (ACTIONS=snapshots folder or .tar.xz, EVENTS=…)
	$(MAKE) --no-print-directory platform
	$(MAKE) --no-print-directory bases
	$(PY) -m scripts.act $(if $(ACTIONS),--actions '$(ACTIONS)') $(if $(EVENTS),--events '$(EVENTS)')

.PHONY: k8s-manifests
# SERVING_IMAGE and TRAINING_IMAGE reach the command through the environment (make exports them).
k8s-manifests: $(VENV_READY) ## Render deploy/kubernetes/ into artifacts/kubernetes/ for what `make images` tagged (by REGISTRY's digests, or SERVING_IMAGE/TRAINING_IMAGE=REPOSITORY@sha256:…)
	built=$$($(call serving_image)) && $(PY) -m scripts.k8s render --registry $(REGISTRY) --tag "$${built##*:}" \
	  $(if $(SERVING_IMAGE),--serving "$$SERVING_IMAGE") $(if $(TRAINING_IMAGE),--training "$$TRAINING_IMAGE")

.PHONY: k8s-validate
k8s-validate: $(VENV_READY) ## Every rendered object against the Kubernetes schemas and the vendored Argo Rollouts CRDs (unknown fields are errors) and its references
	$(PY) -m scripts.k8s validate

# The cluster side (deploy.yml's deploy-kubernetes job; kubectl and a KUBECONFIG): scripts/k8s_rollout.sh.
# KUBE_OVERLAY reaches the shell through the environment, never spliced into a line.
KUBE_OVERLAY ?= production
export KUBE_OVERLAY
# $(call verified,KIND,SEMVER-IN-SHELL): KIND's image of that release under REGISTRY, by digest, once cosign verified
# the digest the tag names was signed by this repository's release workflow (cosign resolves the tag, once).
verified = ref=$$($(PY) -m scripts.images ref --registry $(REGISTRY) --kind $(1) --tag $(2)) && \
	signed=$$(cosign verify --certificate-oidc-issuer $(SIGNER_ISSUER) \
	  --certificate-identity-regexp '$(SIGNER_IDENTITY)' "$$ref" 2>/dev/null) || \
	{ echo "error: $$ref carries no signature of $(GITHUB_REPOSITORY)'s release workflow" >&2; exit 3; } && \
	echo "$${ref%:*}@$$($(PY) -c 'import json, sys; \
	  print(json.load(sys.stdin)[0]["critical"]["image"]["docker-manifest-digest"])' <<<"$$signed")"

.PHONY: k8s-verified-release
# RELEASE reaches the shell through the environment (make exports it), never spliced into the line.
k8s-verified-release: $(VENV_READY) ## SERVING_IMAGE=… and TRAINING_IMAGE=… lines (also into $GITHUB_ENV): RELEASE's (default VERSION's) images by digest, signatures verified
	$(if $(GITHUB_REPOSITORY),,$(error GITHUB_REPOSITORY=OWNER/NAME, the repository that signs releases, is required))
	@release="$${RELEASE:-$(RELEASE_VERSION)}" && \
	serving=$$($(call verified,serving,"$$release")) && training=$$($(call verified,training,"$$release")) && \
	printf 'SERVING_IMAGE=%s\nTRAINING_IMAGE=%s\n' "$$serving" "$$training" | tee -a "$${GITHUB_ENV:-/dev/null}"

.PHONY: k8s-plugin
k8s-plugin: ## Install the Argo Rollouts kubectl plugin (the vendored CRDs' release) into .work/tools/ (also onto $GITHUB_PATH)
	@scripts/k8s_rollout.sh plugin

.PHONY: k8s-kubeconfig
k8s-kubeconfig: ## KUBECONFIG_CONTENT (a secret) into a private file, named in $GITHUB_ENV as KUBECONFIG
	@scripts/k8s_rollout.sh kubeconfig

.PHONY: k8s-rollout
k8s-rollout: ## On the cluster: apply KUBE_OVERLAY's objects rendered for SERVING_IMAGE (its Rollout's image), wait for Argo's outcome
	$(if $(SERVING_IMAGE),,$(error SERVING_IMAGE=REPOSITORY@sha256:DIGEST is required))
	scripts/k8s_rollout.sh deploy "$$KUBE_OVERLAY" "$$SERVING_IMAGE"

.PHONY: k8s-revert
k8s-revert: ## On the cluster: undo KUBE_OVERLAY's Rollout to its previous revision (or set image SERVING_IMAGE), promote; DRY_RUN=1 only says what
	DRY_RUN=$(if $(filter 1 true,$(DRY_RUN)),true,false) scripts/k8s_rollout.sh revert "$$KUBE_OVERLAY" \
	  $(if $(SERVING_IMAGE),"$$SERVING_IMAGE")

.PHONY: k8s-status
k8s-status: ## On the cluster: KUBE_OVERLAY's Rollout as `kubectl argo rollouts get` draws it (also into the job summary)
	@scripts/k8s_rollout.sh summary "$$KUBE_OVERLAY"

.PHONY: lint-workflows
lint-workflows: $(VENV_READY) ## zizmor (offline, default persona) + JSON schemas of the workflows and dependabot.yml
	$(VENV)/bin/zizmor --offline --no-progress .github/
	$(VENV)/bin/check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml
	$(VENV)/bin/check-jsonschema --builtin-schema vendor.dependabot .github/dependabot.yml

# Blue/green deploy on this Docker host (serving/). IMAGE defaults to what `make images` built; exit codes as
# the README's table says. PROXY_IMAGE, when set, replaces serving's default proxy image (ml/contract.py's
# PROXY_STANDIN, which `make bases` builds or tags).
PROXY_IMAGE ?=
PROMETHEUS_IMAGE ?=
# The official proxy image, pinned: `make bases` tags it as the stand-in's name where Docker Hub answers, and a
# deploy host gets only it (`make proxy-image`), not the bases a build needs.
OFFICIAL_PROXY_IMAGE := haproxy:3.0.5
# The official monitoring image, pinned: `make bases` tags it as the stand-in's name where Docker Hub answers.
OFFICIAL_MONITORING_IMAGE := prom/prometheus:v2.53.3
SERVING := $(PY) -m serving $(if $(PROXY_IMAGE),--proxy-image $(PROXY_IMAGE))

# $(call present_or_pulled,STAND-IN NAME IN ml/contract.py,OVERRIDE,OFFICIAL): the image a deploy host runs, under
# the name serving uses (OVERRIDE, else the stand-in's): present already, else the pinned official one pulled.
define present_or_pulled
image="$(2)"; image="$${image:-$$(python3 -B -c 'from ml.contract import $(1) as p; print(p)')}"; \
docker image inspect "$$image" >/dev/null 2>&1 && echo "$$image: present" || \
{ docker pull --quiet $(3) && docker tag $(3) "$$image" && echo "$$image: tagged from $(3)"; }
endef

.PHONY: proxy-image
proxy-image: ## The proxy image a deploy host needs: present already, else the pinned official one pulled
	@$(call present_or_pulled,PROXY_STANDIN,$(PROXY_IMAGE),$(OFFICIAL_PROXY_IMAGE))

.PHONY: monitoring-image
monitoring-image: ## The Prometheus image `make monitoring` needs: present already, else the pinned official one pulled
	@$(call present_or_pulled,MONITORING_STANDIN,$(PROMETHEUS_IMAGE),$(OFFICIAL_MONITORING_IMAGE))

.PHONY: deploy
# STEPS reaches the command through the environment (make exports it), never spliced into the shell line.
deploy: $(VENV_READY) ## Deploy IMAGE (default: what `make images` built) in STEPS (e.g. 10,50,100; default: config) with analysis and auto-revert
	image=$(if $(IMAGE),'$(IMAGE)',$$($(call serving_image))) && $(SERVING) deploy "$$image" $(if $(STEPS),--steps "$$STEPS")

.PHONY: revert
revert: $(VENV_READY) ## Put back the previous successful release (or TO=<semver>); DRY_RUN=1 only says what
	$(SERVING) revert $(if $(TO),--to $(TO)) $(if $(filter 1 true,$(DRY_RUN)),--dry-run)

.PHONY: smoke
smoke: $(VENV_READY) ## Pre-promotion analysis against the proxy (or REST=url GRPC=host:port) with IMAGE's smoke set
	image=$(if $(IMAGE),'$(IMAGE)',$$($(call serving_image))) && \
	$(SERVING) smoke $(if $(REST),--rest $(REST)) $(if $(GRPC),--grpc $(GRPC)) --image "$$image"

.PHONY: compare
# A, B and EVAL reach the command through the environment (make exports command-line variables), never spliced
# into the shell line.
compare: $(VENV_READY) ## Two releases side by side on the same requests: A=live|IMAGE (default live), B=IMAGE (default: what `make images` built), EVAL=x.npz
	b=$(if $(B),"$$B",$$($(call serving_image))) && \
	$(SERVING) compare $(if $(A),"$$A",live) "$$b" $(if $(EVAL),--eval "$$EVAL") --output $(ARTIFACTS)/compare

.PHONY: compare-released
# The pull request's report: its model against the released one in the real server. The registry's `latest` is
# the release a merge deployed last. When it cannot be pulled (a first release, a token that may not read it) or
# compared (exit 2 or 3: another input shape after a major bump, a release that does not load here), the card
# comparison in the gate's report stands and the page says why; only Docker failing (exit 5) fails the job.
RELEASED_REGISTRY ?= $(REGISTRY)
compare-released: $(VENV_READY) ## What `make images` built against RELEASED_REGISTRY's `latest`, into artifacts/compare/ (a notice when not comparable)
	@mkdir -p $(ARTIFACTS)/compare && b=$$($(call serving_image)) && \
	released=$$($(PY) -m scripts.images ref --registry $(RELEASED_REGISTRY) --tag latest) && code=0 && \
	if docker pull --quiet "$$released" >/dev/null 2>&1; then \
	  $(SERVING) compare "$$released" "$$b" --output $(ARTIFACTS)/compare || code=$$?; \
	  why="cannot be compared with it side by side (exit $$code, the integration job's log says why)"; \
	else code=7 why="cannot be pulled here, so it was not compared side by side in the server"; fi; \
	if [ $$code -ne 0 ]; then \
	  case $$code in 2|3|7) ;; *) exit $$code ;; esac; \
	  printf '%s\n\n%s\n' '<!-- release-comparison -->' \
	    "> **Notice:** the released model ($$released) $$why; the card comparison above stands." \
	    | tee $(ARTIFACTS)/compare/compare.md; \
	fi

.PHONY: status
status: $(VENV_READY) ## Active colour, release, health and recent deploy history
	$(SERVING) status

.PHONY: report
report: $(VENV_READY) ## Deploy history and monitor verdicts as Markdown + timeline in artifacts/deploy-report/
	$(SERVING) report

.PHONY: monitoring
monitoring: $(VENV_READY) ## Prometheus on 127.0.0.1:9090: scrapes the colours and the proxy, alert rules from pipeline.toml
	$(SERVING) monitoring $(if $(PROMETHEUS_IMAGE),--image $(PROMETHEUS_IMAGE))

.PHONY: monitor
# WINDOW and JSON reach the command through the environment (make exports them), never spliced into the shell line.
monitor: $(VENV_READY) ## One verdict on the live release: healthy/degraded/down; REVERT=1 puts the previous one back on failure; WINDOW=seconds; JSON=file gets the verdict as JSON
	$(SERVING) monitor $(if $(WINDOW),--window "$$WINDOW") $(if $(filter 1 true,$(REVERT)),--revert-on-failure) $(if $(JSON),--json >"$$JSON")
