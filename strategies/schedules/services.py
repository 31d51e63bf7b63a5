"""Strategy schedules: cron expressions in a time zone, run by Celery Beat's DatabaseScheduler.

Each StrategySchedule owns one django-celery-beat PeriodicTask (with a CrontabSchedule in the
schedule's time zone) that sends `strategies.tasks.run_scheduled_strategy(schedule_id)`. The
services here are the only writers of those rows, so the beat entry always matches the schedule.

Cron fields are parsed by Celery's own crontab parser, so what is accepted here is exactly what
beat runs; like Celery (and unlike Vixie cron) a restricted day-of-month AND a restricted
day-of-week must both match. The next-run preview walks the wall clock of the schedule's time
zone day by day with zoneinfo, so it is right across daylight-saving changes: "30 9 * * 1-5" in
America/New_York is 14:30 UTC in winter and 13:30 UTC in summer. A wall time that does not
exist on a spring-forward day is skipped; one that happens twice on a fall-back day runs once,
at its first occurrence.

A tick (the task) checks, in order: the schedule and the strategy are enabled, the trading-day
and trading-hours options (NYSE, strategies.schedules.calendar), and the overlap policy; then it
starts the strategy's batch with trigger "schedule". Every tick is recorded (ScheduleTick) with
why it was skipped or failed, and a second delivery for the same cron time does nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

from celery.schedules import ParseException, crontab
from django.db import transaction
from django.utils import timezone as dj_timezone
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from strategies.models import (
    OverlapPolicy,
    ScheduleTick,
    Strategy,
    StrategySchedule,
    TickOutcome,
)
from strategies.schedules import calendar as trading_calendar
from strategies.services import StrategyInvalid, field_error, strategy_run
from workflows.errors import ApplicationError
from workflows.models import RUN_FINISHED, Run, Trigger

TASK_NAME = "strategies.tasks.run_scheduled_strategy"
DEFAULT_TIMEZONE = "America/New_York"
PREVIEW_COUNT = 5
# How far the preview and the "does it ever run" check look ahead: four years and a day, so a
# schedule for February 29 is found; and at most this many cron times are examined, so a
# frequent cron that the trading filters always refuse is reported quickly.
LOOKAHEAD_DAYS = 4 * 366
MAX_CANDIDATES = 50_000
# Ticks kept per schedule; older ones are deleted as new ones are written.
TICKS_KEPT = 200
FIELDS = (
    ("minute", "0-59"),
    ("hour", "0-23"),
    ("day_of_month", "1-31"),
    ("month_of_year", "1-12 or jan-dec"),
    ("day_of_week", "0-6 (0 is Sunday) or sun-sat"),
)
FIELD_LABELS = {
    "minute": "minute",
    "hour": "hour",
    "day_of_month": "day of month",
    "month_of_year": "month",
    "day_of_week": "day of week",
}


# Cron expressions


@dataclass(frozen=True)
class Cron:
    text: str
    fields: dict[str, str]
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # cron numbering: 0 is Sunday

    def matches_day(self, day: date) -> bool:
        return day.month in self.months and day.day in self.days and day.isoweekday() % 7 in self.weekdays


def cron_errors(text: str) -> list[str]:
    """What is wrong with a 5-field cron expression, field by field (empty when it is valid)."""
    parts = (text or "").split()
    if len(parts) != len(FIELDS):
        return [
            f'"{text}" has {len(parts)} field{"s" if len(parts) != 1 else ""}; a cron expression has 5: '
            "minute hour day-of-month month day-of-week, e.g. 30 9 * * 1-5"
        ]
    errors = []
    for (name, allowed), value in zip(FIELDS, parts, strict=True):
        try:
            crontab(**{name: value})
        except (ValueError, KeyError, IndexError, TypeError, ParseException):  # what celery's parser raises
            errors.append(
                f'The {FIELD_LABELS[name]} field "{value}" is not valid: use {allowed}, "*", ranges (a-b), lists (a,b) '
                "and steps (*/n)"
            )
    if not errors:
        try:
            crontab(**dict(zip((name for name, _ in FIELDS), parts, strict=True)))
        except (ValueError, ParseException) as exc:  # a day that no month of it has, say
            errors.append(f'"{" ".join(parts)}" never runs: {exc}')
    return errors


@lru_cache(maxsize=256)
def cron_parse(text: str) -> Cron:
    """The parsed expression; raises ApplicationError when it is not valid."""
    errors = cron_errors(text)
    if errors:
        raise ApplicationError(errors[0])
    fields = dict(zip((name for name, _ in FIELDS), text.split(), strict=True))
    parsed = crontab(**fields)
    return Cron(
        text=" ".join(text.split()),
        fields=fields,
        minutes=tuple(sorted(parsed.minute)),
        hours=tuple(sorted(parsed.hour)),
        days=frozenset(parsed.day_of_month),
        months=frozenset(parsed.month_of_year),
        weekdays=frozenset(parsed.day_of_week),
    )


def timezone_errors(name: str) -> list[str]:
    if name in _zones():
        return []
    return [f'"{name}" is not an IANA time zone name (for example America/New_York, Europe/London, UTC)']


@lru_cache(maxsize=1)
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


def timezone_choices() -> list[str]:
    return sorted(z for z in _zones() if "/" in z or z == "UTC")


def _wall_times(cron: Cron, tz: ZoneInfo, day: date, *, reverse: bool) -> Iterator[datetime]:
    """The day's cron times as aware datetimes in `tz`, in order (or reversed)."""
    if not cron.matches_day(day):
        return
    hours = reversed(cron.hours) if reverse else cron.hours
    for hour in hours:
        minutes = reversed(cron.minutes) if reverse else cron.minutes
        for minute in minutes:
            naive = datetime.combine(day, time(hour, minute))
            aware = naive.replace(tzinfo=tz)  # fold=0: a repeated wall time is its first occurrence
            if aware.astimezone(UTC).astimezone(tz).replace(tzinfo=None) != naive:
                continue  # does not exist: the clocks jumped over it
            yield aware


def fire_times(cron: Cron, tz: ZoneInfo, *, after: datetime) -> Iterator[datetime]:
    """Cron times strictly after `after`, in order, for up to LOOKAHEAD_DAYS."""
    start = after.astimezone(tz).date()
    for offset in range(LOOKAHEAD_DAYS + 1):
        for moment in _wall_times(cron, tz, start + timedelta(days=offset), reverse=False):
            if moment > after:
                yield moment


def fire_time_at_or_before(cron: Cron, tz: ZoneInfo, moment: datetime) -> datetime | None:
    """The latest cron time at or before `moment`: the tick a delivery belongs to."""
    start = moment.astimezone(tz).date()
    for offset in range(LOOKAHEAD_DAYS + 1):
        for candidate in _wall_times(cron, tz, start - timedelta(days=offset), reverse=True):
            if candidate <= moment:
                return candidate
    return None


def block_reason(moment: datetime, *, trading_days_only: bool, trading_hours_only: bool) -> str | None:
    """Why the trading options refuse a tick at `moment`, or None. Trading days and hours are
    those of the NYSE, in New York time, whatever the schedule's time zone."""
    if trading_hours_only:
        return trading_calendar.outside_session_reason(moment)
    if trading_days_only:
        return trading_calendar.closed_reason(moment.astimezone(trading_calendar.NEW_YORK).date())
    return None


def preview(
    *,
    cron: str,
    timezone: str,
    trading_days_only: bool = False,
    trading_hours_only: bool = False,
    after: datetime | None = None,
    count: int = PREVIEW_COUNT,
) -> list[datetime]:
    """The next `count` times the schedule would start a batch, as aware datetimes in its zone."""
    parsed, tz = cron_parse(cron), ZoneInfo(timezone)
    out: list[datetime] = []
    if count < 1:
        return out
    for examined, moment in enumerate(fire_times(parsed, tz, after=after or dj_timezone.now())):
        if examined >= MAX_CANDIDATES:
            break
        if block_reason(moment, trading_days_only=trading_days_only, trading_hours_only=trading_hours_only) is None:
            out.append(moment)
            if len(out) >= count:
                break
    return out


def preview_rows(times: list[datetime]) -> list[dict[str, Any]]:
    """Each time in the schedule's zone and in UTC, for pages and the API."""
    return [
        {
            "local": moment.isoformat(),
            "utc": moment.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "local_text": f"{moment:%a %Y-%m-%d %H:%M} {moment.tzname()}",
            "utc_text": f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC",
        }
        for moment in times
    ]


def schedule_preview(*, schedule: StrategySchedule, after: datetime | None = None, count: int = PREVIEW_COUNT):
    return preview(
        cron=schedule.cron,
        timezone=schedule.timezone,
        trading_days_only=schedule.trading_days_only,
        trading_hours_only=schedule.trading_hours_only,
        after=after,
        count=count,
    )


# Writes


def schedule_check(
    *, cron: str, timezone: str, trading_days_only: bool, trading_hours_only: bool, overlap: str
) -> tuple[str, str]:
    """The cleaned cron and time zone; raises StrategyInvalid naming each bad field."""
    cron = " ".join((cron or "").split())
    timezone = (timezone or "").strip()
    errors = [field_error("cron", m) for m in cron_errors(cron)]
    errors += [field_error("timezone", m) for m in timezone_errors(timezone)]
    if overlap not in OverlapPolicy.values:
        allowed = " or ".join(OverlapPolicy.values)
        errors.append(field_error("overlap", f'"{overlap}" is not an overlap policy: use {allowed}'))
    if not errors and not preview(
        cron=cron,
        timezone=timezone,
        trading_days_only=trading_days_only,
        trading_hours_only=trading_hours_only,
        count=1,
    ):
        options = " with trading hours only" if trading_hours_only else " on trading days" if trading_days_only else ""
        errors.append(field_error("cron", f'"{cron}" ({timezone}) never runs{options}'))
    if errors:
        raise StrategyInvalid(errors)
    return cron, timezone


def _task_name(schedule_id: int) -> str:
    return f"strategy-schedule-{schedule_id}"


def _crontab_for(schedule: StrategySchedule) -> CrontabSchedule:
    fields = {**cron_parse(schedule.cron).fields, "timezone": ZoneInfo(schedule.timezone)}
    return CrontabSchedule.objects.filter(**fields).order_by("id").first() or CrontabSchedule.objects.create(**fields)


def _periodic_task_sync(schedule: StrategySchedule) -> None:
    """Create or update the schedule's beat entry. Saved through the model, so beat's change
    counter moves and a running DatabaseScheduler reloads it."""
    task = schedule.periodic_task
    old_crontab = task.crontab if task else None
    if task is None:
        # An entry left by a schedule deleted behind the services' back keeps its name: reuse it.
        task = PeriodicTask.objects.filter(name=_task_name(schedule.pk)).first() or PeriodicTask(
            name=_task_name(schedule.pk)
        )
        task.task = TASK_NAME
    task.crontab = _crontab_for(schedule)
    task.args = json.dumps([schedule.pk])
    task.kwargs = "{}"
    task.enabled = schedule.enabled and schedule.strategy.enabled
    task.description = (
        f'Runs strategy "{schedule.strategy.name}" (id {schedule.strategy_id}); managed by its schedule '
        f"{schedule.pk}: change it on the strategy page, not here"
    )[:2000]
    task.save()
    if schedule.periodic_task_id != task.pk:
        schedule.periodic_task = task
        schedule.save(update_fields=["periodic_task", "updated_at"])
    if old_crontab and old_crontab.pk != task.crontab_id and not old_crontab.periodictask_set.exists():
        old_crontab.delete()


@transaction.atomic
def schedule_create(
    *,
    strategy: Strategy,
    cron: str,
    timezone: str = DEFAULT_TIMEZONE,
    enabled: bool = True,
    trading_days_only: bool = True,
    trading_hours_only: bool = False,
    overlap: str = OverlapPolicy.SKIP,
) -> StrategySchedule:
    cron, timezone = schedule_check(
        cron=cron,
        timezone=timezone,
        trading_days_only=trading_days_only,
        trading_hours_only=trading_hours_only,
        overlap=overlap,
    )
    schedule = StrategySchedule.objects.create(
        strategy=strategy,
        cron=cron,
        timezone=timezone,
        enabled=enabled,
        trading_days_only=trading_days_only,
        trading_hours_only=trading_hours_only,
        overlap=overlap,
    )
    _periodic_task_sync(schedule)
    return schedule


@transaction.atomic
def schedule_update(
    *,
    schedule: StrategySchedule,
    cron: str | None = None,
    timezone: str | None = None,
    enabled: bool | None = None,
    trading_days_only: bool | None = None,
    trading_hours_only: bool | None = None,
    overlap: str | None = None,
) -> StrategySchedule:
    """Change what is given; None keeps the current value. Nothing is written if it is invalid."""
    values = {
        "cron": schedule.cron if cron is None else cron,
        "timezone": schedule.timezone if timezone is None else timezone,
        "trading_days_only": schedule.trading_days_only if trading_days_only is None else trading_days_only,
        "trading_hours_only": schedule.trading_hours_only if trading_hours_only is None else trading_hours_only,
        "overlap": schedule.overlap if overlap is None else overlap,
    }
    values["cron"], values["timezone"] = schedule_check(**values)
    for name, value in values.items():
        setattr(schedule, name, value)
    if enabled is not None:
        schedule.enabled = enabled
    schedule.save()
    _periodic_task_sync(schedule)
    return schedule


def schedule_set_enabled(*, schedule: StrategySchedule, enabled: bool) -> StrategySchedule:
    return schedule_update(schedule=schedule, enabled=enabled)


@transaction.atomic
def schedule_delete(*, schedule: StrategySchedule) -> None:
    task = schedule.periodic_task
    crontab_row = task.crontab if task else None
    schedule.delete()
    if task is not None:
        task.delete()  # the model's delete: beat's change counter moves
    if crontab_row is not None and not crontab_row.periodictask_set.exists():
        crontab_row.delete()


def schedules_sync(*, strategy: Strategy) -> None:
    """Beat entries follow the strategy's own switch: a disabled strategy's schedules stop ticking."""
    for schedule in strategy.schedules.select_related("periodic_task__crontab", "strategy"):
        _periodic_task_sync(schedule)


def schedules_delete(*, strategy: Strategy) -> None:
    for schedule in strategy.schedules.select_related("periodic_task__crontab"):
        schedule_delete(schedule=schedule)


# The tick


def _unfinished_batch_reason(strategy: Strategy) -> str | None:
    unfinished = (
        Run.objects.filter(batch__strategy_link__strategy=strategy)
        .exclude(status__in=RUN_FINISHED)
        .order_by("batch_id")
        .values_list("batch_id", flat=True)
    )
    batch_id = unfinished.first()
    if batch_id is None:
        return None
    left = Run.objects.filter(batch_id=batch_id).exclude(status__in=RUN_FINISHED).count()
    total = Run.objects.filter(batch_id=batch_id).count()
    return (
        f"Batch {batch_id} of this strategy still has {left} of {total} run{'s' if total != 1 else ''} unfinished "
        "(overlap policy: skip)"
    )


def _skip_reason(schedule: StrategySchedule, now: datetime) -> str | None:
    if not schedule.enabled:
        return "The schedule is disabled"
    if not schedule.strategy.enabled:
        return "The strategy is disabled"
    reason = block_reason(
        now, trading_days_only=schedule.trading_days_only, trading_hours_only=schedule.trading_hours_only
    )
    if reason:
        return f"Not a trading {'time' if schedule.trading_hours_only else 'day'}: {reason}"
    if schedule.overlap == OverlapPolicy.SKIP:
        return _unfinished_batch_reason(schedule.strategy)
    return None


def _record(schedule: StrategySchedule, *, now, slot, outcome: str, reason: str = "", batch=None) -> ScheduleTick:
    tick = ScheduleTick.objects.create(
        schedule=schedule, at=now, slot=slot, outcome=outcome, reason=reason[:500], batch=batch
    )
    oldest_kept = schedule.ticks.order_by("-id").values_list("id", flat=True)[TICKS_KEPT - 1 : TICKS_KEPT].first()
    if oldest_kept is not None:
        schedule.ticks.filter(id__lt=oldest_kept).delete()
    return tick


# A tick delivered later than this after its cron time starts nothing.
LATE_AFTER = timedelta(minutes=10)


@transaction.atomic
def schedule_tick(*, schedule_id: int, now: datetime | None = None) -> ScheduleTick | None:
    """Handle one beat tick of a schedule: start the strategy's batch, or record why not.

    None when the schedule is gone (its beat entry is removed too). A second delivery for a cron
    time already handled starts nothing and is recorded as skipped: two beats running, say."""
    now = now or dj_timezone.now()
    schedule = (
        StrategySchedule.objects.select_for_update(of=("self",))  # the schedule row only; the joins may be null
        .select_related("strategy__workflow", "strategy__owner", "strategy__version")
        .filter(id=schedule_id)
        .first()
    )
    if schedule is None:
        # Deleted behind the services' back (its strategy or workflow was deleted): stop ticking.
        for task in PeriodicTask.objects.filter(name=_task_name(schedule_id), task=TASK_NAME):
            task.delete()
        return None
    slot = fire_time_at_or_before(cron_parse(schedule.cron), ZoneInfo(schedule.timezone), now)
    if slot is not None:
        # Compare-and-set under the row lock: one batch per cron time, however often it is delivered.
        if schedule.last_slot == slot:
            reason = f"The {slot:%Y-%m-%d %H:%M %Z} tick was already handled (a second delivery of it)"
            return _record(schedule, now=now, slot=slot, outcome=TickOutcome.SKIPPED, reason=reason)
        schedule.last_slot = slot
        schedule.save(update_fields=["last_slot"])
    if slot is not None and now - slot > LATE_AFTER:
        # Delivered long after its time (workers were down, a backlog): a trade decided now on an old
        # tick's behalf would be at the wrong time.
        reason = f"The {slot:%Y-%m-%d %H:%M %Z} tick arrived {(now - slot).total_seconds() / 60:.0f} minutes late"
        return _record(schedule, now=now, slot=slot, outcome=TickOutcome.SKIPPED, reason=reason)
    # The overlap policy is per strategy: its row is locked too, so two schedules (or a tick and a
    # manual run) of one strategy cannot both find no batch running.
    Strategy.objects.select_for_update().filter(id=schedule.strategy_id).first()
    reason = _skip_reason(schedule, now)
    if reason:
        return _record(schedule, now=now, slot=slot, outcome=TickOutcome.SKIPPED, reason=reason)
    try:
        with transaction.atomic():  # a refused batch leaves nothing behind but the tick's record
            link = strategy_run(strategy=schedule.strategy, user=schedule.strategy.owner, trigger=Trigger.SCHEDULE)
    except ApplicationError as exc:
        return _record(schedule, now=now, slot=slot, outcome=TickOutcome.FAILED, reason=exc.message)
    return _record(schedule, now=now, slot=slot, outcome=TickOutcome.STARTED, batch=link.batch)
