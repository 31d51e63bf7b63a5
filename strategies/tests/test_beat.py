"""A schedule through Celery Beat's own DatabaseScheduler: a due entry sends its task once, the task
starts one batch, and neither a second tick, a restarted beat nor a second delivery starts another."""

from datetime import timedelta
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone
from django_celery_beat.models import PeriodicTask
from django_celery_beat.schedulers import DatabaseScheduler

from strategies import tasks  # noqa: F401 - registers the task with the app
from strategies.models import StrategyBatch, TickOutcome
from strategies.schedules.services import TASK_NAME, schedule_create
from strategies.tests.strategy_helpers import SYMBOLS, make_strategy
from trading_site.celery import app as celery_app
from workflows.models import Run, Trigger


@pytest.fixture
def sent(monkeypatch):
    """What beat sends, captured where the scheduler hands it to the app (no broker message)."""
    # Only the entries the test makes: the settings' own (sweeper, orders sync) are not synced in.
    configured = celery_app.conf.beat_schedule
    celery_app.conf.update(beat_schedule={})
    task = celery_app.tasks[TASK_NAME]
    calls: list[list] = []

    def apply_async(args=None, kwargs=None, **options):
        calls.append(list(args or []))
        return SimpleNamespace(id=f"captured-{len(calls)}")

    monkeypatch.setattr(task, "apply_async", apply_async)
    yield calls
    celery_app.conf.update(beat_schedule=configured)


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("no_dispatch")
def test_a_due_schedule_entry_starts_one_batch_not_two(user, sent):
    strategy = make_strategy(user)
    # Due at a minute past every hour that has just gone by, in New York time; the hour field is "*" so
    # the scheduler's "is this hour near" pre-filter keeps it whatever the time of the test.
    now = timezone.now()
    minute = (now - timedelta(minutes=1)).astimezone(ZoneInfo("America/New_York")).minute
    schedule = schedule_create(
        strategy=strategy, cron=f"{minute} * * * *", timezone="America/New_York", trading_days_only=False
    )
    # Beat last ran the entry two hours ago, so its minute has come round since: it is due now.
    PeriodicTask.objects.filter(pk=schedule.periodic_task_id).update(last_run_at=now - timedelta(hours=2))

    beat = DatabaseScheduler(app=celery_app)
    beat.tick()
    assert sent == [[schedule.pk]]

    # The worker runs what beat sent.
    assert celery_app.tasks[TASK_NAME](*sent[0]) == TickOutcome.STARTED
    link = StrategyBatch.objects.get(strategy=strategy)
    runs = Run.objects.filter(batch=link.batch)
    assert sorted(runs.values_list("symbol", flat=True)) == sorted(SYMBOLS)
    assert set(runs.values_list("trigger", flat=True)) == {Trigger.SCHEDULE}

    # The next tick of the same beat: not due again.
    beat.tick()
    assert len(sent) == 1

    # Beat restarts: it saved the entry's last run, so a fresh scheduler does not send it either.
    beat.sync()
    DatabaseScheduler(app=celery_app).tick()
    assert len(sent) == 1

    # Even if the message were delivered twice (two beats by mistake), the cron time is handled once.
    assert celery_app.tasks[TASK_NAME](schedule.pk) == TickOutcome.SKIPPED
    assert StrategyBatch.objects.filter(strategy=strategy).count() == 1
    assert "already handled" in schedule.ticks.first().reason


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("no_dispatch")
def test_a_disabled_schedule_is_not_sent(user, sent):
    schedule = schedule_create(strategy=make_strategy(user), cron="* * * * *", timezone="UTC", enabled=False)
    PeriodicTask.objects.filter(pk=schedule.periodic_task_id).update(last_run_at=timezone.now() - timedelta(hours=2))
    DatabaseScheduler(app=celery_app).tick()
    assert sent == []
