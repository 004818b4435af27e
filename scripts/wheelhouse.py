"""Image dependencies as wheels, downloaded on the host: `python -m scripts.wheelhouse DEST REQUIREMENT...`.

The host's pip has the network and trusts the proxy CA; image builds install with `--no-index` from this
directory, so they need neither. The training image takes the runtime pins of pyproject.toml, the TF Serving
stand-in its own few; every transitive package is held to the version installed in the running environment.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

from ml.contract import ExitCode
from scripts.errors import BadInput, DownloadFailed, ImageError

REQUIREMENTS = "requirements.txt"
# The image is Debian bookworm (glibc 2.36) on amd64 with CPython 3.11, whatever the host runs. With an
# explicit platform pip matches tags literally, so every manylinux level the image can run is listed.
_GLIBC_MINOR_MAX = 36
_PLATFORMS = [f"manylinux_2_{minor}_x86_64" for minor in range(_GLIBC_MINOR_MAX, 4, -1)] + [
    "manylinux2014_x86_64",
    "manylinux2010_x86_64",
    "manylinux1_x86_64",
]
_TARGET = [
    *(option for platform in _PLATFORMS for option in ("--platform", platform)),
    "--python-version", "3.11",
    "--implementation", "cp",
    "--abi", "cp311",
    "--only-binary=:all:",
]  # fmt: skip


def runtime_requirements(pyproject: Path) -> list[str]:
    try:
        project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
        return [str(requirement) for requirement in project["dependencies"]]
    except (OSError, KeyError, tomllib.TOMLDecodeError) as exc:
        raise BadInput(f"cannot read [project].dependencies from {pyproject}: {exc}") from exc


def ensure(dest: Path, pins: list[str]) -> Path:
    """Download the wheels into `dest` unless it already holds them for exactly these requirements.

    `dest` holds only wheels and requirements.txt: it is copied into the image, and anything else there
    would change the layer's cache key and reinstall TensorFlow.
    """
    requirements = "\n".join(pins) + "\n"
    lock = dest / REQUIREMENTS
    if lock.is_file() and lock.read_text(encoding="utf-8") == requirements:
        return dest
    if dest.exists():
        shutil.rmtree(dest)  # wheels of other pins would only bloat the context
    dest.mkdir(parents=True)
    frozen = subprocess.run(
        [sys.executable, "-m", "pip", "freeze", "--exclude-editable"],
        capture_output=True,
        text=True,
        check=False,
    )
    with tempfile.TemporaryDirectory() as scratch:
        staged, constraints = Path(scratch) / REQUIREMENTS, Path(scratch) / "constraints.txt"
        staged.write_text(requirements, encoding="utf-8")
        constraints.write_text(frozen.stdout if frozen.returncode == 0 else "", encoding="utf-8")
        command = [
            sys.executable, "-m", "pip", "download", "--quiet", "--dest", str(dest), *_TARGET,
            "--requirement", str(staged), "--constraint", str(constraints),
        ]  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            last = (result.stderr.strip().splitlines() or ["no output"])[-1]
            raise DownloadFailed(f"pip download into {dest} failed: {last}")
        shutil.copyfile(staged, lock)  # written last: a partial download is redone, never taken as complete
    return dest


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) < 2:
        print("usage: python -m scripts.wheelhouse DEST REQUIREMENT...", file=sys.stderr)
        return ExitCode.BAD_INPUT
    try:
        ensure(Path(args[0]), args[1:])
    except ImageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    return ExitCode.OK


if __name__ == "__main__":
    raise SystemExit(main())
