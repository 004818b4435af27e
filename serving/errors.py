"""What can go wrong during a deploy, and the exit code each outcome maps to.

The class of an exception decides what the deploy does next: a `Transient` failure is retried until its
deadline, a `Refused` release never took traffic (nothing to undo), a failure after promotion is reverted,
and an `InfrastructureError` means the host itself is at fault (retrying the job may help).
"""

from __future__ import annotations

from ml.contract import ExitCode
from serving.history import RESULT_FAILED, RESULT_REFUSED, RESULT_REVERTED


class DeployError(Exception):
    exit_code: ExitCode = ExitCode.INFRASTRUCTURE
    history_result: str = RESULT_FAILED  # what the deploy history records for a rollout that ended so


class Transient(DeployError):
    """A request failed in a way that may pass if repeated (connection refused while a server starts)."""


class RequestFailed(DeployError):
    """A server answered with an error that repeating the request will not fix."""


class DeadlineExceeded(DeployError):
    """An absolute deadline passed before the awaited condition held."""


class InfrastructureError(DeployError):
    exit_code = ExitCode.INFRASTRUCTURE


class LockTimeout(InfrastructureError):
    """Another deploy held the host-wide lock for longer than the lock timeout."""


class ProxyConfigRejected(InfrastructureError):
    """`haproxy -c` refused a rendered config; it was not used."""


class BadInput(DeployError):
    exit_code = ExitCode.BAD_INPUT


class Refused(DeployError):
    """The release was judged unfit before it took any traffic."""

    exit_code = ExitCode.REFUSED
    history_result = RESULT_REFUSED


class ImageUnavailable(Refused):
    """The image is neither on this host nor pullable from its registry."""


class ModelNotReady(Refused):
    """The preview container exited, or its model never became AVAILABLE in time."""


class AnalysisFailed(Refused):
    """Pre-promotion analysis found at least one failing check."""


class Reverted(DeployError):
    """The release took a share of traffic, failed a step's analysis or the bake window, and the previous release
    takes all traffic again."""

    exit_code = ExitCode.REVERTED
    history_result = RESULT_REVERTED
