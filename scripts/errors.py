"""Failures of the image commands, each with its own exit code (ml.contract.ExitCode) so CI steps can tell
them apart."""

from __future__ import annotations

from ml.contract import ExitCode


class ImageError(Exception):
    exit_code: ExitCode = ExitCode.BAD_INPUT


class BadInput(ImageError):
    exit_code = ExitCode.BAD_INPUT


class RegistryUnreachable(ImageError):
    exit_code = ExitCode.REGISTRY_UNREACHABLE


class NotFound(ImageError):
    exit_code = ExitCode.NOT_FOUND


class TagConflict(ImageError):
    exit_code = ExitCode.TAG_CONFLICT


class DockerUnavailable(ImageError):
    exit_code = ExitCode.INFRASTRUCTURE


class BuildFailed(ImageError):
    exit_code = ExitCode.BUILD_FAILED


class RegistryError(ImageError):
    exit_code = ExitCode.REGISTRY_ERROR


class NotReproduced(ImageError):
    exit_code = ExitCode.NOT_REPRODUCED


class AccessDenied(ImageError):
    exit_code = ExitCode.ACCESS_DENIED


class DownloadFailed(ImageError):
    exit_code = ExitCode.DOWNLOAD_FAILED


class InvalidManifests(ImageError):
    exit_code = ExitCode.INVALID_MANIFESTS
