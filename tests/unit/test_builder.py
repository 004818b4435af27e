"""The reproducible builder's failure without buildah: a one-line error naming the fix, never a traceback."""

from __future__ import annotations

import re

import pytest

from ml.contract import ExitCode
from scripts import builder
from scripts.errors import BuildFailed


def test_without_buildah_every_call_is_a_build_failure_naming_the_fix(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    for call in (lambda: builder.has_image("sha256:0"), lambda: builder.remove("sha256:0")):
        with pytest.raises(
            BuildFailed, match=re.escape("buildah is not installed (`make platform` installs it)")
        ) as error:
            call()
        assert error.value.exit_code == ExitCode.BUILD_FAILED
