#!/usr/bin/env bash
# Local platform: Docker engine + the project's registry on 127.0.0.1:5000 (Debian packages, no auth).
# Idempotent: installs only missing packages, starts only what is not already answering.
#   up                 install what is missing, start dockerd and the registry, wait until both answer
#   down [--docker]    stop the registry; --docker also stops a dockerd that `up` started
#   status             report both; exit 0 only when both answer
set -euo pipefail

# shellcheck source=scripts/contract.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/contract.sh" # ROOT, EXIT_<NAME>, the stand-in names
readonly WORK="$ROOT/.work"
readonly LOGS="$WORK/logs"
readonly RUN="$WORK/run"
readonly REGISTRY_ADDR="127.0.0.1:5000"
readonly REGISTRY_CONFIG="$ROOT/scripts/registry.yml"
readonly REGISTRY_DATA="$WORK/registry"
readonly REGISTRY_PIDFILE="$RUN/registry.pid"
readonly DOCKERD_PIDFILE="$RUN/dockerd.pid"
readonly DOCKER_DEADLINE_SECONDS="${DOCKER_DEADLINE_SECONDS:-90}"
readonly REGISTRY_DEADLINE_SECONDS="${REGISTRY_DEADLINE_SECONDS:-30}"

log() { printf '[platform] %s\n' "$*" >&2; }
die() { printf 'platform: %s\n' "$2" >&2; exit "$1"; }

# Poll a command until it succeeds or the deadline passes.
wait_until() {
  local deadline=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || return 1
    sleep 0.5
  done
}

# Wait for a process we just started to answer; stop early when it has already exited.
wait_for_started() {
  local name=$1 pid=$2 deadline_seconds=$3 logfile=$4 check=$5 exit_code=$6
  local deadline=$((SECONDS + deadline_seconds))
  until "$check"; do
    [[ -z "$pid" ]] || kill -0 "$pid" 2>/dev/null || die "$exit_code" "$name exited at start-up (see $logfile)"
    ((SECONDS < deadline)) || die "$exit_code" "$name did not answer within ${deadline_seconds}s (see $logfile)"
    sleep 0.5
  done
  log "$name: ready"
}

is_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

ensure_packages() {
  # buildah: the reproducible builder of the serving image (scripts/builder.py).
  local wanted=(docker.io docker-registry buildah debootstrap debian-archive-keyring gpgv curl ca-certificates)
  # dockerd cannot load its default profile without the parser when the kernel enforces AppArmor.
  [[ "$(cat /sys/module/apparmor/parameters/enabled 2>/dev/null)" == Y ]] && wanted+=(apparmor)
  local missing=() pkg
  for pkg in "${wanted[@]}"; do is_installed "$pkg" || missing+=("$pkg"); done
  ((${#missing[@]} == 0)) && return 0
  log "installing ${missing[*]}"
  local install=(apt-get install -y -q --no-install-recommends "${missing[@]}")
  # Try the current package lists first so a caller that just ran `apt-get update` is not repeated.
  if ! DEBIAN_FRONTEND=noninteractive "${install[@]}" >>"$LOGS/apt.log" 2>&1; then
    apt-get update -q >>"$LOGS/apt.log" 2>&1 || die "$EXIT_DOWNLOAD_FAILED" "apt-get update failed (see $LOGS/apt.log)"
    DEBIAN_FRONTEND=noninteractive "${install[@]}" >>"$LOGS/apt.log" 2>&1 \
      || die "$EXIT_DOWNLOAD_FAILED" "could not install ${missing[*]} (see $LOGS/apt.log)"
  fi
  # The package's own service listens on :5000 with htpasswd auth; ours replaces it.
  if [[ -d /run/systemd/system ]] && systemctl is-enabled --quiet docker-registry 2>/dev/null; then
    systemctl disable --now docker-registry >/dev/null 2>&1
  fi
}

docker_answers() { docker info >/dev/null 2>&1; }

start_docker() {
  docker_answers && { log "docker: already running"; return 0; }
  local pid="" logfile="$LOGS/dockerd.log"
  if [[ -d /run/systemd/system ]]; then
    log "docker: starting via systemd"
    logfile="journalctl -u docker"
    systemctl start docker || die "$EXIT_INFRASTRUCTURE" "systemctl start docker failed ($logfile)"
  else
    log "docker: starting dockerd (log: $logfile)"
    setsid dockerd >>"$logfile" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >"$DOCKERD_PIDFILE"
  fi
  wait_for_started docker "$pid" "$DOCKER_DEADLINE_SECONDS" "$logfile" docker_answers "$EXIT_INFRASTRUCTURE"
}

registry_answers() { curl -fs --max-time 2 -o /dev/null "http://$REGISTRY_ADDR/v2/"; }

# The pid in the pidfile, when that process is still our registry.
registry_pid() {
  local pid
  pid="$(cat "$REGISTRY_PIDFILE" 2>/dev/null)" || return 1
  [[ -n "$pid" && "$(cat "/proc/$pid/comm" 2>/dev/null)" == docker-registry ]] || return 1
  echo "$pid"
}

start_registry() {
  if registry_pid >/dev/null; then
    wait_until "$REGISTRY_DEADLINE_SECONDS" registry_answers \
      || die "$EXIT_INFRASTRUCTURE" "registry (pid $(registry_pid)) runs but does not answer on $REGISTRY_ADDR"
    log "registry: already running on $REGISTRY_ADDR"
    return 0
  fi
  local answer
  answer="$(curl -s --max-time 2 -o /dev/null -w '%{http_code}' "http://$REGISTRY_ADDR/v2/" || true)"
  if [[ "$answer" == 200 ]]; then
    log "registry: $REGISTRY_ADDR already answers (started outside this checkout); using it"
    return 0
  fi
  [[ "$answer" == 000 ]] || die "$EXIT_INFRASTRUCTURE" "$REGISTRY_ADDR is taken by another service (GET /v2/ answered $answer)"
  mkdir -p "$REGISTRY_DATA"
  log "registry: starting on $REGISTRY_ADDR, data in $REGISTRY_DATA (log: $LOGS/registry.log)"
  # The config's storage path is relative; the absolute one comes from the environment override.
  REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY="$REGISTRY_DATA" \
    setsid docker-registry serve "$REGISTRY_CONFIG" >>"$LOGS/registry.log" 2>&1 </dev/null &
  echo $! >"$REGISTRY_PIDFILE"
  wait_for_started registry $! "$REGISTRY_DEADLINE_SECONDS" "$LOGS/registry.log" registry_answers "$EXIT_INFRASTRUCTURE"
}

stop_pid() {
  local name=$1 pid=$2
  log "$name: stopping pid $pid"
  kill "$pid" 2>/dev/null || return 0
  wait_until 30 bash -c "! kill -0 $pid" || die "$EXIT_INFRASTRUCTURE" "$name (pid $pid) did not stop within 30s"
}

cmd_up() {
  [[ $EUID -eq 0 ]] || die "$EXIT_BAD_INPUT" "run as root (installs packages, starts dockerd)"
  mkdir -p "$LOGS" "$RUN"
  ensure_packages
  start_docker
  start_registry
}

cmd_down() {
  local with_docker=0
  case "${1:-}" in
    "") ;;
    --docker) with_docker=1 ;;
    *) die "$EXIT_BAD_INPUT" "unknown option for down: $1 (expected --docker)" ;;
  esac
  local pid
  if pid="$(registry_pid)"; then stop_pid registry "$pid"; else log "registry: not running"; fi
  rm -f "$REGISTRY_PIDFILE"
  ((with_docker)) || return 0
  pid="$(cat "$DOCKERD_PIDFILE" 2>/dev/null || true)"
  if [[ -n "$pid" && "$(cat "/proc/$pid/comm" 2>/dev/null)" == dockerd ]]; then
    stop_pid dockerd "$pid"
  else
    log "dockerd: not started by this script; left running"
  fi
  rm -f "$DOCKERD_PIDFILE"
}

cmd_status() {
  local ok=0
  if docker_answers; then
    log "docker: running (server $(docker version --format '{{.Server.Version}}' 2>/dev/null))"
  else
    log "docker: not answering"; ok=1
  fi
  if registry_answers; then
    local pid; pid="$(registry_pid || echo "not started by this script")"
    log "registry: answering on $REGISTRY_ADDR (pid $pid, data $REGISTRY_DATA)"
  else
    log "registry: not answering on $REGISTRY_ADDR"; ok=1
  fi
  ((ok == 0)) || exit "$EXIT_INFRASTRUCTURE"
}

main() {
  local cmd="${1:-}"
  (($#)) && shift
  case "$cmd" in
    up) cmd_up "$@" ;;
    down) cmd_down "$@" ;;
    status) cmd_status "$@" ;;
    *) die "$EXIT_BAD_INPUT" "usage: $0 up | down [--docker] | status" ;;
  esac
}

main "$@"
