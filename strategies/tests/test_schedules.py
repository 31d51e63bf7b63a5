"""Schedules: cron parsing, the next-run preview across daylight saving, trading days and hours,
the beat entries they manage, and what a tick does (start, skip, overlap, duplicates, failures)."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from celery.utils.time import ffwd
from django_celery_beat.models import CrontabSchedule, PeriodicTask
from django_celery_beat.tzcrontab import TzAwareCrontab

from strategies.models import ScheduleTick, StrategyBatch, StrategySchedule, TickOutcome
from strategies.schedules import services as schedules
from strategies.services import StrategyInvalid, strategy_delete, strategy_update
from strategies.tests.strategy_helpers import fetch_graph, make_strategy, make_workflow
from workflows import services
from workflows.models import Run, RunStatus, Trigger

NY = ZoneInfo("America/New_York")
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_dispatch")]


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def times(cron, tz="America/New_York", *, after, count=5, **options):
    return [t.astimezone(UTC) for t in schedules.preview(cron=cron, timezone=tz, after=after, count=count, **options)]


# The preview


def test_the_preview_follows_the_new_york_clock_across_the_march_change():
    # DST starts Sunday 2026-03-08 at 02:00 EST. 09:30 EST (UTC-5) is 14:30 UTC; 09:30 EDT (UTC-4), 13:30 UTC.
    # From Thursday 2026-03-05 10:00 EST (15:00 UTC): Fri 03-06 still EST, then Mon 03-09 on EDT.
    assert times("30 9 * * 1-5", after=utc(2026, 3, 5, 15, 0)) == [
        utc(2026, 3, 6, 14, 30),
        utc(2026, 3, 9, 13, 30),
        utc(2026, 3, 10, 13, 30),
        utc(2026, 3, 11, 13, 30),
        utc(2026, 3, 12, 13, 30),
    ]


def test_the_preview_follows_the_new_york_clock_across_the_november_change():
    # DST ends Sunday 2026-11-01 at 02:00 EDT. From Thursday 10-29 10:00 EDT (14:00 UTC): Fri 10-30 09:30 EDT is
    # 13:30 UTC; from Monday 11-02 09:30 EST is 14:30 UTC.
    assert times("30 9 * * 1-5", after=utc(2026, 10, 29, 14, 0)) == [
        utc(2026, 10, 30, 13, 30),
        utc(2026, 11, 2, 14, 30),
        utc(2026, 11, 3, 14, 30),
        utc(2026, 11, 4, 14, 30),
        utc(2026, 11, 5, 14, 30),
    ]


def test_the_preview_agrees_with_the_crontab_celery_beat_runs():
    # What the DatabaseScheduler will do: celery's own crontab in the schedule's zone, one run after another.
    crontab = TzAwareCrontab(minute="30", hour="9", day_of_week="1-5", tz=NY)
    last, expected = datetime(2026, 3, 4, 9, 30, tzinfo=NY), []
    for _ in range(5):
        start, delta, _now = crontab.remaining_delta(last, ffwd=ffwd)
        last = start + delta
        expected.append(last.astimezone(UTC))
    assert times("30 9 * * 1-5", after=utc(2026, 3, 4, 14, 30)) == expected


def test_wall_times_that_do_not_exist_or_happen_twice():
    # 02:30 does not exist on 2026-03-08 (clocks jump from 02:00 to 03:00): no run that day.
    assert times("30 2 * * *", after=utc(2026, 3, 7, 12, 0), count=2) == [
        utc(2026, 3, 9, 6, 30),
        utc(2026, 3, 10, 6, 30),
    ]
    # 01:30 happens twice on 2026-11-01: one run, at the first (EDT, 05:30 UTC); the next day 01:30 EST is 06:30 UTC.
    assert times("30 1 * * *", after=utc(2026, 10, 31, 12, 0), count=2) == [
        utc(2026, 11, 1, 5, 30),
        utc(2026, 11, 2, 6, 30),
    ]


def test_trading_days_only_skips_weekends_and_holidays():
    # 10:00 New York (EDT, 14:00 UTC) from Wednesday 2026-04-01: Good Friday 04-03 and the weekend are skipped.
    assert times("0 10 * * *", after=utc(2026, 4, 1, 12, 0), count=4, trading_days_only=True) == [
        utc(2026, 4, 1, 14, 0),
        utc(2026, 4, 2, 14, 0),
        utc(2026, 4, 6, 14, 0),
        utc(2026, 4, 7, 14, 0),
    ]
    # Thanksgiving 2026-11-26 (EST: 10:00 is 15:00 UTC); the Friday after is a (short) trading day.
    assert times("0 10 * * *", after=utc(2026, 11, 24, 12, 0), count=4, trading_days_only=True) == [
        utc(2026, 11, 24, 15, 0),
        utc(2026, 11, 25, 15, 0),
        utc(2026, 11, 27, 15, 0),
        utc(2026, 11, 30, 15, 0),
    ]
    # Without the option every day counts.
    assert len(times("0 10 * * *", after=utc(2026, 4, 1, 12, 0), count=7)) == 7


def test_trading_hours_only_keeps_the_session_in_new_york_time():
    # Hourly in UTC from Friday 2026-11-27, the early-close day after Thanksgiving (13:00 EST = 18:00 UTC):
    # 15:00-18:00 UTC (10:00-13:00 EST; 14:00 UTC is 09:00, before the open), then Monday 11-30 from 15:00 UTC.
    assert times(
        "0 * * * *", "UTC", after=utc(2026, 11, 27, 0, 0), count=6, trading_days_only=True, trading_hours_only=True
    ) == [
        utc(2026, 11, 27, 15, 0),
        utc(2026, 11, 27, 16, 0),
        utc(2026, 11, 27, 17, 0),
        utc(2026, 11, 27, 18, 0),
        utc(2026, 11, 30, 15, 0),
        utc(2026, 11, 30, 16, 0),
    ]


# Validation and the beat entry


@pytest.mark.parametrize(
    ("cron", "timezone", "field", "text"),
    [
        ("61 * * * *", "America/New_York", "cron", 'The minute field "61" is not valid'),
        ("-1 * * * *", "UTC", "cron", 'The minute field "-1" is not valid'),
        ("1,,2 * * * *", "UTC", "cron", 'The minute field "1,,2" is not valid'),
        ("* 24 * * *", "UTC", "cron", 'The hour field "24" is not valid'),
        ("30 9 * *", "UTC", "cron", "has 4 fields; a cron expression has 5"),
        ("30 9 * * 1-5", "Mars/Base", "timezone", '"Mars/Base" is not an IANA time zone'),
        ("0 0 30 2 *", "UTC", "cron", "never runs"),
    ],
)
def test_a_bad_schedule_is_refused_naming_the_field_and_saves_nothing(user, cron, timezone, field, text):
    strategy = make_strategy(user)
    with pytest.raises(StrategyInvalid) as refused:
        schedules.schedule_create(strategy=strategy, cron=cron, timezone=timezone)
    assert [e["field"] for e in refused.value.errors] == [field]
    assert text in refused.value.errors[0]["message"]
    assert not StrategySchedule.objects.exists() and not PeriodicTask.objects.exists()


def test_a_cron_that_never_falls_in_trading_hours_is_refused(user):
    with pytest.raises(StrategyInvalid, match="never runs with trading hours only"):
        schedules.schedule_create(
            strategy=make_strategy(user), cron="0 3 * * *", timezone="America/New_York", trading_hours_only=True
        )


def test_a_schedule_manages_its_periodic_task(user):
    strategy = make_strategy(user)
    schedule = schedules.schedule_create(strategy=strategy, cron="30  9 * * 1-5", timezone="America/New_York")
    task = PeriodicTask.objects.get(pk=schedule.periodic_task_id)
    assert schedule.cron == "30 9 * * 1-5"
    assert task.task == "strategies.tasks.run_scheduled_strategy" and task.args == f"[{schedule.pk}]" and task.enabled
    cron = task.crontab
    assert (cron.minute, cron.hour, cron.day_of_month, cron.month_of_year, cron.day_of_week) == (
        "30",
        "9",
        "*",
        "*",
        "1-5",
    )
    assert str(cron.timezone) == "America/New_York"

    schedules.schedule_update(schedule=schedule, cron="0 16 * * 1-5", timezone="Europe/London")
    task.refresh_from_db()
    assert (task.crontab.minute, task.crontab.hour, str(task.crontab.timezone)) == ("0", "16", "Europe/London")
    assert not CrontabSchedule.objects.filter(id=cron.id).exists()  # the old one, used by nothing, is gone

    schedules.schedule_set_enabled(schedule=schedule, enabled=False)
    task.refresh_from_db()
    assert task.enabled is False
    schedules.schedule_set_enabled(schedule=schedule, enabled=True)
    strategy_update(strategy=strategy, enabled=False)  # a disabled strategy's schedules stop ticking
    task.refresh_from_db()
    schedule.refresh_from_db()
    assert task.enabled is False and schedule.enabled is True

    schedules.schedule_delete(schedule=schedule)
    assert not PeriodicTask.objects.exists() and not CrontabSchedule.objects.filter(timezone="Europe/London").exists()


def test_deleting_a_strategy_deletes_its_beat_entries(user):
    strategy = make_strategy(user)
    schedules.schedule_create(strategy=strategy, cron="0 10 * * 1-5")
    schedules.schedule_create(strategy=strategy, cron="0 15 * * 1-5")
    strategy_delete(strategy=strategy)
    assert not PeriodicTask.objects.exists() and not StrategySchedule.objects.exists()


# Ticks


def every_five_minutes(strategy, **options):
    options = {"timezone": "UTC", "trading_days_only": False, **options}
    return schedules.schedule_create(strategy=strategy, cron="*/5 * * * *", **options)


def test_the_overlap_policy_skips_a_tick_while_a_batch_is_running(user):
    strategy = make_strategy(user)
    schedule = every_five_minutes(strategy)
    first = schedules.schedule_tick(schedule_id=schedule.pk, now=utc(2026, 12, 1, 10, 0, 4))
    assert first.outcome == TickOutcome.STARTED and first.slot == utc(2026, 12, 1, 10, 0)
    batch = first.batch
    assert batch.trigger == Trigger.SCHEDULE and batch.runs.count() == 3  # no worker here: all still pending

    second = schedules.schedule_tick(schedule_id=schedule.pk, now=utc(2026, 12, 1, 10, 5, 2))
    assert second.outcome == TickOutcome.SKIPPED and second.batch is None
    assert f"Batch {batch.pk} of this strategy still has 3 of 3 runs unfinished" in second.reason
    # A run waiting for an approval is unfinished too.
    Run.objects.filter(batch=batch).update(status=RunStatus.SUCCEEDED)
    Run.objects.filter(batch=batch, symbol="IBM").update(status=RunStatus.WAITING)
    third = schedules.schedule_tick(schedule_id=schedule.pk, now=utc(2026, 12, 1, 10, 10, 1))
    assert third.outcome == TickOutcome.SKIPPED and "1 of 3 runs unfinished" in third.reason
    assert StrategyBatch.objects.filter(strategy=strategy).count() == 1

    # Once the previous batch has finished, the next tick runs.
    Run.objects.filter(batch=batch).update(status=RunStatus.FAILED)
    fourth = schedules.schedule_tick(schedule_id=schedule.pk, now=utc(2026, 12, 1, 10, 15, 1))
    assert fourth.outcome == TickOutcome.STARTED and StrategyBatch.objects.filter(strategy=strategy).count() == 2

    # "allow" starts a batch even though the last one is still running.
    schedules.schedule_update(schedule=schedule, overlap="allow")
    fifth = schedules.schedule_tick(schedule_id=schedule.pk, now=utc(2026, 12, 1, 10, 20, 1))
    assert fifth.outcome == TickOutcome.STARTED and StrategyBatch.objects.filter(strategy=strategy).count() == 3


def test_a_second_delivery_of_the_same_tick_starts_nothing(user):
    strategy = make_strategy(user)
    schedule = every_five_minutes(strategy, overlap="allow")
    assert schedules.schedule_tick(schedule_id=schedule.pk, now=utc(2026, 12, 1, 10, 0, 1)).outcome == "started"
    again = schedules.schedule_tick(schedule_id=schedule.pk, now=utc(2026, 12, 1, 10, 3, 0))
    assert again.outcome == TickOutcome.SKIPPED and "already handled" in again.reason
    assert StrategyBatch.objects.count() == 1


def test_ticks_outside_trading_days_or_when_disabled_are_skipped_with_the_reason(user):
    strategy = make_strategy(user)
    schedule = schedules.schedule_create(strategy=strategy, cron="0 10 * * *", timezone="America/New_York")
    good_friday = schedules.schedule_tick(schedule_id=schedule.pk, now=utc(2026, 4, 3, 14, 0, 3))
    assert good_friday.outcome == "skipped" and "Good Friday" in good_friday.reason
    saturday = schedules.schedule_tick(schedule_id=schedule.pk, now=utc(2026, 4, 4, 14, 0, 3))
    assert saturday.outcome == "skipped" and "weekend" in saturday.reason

    schedules.schedule_update(schedule=schedule, trading_hours_only=True, cron="0 * * * *")
    early = schedules.schedule_tick(schedule_id=schedule.pk, now=utc(2026, 4, 6, 13, 0, 3))  # 09:00 EDT
    assert early.outcome == "skipped" and "outside the session" in early.reason

    schedules.schedule_set_enabled(schedule=schedule, enabled=False)
    off = schedules.schedule_tick(schedule_id=schedule.pk, now=utc(2026, 4, 6, 15, 0, 3))
    assert off.outcome == "skipped" and off.reason == "The schedule is disabled"
    assert not StrategyBatch.objects.exists()


def test_a_batch_the_engine_refuses_is_a_failed_tick_with_its_reason(user):
    # v1 takes any tag; the strategy sets tag = "banana". v2 uses the tag as the fetch period, which
    # "banana" is not, so the scheduled run (on the latest version) is refused and says why.
    workflow = make_workflow(user)
    strategy = make_strategy(user, workflow=workflow, overrides={"tag": "banana"})
    graph = fetch_graph()
    graph["nodes"][0]["params"]["period"] = "{{tag}}"
    graph["params"]["tag"] = "1y"
    services.version_save(workflow=workflow, graph=graph, author=user)
    schedule = every_five_minutes(strategy)
    tick = schedules.schedule_tick(schedule_id=schedule.pk, now=utc(2026, 12, 1, 10, 0, 1))
    assert tick.outcome == TickOutcome.FAILED and 'Node "fetch", field "period"' in tick.reason
    assert not Run.objects.exists() and ScheduleTick.objects.count() == 1


def test_a_tick_for_a_schedule_deleted_behind_our_back_removes_its_beat_entry(user):
    schedule = every_five_minutes(make_strategy(user))
    StrategySchedule.objects.filter(pk=schedule.pk).delete()  # as a cascade from its workflow would
    assert PeriodicTask.objects.filter(name=f"strategy-schedule-{schedule.pk}").exists()
    assert schedules.schedule_tick(schedule_id=schedule.pk) is None
    assert not PeriodicTask.objects.exists()


def test_old_ticks_are_pruned(user, monkeypatch):
    monkeypatch.setattr(schedules, "TICKS_KEPT", 3)
    schedule = every_five_minutes(make_strategy(user), enabled=False)
    start = utc(2026, 12, 1, 10, 0, 1)
    for i in range(5):
        schedules.schedule_tick(schedule_id=schedule.pk, now=start + timedelta(minutes=5 * i))
    assert list(schedule.ticks.values_list("slot", flat=True)) == [
        utc(2026, 12, 1, 10, 20),
        utc(2026, 12, 1, 10, 15),
        utc(2026, 12, 1, 10, 10),
    ]


def test_a_tick_delivered_long_after_its_time_starts_nothing(user):
    strategy = make_strategy(user)
    schedule = every_five_minutes(strategy, overlap="allow")
    # The 10:00 tick arrives at 10:04 from a backlog: late, but within the 10-minute grace.
    assert schedules.schedule_tick(schedule_id=schedule.pk, now=utc(2026, 12, 1, 10, 4, 0)).outcome == "started"
    schedules.schedule_update(schedule=schedule, cron="0 * * * *")  # hourly now
    # The 11:00 tick arrives at 11:25, after the workers were down: no batch at the wrong time.
    late = schedules.schedule_tick(schedule_id=schedule.pk, now=utc(2026, 12, 1, 11, 25, 0))
    assert late.outcome == TickOutcome.SKIPPED and "arrived 25 minutes late" in late.reason
    assert StrategyBatch.objects.count() == 1
