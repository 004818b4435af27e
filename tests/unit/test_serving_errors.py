"""Each deploy outcome's exception names its exit code and what the deploy history records for it."""

from __future__ import annotations

import pytest

from ml.contract import ExitCode
from serving import history
from serving.errors import (
    AnalysisFailed,
    BadInput,
    DeployError,
    ImageUnavailable,
    InfrastructureError,
    LockTimeout,
    ModelNotReady,
    ProxyConfigRejected,
    Reverted,
)


@pytest.mark.parametrize(
    ("error", "exit_code", "result"),
    [
        (ImageUnavailable, ExitCode.REFUSED, history.RESULT_REFUSED),
        (ModelNotReady, ExitCode.REFUSED, history.RESULT_REFUSED),
        (AnalysisFailed, ExitCode.REFUSED, history.RESULT_REFUSED),
        (Reverted, ExitCode.REVERTED, history.RESULT_REVERTED),
        (InfrastructureError, ExitCode.INFRASTRUCTURE, history.RESULT_FAILED),
        (LockTimeout, ExitCode.INFRASTRUCTURE, history.RESULT_FAILED),
        (ProxyConfigRejected, ExitCode.INFRASTRUCTURE, history.RESULT_FAILED),
        (BadInput, ExitCode.BAD_INPUT, history.RESULT_FAILED),
    ],
)
def test_outcome_of_each_error(error: type[DeployError], exit_code: ExitCode, result: str) -> None:
    raised = error("why")
    assert raised.exit_code == exit_code
    assert raised.history_result == result
