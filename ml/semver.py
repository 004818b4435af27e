"""Semantic versions (semver 2.0) read from VERSION, and the integer TF Serving version derived from them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

# The official semver 2.0 grammar: numeric identifiers without leading zeros.
_SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)
# TF Serving versions are integers; minor and patch each get three decimal digits.
_FIELD_LIMIT = 999
_MAJOR_STEP, _MINOR_STEP = 1_000_000, 1_000


class VersionError(ValueError):
    """VERSION is missing, malformed or out of the range the integer mapping covers."""


@dataclass(frozen=True, order=False)
class SemVer:
    major: int
    minor: int
    patch: int
    prerelease: str = ""
    build: str = ""

    @classmethod
    def parse(cls, text: str) -> SemVer:
        value = text.strip()
        match = _SEMVER.match(value)
        if not match:
            raise VersionError(
                f"{value!r} is not a semantic version (expected MAJOR.MINOR.PATCH, e.g. 1.4.2)"
            )
        major, minor, patch = (int(match.group(i)) for i in (1, 2, 3))
        for name, field in (("minor", minor), ("patch", patch)):
            if field > _FIELD_LIMIT:
                raise VersionError(
                    f"{value!r}: {name} {field} is over {_FIELD_LIMIT}, which the model version cannot encode"
                )
        return cls(major, minor, patch, match.group(4) or "", match.group(5) or "")

    @property
    def is_release(self) -> bool:
        return not self.prerelease

    @property
    def core(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"

    @property
    def model_version(self) -> int:
        """The TF Serving version directory: higher semver core, higher integer."""
        return self.major * _MAJOR_STEP + self.minor * _MINOR_STEP + self.patch

    @property
    def precedence(self) -> tuple[int, int, int, tuple[tuple[int, int | str], ...]]:
        """Sort key with semver 2.0 precedence: build ignored, a pre-release below its release, numeric
        identifiers numerically and below alphanumeric ones, a shorter identifier list first."""
        if not self.prerelease:
            return (self.major, self.minor, self.patch, ((2, 0),))
        identifiers = tuple(
            (0, int(part)) if part.isdigit() else (1, part) for part in self.prerelease.split(".")
        )
        return (self.major, self.minor, self.patch, identifiers)

    def bump(self, part: str) -> SemVer:
        if part == "major":
            return SemVer(self.major + 1, 0, 0)
        if part == "minor":
            return SemVer(self.major, self.minor + 1, 0)
        if part == "patch":
            return SemVer(self.major, self.minor, self.patch + 1)
        raise VersionError(f"unknown version part {part!r} (expected major, minor or patch)")

    def __str__(self) -> str:
        text = self.core
        if self.prerelease:
            text += f"-{self.prerelease}"
        if self.build:
            text += f"+{self.build}"
        return text


def major_of(model_version: int) -> int:
    """The major version a TF Serving version number was derived from (`SemVer.model_version`)."""
    return model_version // _MAJOR_STEP


def read_version(path: Path) -> SemVer:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise VersionError(f"cannot read {path}: {exc.strerror}") from exc
    return SemVer.parse(text)
