#!/usr/bin/env bash
# The cluster side of the Kubernetes path, with kubectl, the Argo Rollouts plugin and a KUBECONFIG (the deploy
# workflow's deploy-kubernetes job; nothing here runs without a cluster).
#   plugin                          install the kubectl plugin of the pinned Argo Rollouts release
#   kubeconfig                      write KUBECONFIG_CONTENT (a secret) to a private file for the next steps
#   deploy OVERLAY IMAGE            apply OVERLAY's objects, rendered for IMAGE, and wait for Argo's outcome
#   revert OVERLAY [IMAGE]          `undo` to the previous revision (or `set image` IMAGE), wait, promote;
#                                   DRY_RUN=true only says what
#   summary OVERLAY                 the Rollout as `kubectl argo rollouts get` draws it
# In a GitHub Actions job, what a later step needs goes into $GITHUB_PATH and $GITHUB_ENV, the summary into
# $GITHUB_STEP_SUMMARY. IMAGE is REPOSITORY@sha256:…; OVERLAY's manifests are rendered first (`make k8s-manifests`).
# Exit codes: refused (3) when Argo aborted the rollout (its analysis failed: traffic stays on or goes back to the
# stable release), bad input (2) for a spec Argo finds invalid, infrastructure (5) when kubectl fails or the
# outcome is not known within the timeout.
set -euo pipefail

# shellcheck source=scripts/contract.sh
source "$(dirname "${BASH_SOURCE[0]}")/contract.sh" # ROOT, EXIT_<NAME>
readonly PY="${PY:-$ROOT/.venv/bin/python}"
readonly TOOLS="$ROOT/.work/tools"
readonly RENDERED="${K8S_RENDERED:-$ROOT/artifacts/kubernetes}"
readonly TIMEOUT_SECONDS="${ROLLOUT_TIMEOUT_SECONDS:-900}"
readonly POLL_SECONDS="${ROLLOUT_POLL_SECONDS:-5}" # a remote controller's status, read over the API server
SETTLED=
_names="$(cd "$ROOT" && python3 -B -c '
from scripts.k8s import ARGO_ROLLOUTS_VERSION, ROLLOUT, SERVING_CONTAINER
print(f"readonly ARGO_VERSION={ARGO_ROLLOUTS_VERSION} ROLLOUT={ROLLOUT} CONTAINER={SERVING_CONTAINER}")
')"
eval "$_names"
unset _names

die() { printf 'k8s: %s\n' "$2" >&2; exit "$1"; }
rollouts() { kubectl argo rollouts "$@" || die "$EXIT_INFRASTRUCTURE" "kubectl argo rollouts $1 failed"; }
namespace() { (cd "$ROOT" && "$PY" -m scripts.k8s namespace "$1") || exit "$?"; }

plugin() {
  local base="https://github.com/argoproj/argo-rollouts/releases/download/$ARGO_VERSION"
  local binary="kubectl-argo-rollouts-linux-amd64"
  mkdir -p "$TOOLS" && cd "$TOOLS"
  curl --fail --silent --show-error --location --remote-name "$base/$binary" \
    --remote-name "$base/argo-rollouts-checksums.txt" ||
    die "$EXIT_DOWNLOAD_FAILED" "cannot download the Argo Rollouts $ARGO_VERSION kubectl plugin"
  sha256sum --check --ignore-missing --quiet argo-rollouts-checksums.txt ||
    die "$EXIT_DOWNLOAD_FAILED" "$binary does not match the release's checksums"
  install -m 0755 "$binary" kubectl-argo-rollouts
  rm -f "$binary" argo-rollouts-checksums.txt
  printf 'kubectl-argo-rollouts %s in %s\n' "$ARGO_VERSION" "$TOOLS"
  [[ -z "${GITHUB_PATH:-}" ]] || printf '%s\n' "$TOOLS" >>"$GITHUB_PATH"
}

kubeconfig() {
  [[ -n "${KUBECONFIG_CONTENT:-}" ]] ||
    die "$EXIT_BAD_INPUT" "no kubeconfig: DEPLOY_TARGET is kubernetes, so the production environment needs the secret KUBECONFIG"
  local file="${RUNNER_TEMP:-$ROOT/.work}/kubeconfig"
  (umask 077 && printf '%s\n' "$KUBECONFIG_CONTENT" >"$file")
  printf 'kubeconfig written to %s\n' "$file"
  [[ -z "${GITHUB_ENV:-}" ]] || printf 'KUBECONFIG=%s\n' "$file" >>"$GITHUB_ENV"
}

summary() {
  local ns drawing
  ns="$(namespace "$1")"
  drawing="$(rollouts get rollout "$ROLLOUT" --namespace "$ns" --no-color)"
  printf '%s\n' "$drawing"
  local fence='```'
  [[ -z "${GITHUB_STEP_SUMMARY:-}" ]] ||
    printf '### Rollout %s/%s on Kubernetes\n\n%s\n%s\n%s\n' "$ns" "$ROLLOUT" "$fence" "$drawing" "$fence" \
      >>"$GITHUB_STEP_SUMMARY"
}

# Poll the controller until the rollout settles; SETTLED says how: `healthy` (promoted) or `paused` (a blue/green
# release proven and waiting for `kubectl argo rollouts promote`; a canary's timed pauses are not settled).
# Degraded ends it with the exit code naming why: aborted (its analysis failed; traffic is on the stable
# release) 3, an invalid spec 2, no progress within the Rollout's deadline 5.
wait_settled() {
  local ns=$1 deadline=$((SECONDS + TIMEOUT_SECONDS)) status
  while :; do
    # A degraded rollout makes the command fail; its first line still names the status.
    status="$(kubectl argo rollouts status "$ROLLOUT" --namespace "$ns" --watch=false 2>&1)" || true
    case "$status" in
      Healthy*) SETTLED=healthy; printf 'rollout %s/%s is healthy\n' "$ns" "$ROLLOUT"; return 0 ;;
      "Paused - BlueGreenPause"*) SETTLED=paused; printf 'rollout %s/%s is proven and paused\n' "$ns" "$ROLLOUT"; return 0 ;;
      *InvalidSpec*) die "$EXIT_BAD_INPUT" "rollout $ns/$ROLLOUT has an invalid spec: $(tr '\n' ' ' <<<"$status")" ;;
      *ProgressDeadlineExceeded* | *TimedOut*)
        die "$EXIT_INFRASTRUCTURE" "rollout $ns/$ROLLOUT made no progress: $(tr '\n' ' ' <<<"$status")" ;;
      *Degraded*) die "$EXIT_REFUSED" "rollout $ns/$ROLLOUT aborted: $(tr '\n' ' ' <<<"$status")" ;;
      Progressing* | Paused*) ;;
      *) die "$EXIT_INFRASTRUCTURE" "cannot read rollout $ns/$ROLLOUT: $(tr '\n' ' ' <<<"$status")" ;;
    esac
    ((SECONDS < deadline)) || die "$EXIT_INFRASTRUCTURE" "rollout $ns/$ROLLOUT not settled within ${TIMEOUT_SECONDS}s: $status"
    sleep "$POLL_SECONDS"
  done
}

# The rendered overlay, applied whole: the Rollout carries the verified digest, so its image change starts the
# rollout, and every other change of the checkout (strategy, resources, probes, Services, analysis) goes with it.
deploy() {
  local overlay=$1 image=$2 ns manifest="$RENDERED/$1.yaml"
  [[ -f "$manifest" ]] || die "$EXIT_BAD_INPUT" "$manifest is missing: run \`make k8s-manifests\` first"
  grep -qF "image: $image" "$manifest" || die "$EXIT_BAD_INPUT" "$manifest was not rendered for $image"
  ns="$(namespace "$overlay")"
  kubectl apply --filename "$manifest" || die "$EXIT_INFRASTRUCTURE" "kubectl apply of $manifest failed"
  # Deploying again what Argo aborted changes no spec: without a retry it would stay aborted.
  if [[ "$(kubectl get rollout "$ROLLOUT" --namespace "$ns" --output 'jsonpath={.status.abort}')" == true ]]; then
    rollouts retry rollout "$ROLLOUT" --namespace "$ns"
  fi
  wait_settled "$ns"
  [[ "$SETTLED" != paused ]] ||
    printf 'promote it with: kubectl argo rollouts promote %s -n %s\n' "$ROLLOUT" "$ns"
}

# Back to the previous revision (or IMAGE) through the same analysis; a revert is someone's decision already
# (the workflow runs in the production environment), so a proven release paused for promotion is promoted.
revert() {
  local overlay=$1 image=${2:-} ns what
  ns="$(namespace "$overlay")"
  if [[ -n "$image" ]]; then what="set $CONTAINER=$image"; else what="undo to the previous revision"; fi
  if [[ "${DRY_RUN:-false}" == true ]]; then
    printf 'dry run: would %s in %s; nothing changed\n' "$what" "$ns"
    rollouts get rollout "$ROLLOUT" --namespace "$ns" --no-color
    return 0
  fi
  if [[ -n "$image" ]]; then
    rollouts set image "$ROLLOUT" "$CONTAINER=$image" --namespace "$ns"
  else
    rollouts undo "$ROLLOUT" --namespace "$ns"
  fi
  wait_settled "$ns"
  if [[ "$SETTLED" == paused ]]; then
    rollouts promote "$ROLLOUT" --namespace "$ns"
    wait_settled "$ns"
  fi
}

case "${1:-}" in
  plugin) plugin ;;
  kubeconfig) kubeconfig ;;
  deploy) [[ $# -eq 3 ]] || die "$EXIT_BAD_INPUT" "usage: $0 deploy OVERLAY IMAGE"; deploy "$2" "$3" ;;
  revert) [[ $# -ge 2 ]] || die "$EXIT_BAD_INPUT" "usage: $0 revert OVERLAY [IMAGE]"; revert "$2" "${3:-}" ;;
  summary) [[ $# -eq 2 ]] || die "$EXIT_BAD_INPUT" "usage: $0 summary OVERLAY"; summary "$2" ;;
  *) die "$EXIT_BAD_INPUT" "usage: $0 plugin|kubeconfig|deploy|revert|summary …" ;;
esac
