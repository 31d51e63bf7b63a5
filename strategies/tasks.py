"""Celery tasks of the trading layer: a schedule's tick starts its strategy's batch."""

from celery import shared_task

from strategies.schedules import services as schedules


@shared_task(name="strategies.tasks.run_scheduled_strategy")
def run_scheduled_strategy_task(schedule_id: int) -> str | None:
    """Sent by Celery Beat (DatabaseScheduler) for a StrategySchedule's PeriodicTask."""
    tick = schedules.schedule_tick(schedule_id=schedule_id)
    return tick.outcome if tick else None
