"""The engine's Celery tasks: execute a step, sweep stuck steps, expire approvals."""

import logging

from celery import shared_task
from celery.exceptions import TimeLimitExceeded, WorkerLostError
from celery.signals import task_failure
from django.db import InterfaceError, OperationalError

from workflows import engine

logger = logging.getLogger(__name__)

# The database unreachable when a step message arrives: the message is sent again after 1, 2,
# 4, ... (at most DB_RETRY_MAX_S) seconds, DB_RETRIES times, never acknowledged away; beyond
# that the sweeper sends the step again once the database is back.
DB_RETRIES = 12
DB_RETRY_MAX_S = 30


@shared_task(name="workflows.tasks.execute_step", bind=True)
def execute_step_task(self, step_run_id: int) -> None:
    request = self.request
    try:
        engine.step_run_execute(step_run_id=step_run_id, task_id=request.id or "", heartbeat=not request.is_eager)
    except (OperationalError, InterfaceError) as exc:
        delay = min(DB_RETRY_MAX_S, 2**request.retries)
        logger.warning("step run %s: database unavailable (%s); trying again in %ss", step_run_id, exc, delay)
        raise self.retry(exc=exc, countdown=delay, max_retries=DB_RETRIES) from exc


@task_failure.connect
def _step_execution_killed(sender=None, task_id=None, exception=None, args=None, kwargs=None, **_) -> None:
    """In the worker's main process: an execution killed at its hard time limit, or whose pool
    process died, is settled at once (engine.step_run_killed) instead of when the sweeper sees it."""
    if getattr(sender, "name", None) != execute_step_task.name:
        return
    if not isinstance(exception, TimeLimitExceeded | WorkerLostError):
        return
    step_run_id = (args or [None])[0] or (kwargs or {}).get("step_run_id")
    try:
        outcome = engine.step_run_killed(
            step_run_id=step_run_id, task_id=task_id or "", timed_out=isinstance(exception, TimeLimitExceeded)
        )
        logger.warning("step run %s: execution %s ended by %r: %s", step_run_id, task_id, exception, outcome)
    except Exception:
        logger.exception("step run %s: could not settle its killed execution; the sweeper will", step_run_id)


@shared_task(name="workflows.tasks.sweep_steps")
def sweep_steps_task() -> dict[str, int]:
    return engine.step_runs_sweep()


@shared_task(name="workflows.tasks.expire_approvals")
def expire_approvals_task() -> int:
    from workflows.approvals.services import approvals_expire

    return approvals_expire()
