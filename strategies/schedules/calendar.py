"""The NYSE trading calendar, by rule: weekends, the exchange's holidays and its early closes.

Rule-based rather than a calendar package, so it needs nothing at run time and is easy to check.
The rules are the NYSE's own (Rule 7.2): New Year's Day, Martin Luther King Jr. Day, Washington's
Birthday, Good Friday, Memorial Day, Juneteenth (since 2022), Independence Day, Labor Day,
Thanksgiving and Christmas. A holiday on a Saturday is observed on the Friday before, on a Sunday
the Monday after, except New Year's Day on a Saturday, which is not observed at all (the exchange
does not close on the last trading day of the year). The session is 09:30-16:00 New York time,
13:00 on early-close days (the day before Independence Day, the day after Thanksgiving and
Christmas Eve, when those are trading days).

Unscheduled closures (a national day of mourning, say) cannot be derived: add them to
MARKET_EXTRA_HOLIDAYS.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

NEW_YORK = ZoneInfo("America/New_York")
OPEN = time(9, 30)
CLOSE = time(16, 0)
EARLY_CLOSE = time(13, 0)
JUNETEENTH_SINCE = 2022
MONDAY, THURSDAY, FRIDAY, SATURDAY, SUNDAY = 0, 3, 4, 5, 6


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> date:
    first = date(year, month, 1)
    return first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))


def _last_weekday(year: int, month: int, weekday: int) -> date:
    last = date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)
    return last - timedelta(days=(last.weekday() - weekday) % 7)


def easter(year: int) -> date:
    """Western Easter Sunday (the anonymous Gregorian algorithm)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = b // 4, b % 4
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = c // 4, c % 4
    ell = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * ell) // 451
    month = (h + ell - 7 * m + 114) // 31
    day = (h + ell - 7 * m + 114) % 31 + 1
    return date(year, month, day)


def _observed(day: date) -> date:
    if day.weekday() == SATURDAY:
        return day - timedelta(days=1)
    if day.weekday() == SUNDAY:
        return day + timedelta(days=1)
    return day


@lru_cache(maxsize=64)
def _rule_holidays(year: int) -> dict[date, str]:
    days: dict[date, str] = {}
    new_year = date(year, 1, 1)
    if new_year.weekday() != SATURDAY:  # Saturday: not observed on Friday Dec 31
        days[_observed(new_year)] = "New Year's Day"
    days[_nth_weekday(year, 1, MONDAY, 3)] = "Martin Luther King Jr. Day"
    days[_nth_weekday(year, 2, MONDAY, 3)] = "Washington's Birthday"
    days[easter(year) - timedelta(days=2)] = "Good Friday"
    days[_last_weekday(year, 5, MONDAY)] = "Memorial Day"
    if year >= JUNETEENTH_SINCE:
        days[_observed(date(year, 6, 19))] = "Juneteenth"
    days[_observed(date(year, 7, 4))] = "Independence Day"
    days[_nth_weekday(year, 9, MONDAY, 1)] = "Labor Day"
    days[_nth_weekday(year, 11, THURSDAY, 4)] = "Thanksgiving Day"
    days[_observed(date(year, 12, 25))] = "Christmas Day"
    return days


def _extra_holidays() -> set[date]:
    out = set()
    for text in getattr(settings, "MARKET_EXTRA_HOLIDAYS", []) or []:
        try:
            out.add(date.fromisoformat(str(text).strip()))
        except ValueError as exc:
            raise ImproperlyConfigured(f"MARKET_EXTRA_HOLIDAYS: {text!r} is not a YYYY-MM-DD date") from exc
    return out


def holiday_name(day: date) -> str | None:
    """The NYSE holiday on that day, or None."""
    name = _rule_holidays(day.year).get(day)
    if name is None and day in _extra_holidays():
        return "Exchange closed (MARKET_EXTRA_HOLIDAYS)"
    return name


def is_trading_day(day: date) -> bool:
    return day.weekday() < SATURDAY and holiday_name(day) is None


def closed_reason(day: date) -> str | None:
    """Why the exchange is closed on that day (a weekend or a holiday), or None on a trading day."""
    if day.weekday() >= SATURDAY:
        return f"{day:%A} {day.isoformat()} is a weekend day"
    name = holiday_name(day)
    return f"{day.isoformat()} is an NYSE holiday ({name})" if name else None


def session_close(day: date) -> time:
    """16:00, or 13:00 on the exchange's early-close days."""
    if day == _nth_weekday(day.year, 11, THURSDAY, 4) + timedelta(days=1):
        return EARLY_CLOSE
    if (day.month, day.day) in ((7, 3), (12, 24)) and is_trading_day(day):
        return EARLY_CLOSE
    return CLOSE


def outside_session_reason(moment: datetime) -> str | None:
    """Why `moment` (aware) is outside the regular session, or None when it is inside it.

    The session includes both ends: a 16:00 run sees the closing bar."""
    local = moment.astimezone(NEW_YORK)
    closed = closed_reason(local.date())
    if closed:
        return closed
    close = session_close(local.date())
    # To the minute: a tick of the 16:00 cron a few seconds late is still the 16:00 run.
    if OPEN <= local.time().replace(second=0, microsecond=0) <= close:
        return None
    early = " early close" if close != CLOSE else ""
    return f"{local:%H:%M} New York time is outside the session ({OPEN:%H:%M}-{close:%H:%M}{early})"
