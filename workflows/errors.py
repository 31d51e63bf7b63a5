"""The one ApplicationError hierarchy. The API maps each to its `status` (HTTP 400 unless said)."""

from typing import Any


class ApplicationError(Exception):
    """A problem with what the user asked for, explained in `message`."""

    status = 400

    def __init__(self, message: str, *, extra: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra or {}


class GraphInvalid(ApplicationError):
    """A workflow graph failed validation; `errors` point at nodes, edges and fields."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        first = errors[0]["message"] if errors else "invalid graph"
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        super().__init__(f"The workflow graph is invalid: {first}{more}", extra={"errors": errors})
        self.errors = errors


class IdempotencyConflict(ApplicationError):
    """An Idempotency-Key reused for another request than the one it first started."""

    status = 409


class RunStateError(ApplicationError):
    """An action that does not fit the run's current state (cancel a finished run, ...)."""


# Errors raised by steps while they run.


class StepError(Exception):
    """A step failed for a reason the user should read (no data for the symbol, ...)."""


class TransientStepError(StepError):
    """A step failed for a reason that may go away (network, pacing): retried per node policy."""


class StepCancelled(Exception):
    """Raised inside a step when its run was cancelled."""


class StepParked(Exception):
    """Raised by a step (through `ctx.park`) that waits for an outside event, such as an approval.

    The step becomes WAITING and no worker is held; `engine.step_resume` finishes it later."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
