"""The engine's Celery tasks: execute a step, sweep stuck steps, expire approvals."""

from celery import shared_task

from workflows import engine


@shared_task(name="workflows.tasks.execute_step")
def execute_step_task(step_run_id: int) -> None:
    engine.step_run_execute(step_run_id=step_run_id)


@shared_task(name="workflows.tasks.sweep_steps")
def sweep_steps_task() -> dict[str, int]:
    return engine.step_runs_sweep()


@shared_task(name="workflows.tasks.expire_approvals")
def expire_approvals_task() -> int:
    from workflows.approvals.services import approvals_expire

    return approvals_expire()
