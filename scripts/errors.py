"""Failures of the image commands, each with its own exit code so CI steps can tell them apart."""

from __future__ import annotations

from enum import IntEnum, unique


# unique: two names for one value would silently become aliases of one member.
@unique
class ExitCode(IntEnum):
    OK = 0
    BAD_INPUT = 2  # malformed VERSION or config, missing model artifact, invalid tag
    REGISTRY_UNREACHABLE = 3  # still down after the bounded retries
    NOT_FOUND = 4  # the repository or tag is not in the registry
    TAG_CONFLICT = 5  # a release tag already holds another image
    DOCKER_UNAVAILABLE = 6
    BUILD_FAILED = 7
    REGISTRY_ERROR = 8  # the registry answered, but not as the distribution API says
    NOT_REPRODUCED = 9  # verify: the registry's release is not what this checkout builds
    ACCESS_DENIED = 10  # the registry refused these credentials (or none): HTTP 401/403
    JOB_FAILED = 11  # act: a workflow job failed, or act could not run it


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
    exit_code = ExitCode.DOCKER_UNAVAILABLE


class BuildFailed(ImageError):
    exit_code = ExitCode.BUILD_FAILED


class RegistryError(ImageError):
    exit_code = ExitCode.REGISTRY_ERROR


class NotReproduced(ImageError):
    exit_code = ExitCode.NOT_REPRODUCED


class AccessDenied(ImageError):
    exit_code = ExitCode.ACCESS_DENIED
