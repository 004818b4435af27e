# shellcheck shell=bash
# Sourced by the shell scripts: the repository's ROOT, and ml/contract.py's exit codes (readonly EXIT_<NAME>)
# and stand-in base image names, read from that one definition. It imports nothing but the standard library,
# so the system python3 reads it before any virtualenv exists.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly ROOT
# -B: nothing written into the tree; from ROOT, so that no other ml/ shadows this one.
_contract="$(cd "$ROOT" && python3 -B -c '
from ml import contract
for code in contract.ExitCode:
    print(f"readonly EXIT_{code.name}={code.value}")
for name in ("SERVING_STANDIN", "TRAINING_STANDIN", "PROXY_STANDIN", "MONITORING_STANDIN"):
    print(f"readonly {name}={getattr(contract, name)}")
')" || { printf 'cannot read %s/ml/contract.py with python3\n' "$ROOT" >&2; exit 1; }
eval "$_contract"
unset _contract
