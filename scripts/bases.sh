#!/usr/bin/env bash
# Base images the project's Dockerfiles build on. When Docker Hub answers, the official images are
# pulled and tagged with the local names; otherwise stand-ins are built from Debian bookworm:
#   local/debian:bookworm             debootstrap --variant=minbase rootfs, `docker import`
#   local/python:3.11                 behaves like python:3.11-slim   (scripts/bases/python/)
#   local/haproxy:standin             behaves like haproxy            (scripts/bases/haproxy/)
#   local/prometheus:standin          behaves like prom/prometheus    (scripts/bases/prometheus/)
#   local/tensorflow-serving:standin  standin/build.sh on local/python:3.11
# Idempotent: an image that exists (and is newer than its base) is kept unless FORCE=1.
# The rootfs tarball is cached in .work/bases; delete it to bootstrap afresh.
# None of these builds downloads over HTTPS (apt uses the http mirror with signed indexes), so no CA
# bundle is needed here; EXTRA_CA_BUNDLE stays in the environment of standin/build.sh.
set -euo pipefail

# shellcheck source=scripts/contract.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/contract.sh" # ROOT, EXIT_<NAME>, the stand-in names
readonly WORK="$ROOT/.work/bases"
readonly LOGS="$ROOT/.work/logs"
readonly CONTEXTS="$ROOT/scripts/bases"
readonly SERVING_BUILD="$ROOT/standin/build.sh"
readonly SUITE=bookworm
readonly MIRROR=http://deb.debian.org/debian
readonly ROOTFS_TAR="$WORK/debian-$SUITE-minbase.tar"
readonly FORCE="${FORCE:-0}"

readonly DEBIAN_IMAGE=local/debian:bookworm
readonly PYTHON_IMAGE=$TRAINING_STANDIN PROXY_IMAGE=$PROXY_STANDIN SERVING_IMAGE=$SERVING_STANDIN
readonly MONITORING_IMAGE=$MONITORING_STANDIN

# The pinned default of a Dockerfile's base ARG: what the release builds on, so what CI must test.
pinned_base() { sed -n "s/^ARG $2=\(.*\)\$/\1/p" "$ROOT/$1" | head -n 1; }

# Official counterparts, pinned as the release pins them; each is used instead of its stand-in when it can be
# pulled. The proxy's and Prometheus's pins are the Makefile's OFFICIAL_PROXY_IMAGE and
# OFFICIAL_MONITORING_IMAGE (`make bases` passes them).
readonly -A OFFICIAL=(
  ["$DEBIAN_IMAGE"]="${OFFICIAL_DEBIAN:-debian:bookworm-slim}"
  ["$PYTHON_IMAGE"]="$(pinned_base Dockerfile.train PYTHON_BASE)"
  ["$PROXY_IMAGE"]="${OFFICIAL_PROXY:?OFFICIAL_PROXY, the pinned proxy image, is required (make bases sets it)}"
  ["$MONITORING_IMAGE"]="${OFFICIAL_MONITORING:?OFFICIAL_MONITORING, the Prometheus pin, is required (make bases sets it)}"
  ["$SERVING_IMAGE"]="$(pinned_base Dockerfile.serve TFS_BASE)"
)

declare -a SUMMARY=()
declare -a REPLACED=() # "image old-id" for images rebuilt by this run

log() { printf '[bases] %s\n' "$*" >&2; }
die() { printf 'bases: %s\n' "$2" >&2; exit "$1"; }

image_exists() { docker image inspect "$1" >/dev/null 2>&1; }
created_ns() { date -d "$(docker image inspect -f '{{.Created}}' "$1")" +%s%N; }

# Build when forced, missing, or older than the image it was built from.
needs_build() {
  local image=$1 base=${2:-}
  [[ "$FORCE" == 1 ]] && return 0
  image_exists "$image" || return 0
  [[ -n "$base" ]] && (($(created_ns "$base") > $(created_ns "$image"))) && return 0
  log "$image: up to date (FORCE=1 rebuilds)"
  return 1
}

remember_previous() {
  image_exists "$1" && REPLACED+=("$1 $(docker image inspect -f '{{.Id}}' "$1")")
  return 0
}

# Rebuilt images leave their predecessors untagged; remove those, children first. One that is still in use
# (a container, or another tag) stays: docker refuses without --force.
remove_replaced() {
  local i image old
  for ((i = ${#REPLACED[@]} - 1; i >= 0; i--)); do
    read -r image old <<<"${REPLACED[i]}"
    [[ "$(docker image inspect -f '{{.Id}}' "$image")" == "$old" ]] && continue
    docker rmi "$old" >/dev/null 2>&1 && log "removed the image $image replaced (${old:7:12})"
  done
  return 0
}

record() {
  local image=$1 seconds=$2 how=$3 size
  size="$(docker image inspect -f '{{.Size}}' "$image")"
  SUMMARY+=("$(printf '%-34s %6ss %8s MB  %s' "$image" "$seconds" "$((size / 1000000))" "$how")")
}

# Log a step's output to its own file; on failure show the tail and stop: with the step's own exit code where
# it says more than "the build failed" (standin/build.sh's bad input or failed download).
run_logged() {
  local name=$1 status=0; shift
  local logfile="$LOGS/bases-$name.log"
  "$@" >"$logfile" 2>&1 || status=$?
  ((status == 0)) && return 0
  tail -n 30 "$logfile" >&2
  ((status == EXIT_BAD_INPUT || status == EXIT_DOWNLOAD_FAILED)) || status=$EXIT_BUILD_FAILED
  die "$status" "$name failed (full log: $logfile)"
}

docker_hub_answers() {
  [[ "$(curl -s -o /dev/null --max-time 5 -w '%{http_code}' https://registry-1.docker.io/v2/)" == 401 ]]
}

pull_official() {
  local image=$1 official=${OFFICIAL[$1]} started=$SECONDS
  docker pull -q "$official" >/dev/null 2>&1 || return 1
  docker tag "$official" "$image"
  log "$image: tagged from $official"
  record "$image" $((SECONDS - started)) "pulled $official"
}

ROOTFS_DIR=""
# debootstrap mounts /proc and /sys inside the target; a failure may leave them mounted.
remove_rootfs_dir() {
  [[ -n "$ROOTFS_DIR" && -d "$ROOTFS_DIR" ]] || return 0
  { findmnt -rno TARGET | grep -F "$ROOTFS_DIR/" || true; } | sort -r | xargs -r umount -l
  rm -rf "$ROOTFS_DIR"
}

# A minbase bookworm rootfs with the official image's apt/dpkg settings and current security updates.
bootstrap_rootfs() {
  local started=$SECONDS dir
  dir="$(mktemp -d "$WORK/rootfs.XXXXXX")"
  ROOTFS_DIR=$dir
  chmod 0755 "$dir" # becomes the image's /
  trap remove_rootfs_dir EXIT
  log "debootstrap $SUITE (minbase) from $MIRROR"
  run_logged debootstrap debootstrap --variant=minbase \
    --keyring=/usr/share/keyrings/debian-archive-keyring.gpg "$SUITE" "$dir" "$MIRROR"
  rm -f "$dir/etc/apt/sources.list"
  install -m 0644 "$CONTEXTS/debian/debian.sources" "$dir/etc/apt/sources.list.d/debian.sources"
  install -m 0644 "$CONTEXTS/debian/slim.dpkg.cfg" "$dir/etc/dpkg/dpkg.cfg.d/slim"
  install -m 0644 "$CONTEXTS/debian/container.apt.conf" "$dir/etc/apt/apt.conf.d/docker-container"
  cp /etc/resolv.conf "$dir/etc/resolv.conf"
  run_logged rootfs-upgrade chroot "$dir" /bin/sh -c \
    'export DEBIAN_FRONTEND=noninteractive && apt-get update -q && apt-get upgrade -y -q && apt-get clean'
  # Docker provides these at run time; the host's must not ship in the image.
  rm -rf "$dir"/var/lib/apt/lists/* "$dir/etc/resolv.conf" "$dir/etc/hostname"
  # What slim.dpkg.cfg keeps out of later installs, removed from the bootstrapped packages too.
  find "$dir/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete
  find "$dir/usr/share/doc" -mindepth 1 -type d -empty -delete
  rm -rf "$dir"/usr/share/{groff,info,linda,locale,man}/* "$dir"/usr/share/lintian/overrides/*
  tar --numeric-owner -C "$dir" -cf "$ROOTFS_TAR.partial" \
    --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' .
  mv "$ROOTFS_TAR.partial" "$ROOTFS_TAR"
  remove_rootfs_dir
  log "rootfs: $(du -m "$ROOTFS_TAR" | cut -f1) MB tarball in $((SECONDS - started))s"
}

build_debian() {
  local started=$SECONDS how="cached rootfs"
  if [[ ! -f "$ROOTFS_TAR" ]]; then
    bootstrap_rootfs
    how="debootstrap"
  fi
  docker import \
    --change 'CMD ["bash"]' \
    --change 'LABEL org.opencontainers.image.description="Debian bookworm minbase, stand-in for debian:bookworm-slim"' \
    "$ROOTFS_TAR" "$DEBIAN_IMAGE" >/dev/null
  log "$DEBIAN_IMAGE: imported"
  record "$DEBIAN_IMAGE" $((SECONDS - started)) "$how + docker import"
}

build_context() {
  local image=$1 context=$2 started=$SECONDS
  log "$image: building from scripts/bases/$context"
  run_logged "$context" docker build --build-arg "BASE=$DEBIAN_IMAGE" \
    --label "org.opencontainers.image.title=$image" -t "$image" "$CONTEXTS/$context"
  record "$image" $((SECONDS - started)) "docker build scripts/bases/$context"
}

build_serving() {
  local started=$SECONDS
  if [[ ! -f "$SERVING_BUILD" ]]; then
    log "$SERVING_IMAGE: skipped, ${SERVING_BUILD#"$ROOT/"} does not exist yet"
    return 0
  fi
  log "$SERVING_IMAGE: building with ${SERVING_BUILD#"$ROOT/"}"
  run_logged serving-standin bash "$SERVING_BUILD" "$PYTHON_IMAGE"
  image_exists "$SERVING_IMAGE" \
    || die "$EXIT_BUILD_FAILED" "${SERVING_BUILD#"$ROOT/"} finished without producing $SERVING_IMAGE"
  record "$SERVING_IMAGE" $((SECONDS - started)) "standin/build.sh"
}

main() {
  docker info >/dev/null 2>&1 || die "$EXIT_INFRASTRUCTURE" "docker is not answering (run: make platform)"
  mkdir -p "$WORK" "$LOGS"
  local image
  if docker_hub_answers; then
    for image in "$DEBIAN_IMAGE" "$PYTHON_IMAGE" "$PROXY_IMAGE" "$MONITORING_IMAGE" "$SERVING_IMAGE"; do
      needs_build "$image" || continue
      pull_official "$image" || die "$EXIT_DOWNLOAD_FAILED" "docker pull ${OFFICIAL[$image]} failed"
    done
  else
    log "Docker Hub does not answer: building stand-ins"
    for image in "$DEBIAN_IMAGE" "$PYTHON_IMAGE" "$PROXY_IMAGE" "$MONITORING_IMAGE" "$SERVING_IMAGE"; do
      remember_previous "$image"
    done
    if needs_build "$DEBIAN_IMAGE"; then build_debian; fi
    if needs_build "$PYTHON_IMAGE" "$DEBIAN_IMAGE"; then build_context "$PYTHON_IMAGE" python; fi
    if needs_build "$PROXY_IMAGE" "$DEBIAN_IMAGE"; then build_context "$PROXY_IMAGE" haproxy; fi
    if needs_build "$MONITORING_IMAGE" "$DEBIAN_IMAGE"; then build_context "$MONITORING_IMAGE" prometheus; fi
    if needs_build "$SERVING_IMAGE" "$PYTHON_IMAGE"; then build_serving; fi
    remove_replaced
  fi
  ((${#SUMMARY[@]})) && printf '%s\n' "built/pulled (image, seconds, size, how):" "${SUMMARY[@]}"
  return 0
}

main "$@"
