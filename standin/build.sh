#!/usr/bin/env bash
# Builds local/tensorflow-serving:standin: `standin/build.sh [PYTHON_BASE]`.
# The host downloads the wheels (its pip has the network and the proxy CA); the image installs them with
# --no-index, so the build needs neither. Versions are those of the project's environment (PYTHON, else
# .venv/bin/python, which `make bases` creates first), transitive packages included. Wheels are cached in .work/standin-wheels.
# Exit codes: ml/contract.py's (bad input: no Python with TensorFlow; download failed; build failed).
set -euo pipefail

# shellcheck source=scripts/contract.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/contract.sh" # ROOT, EXIT_<NAME>, the stand-in names
readonly PYTHON_BASE="${1:-$TRAINING_STANDIN}"
readonly IMAGE="${TFS_STANDIN_IMAGE:-$SERVING_STANDIN}"
readonly WHEELS="$ROOT/.work/standin-wheels"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"

die() { printf 'standin build: %s\n' "$2" >&2; exit "$1"; }

versions="$("$PYTHON" - <<'PY'
from importlib.metadata import PackageNotFoundError, version
try:
    print("\n".join(f"{name}=={version(name)}" for name in ("tensorflow", "tensorflow-serving-api", "grpcio")))
except PackageNotFoundError as error:
    raise SystemExit(f"{error} is not installed")
PY
)" || die "$EXIT_BAD_INPUT" "$PYTHON has no TensorFlow, tensorflow-serving-api and grpcio to pin versions from"

# Same wheel download as the training image: for Debian bookworm, CPython 3.11, held to this environment.
# shellcheck disable=SC2086 # one requirement per word
(cd "$ROOT" && "$PYTHON" -m scripts.wheelhouse "$WHEELS" $versions) \
  || die "$EXIT_DOWNLOAD_FAILED" "wheel download into $WHEELS failed"

context="$(mktemp -d "${TMPDIR:-/tmp}/standin-context.XXXXXX")"
trap 'rm -rf "$context"' EXIT
mkdir -p "$context/wheels" "$context/standin"
ln "$WHEELS"/*.whl "$context/wheels/" 2>/dev/null || cp "$WHEELS"/*.whl "$context/wheels/"
cp "$WHEELS/requirements.txt" "$context/wheels/"
cp "$ROOT"/standin/*.py "$context/standin/"
cp "$ROOT/standin/entrypoint.sh" "$ROOT/standin/tensorflow_model_server.sh" "$context/"
chmod 755 "$context/entrypoint.sh" "$context/tensorflow_model_server.sh"

docker build -f "$ROOT/standin/Dockerfile" --build-arg "PYTHON_BASE=$PYTHON_BASE" \
  --label "org.opencontainers.image.title=$IMAGE" -t "$IMAGE" "$context" >&2 || die "$EXIT_BUILD_FAILED" "docker build of $IMAGE failed"
printf '%s\n' "$IMAGE"
