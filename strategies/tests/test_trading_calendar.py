"""The NYSE calendar by rule, checked against the exchange's published holiday lists."""

from datetime import date, datetime

import pytest

from strategies.schedules import calendar as cal

# NYSE's published full-day closures (nyse.com, "Holidays & Trading Hours").
NYSE_2026 = [
    date(2026, 1, 1), date(2026, 1, 19), date(2026, 2, 16), date(2026, 4, 3), date(2026, 5, 25),
    date(2026, 6, 19), date(2026, 7, 3), date(2026, 9, 7), date(2026, 11, 26), date(2026, 12, 25),
]  # fmt: skip
NYSE_2027 = [
    date(2027, 1, 1), date(2027, 1, 18), date(2027, 2, 15), date(2027, 3, 26), date(2027, 5, 31),
    date(2027, 6, 18), date(2027, 7, 5), date(2027, 9, 6), date(2027, 11, 25), date(2027, 12, 24),
]  # fmt: skip


@pytest.mark.parametrize("year, expected", [(2026, NYSE_2026), (2027, NYSE_2027)])
def test_the_rules_give_the_published_holidays(year, expected):
    first = date(year, 1, 1).toordinal()
    days = (date.fromordinal(n) for n in range(first, first + 366))
    assert sorted(d for d in days if d.year == year and cal.holiday_name(d)) == expected


def test_observance_rules():
    # Independence Day 2026 is a Saturday: observed Friday July 3. Christmas 2027 is a Saturday: Friday Dec 24.
    assert cal.holiday_name(date(2026, 7, 3)) == "Independence Day"
    assert cal.holiday_name(date(2027, 12, 24)) == "Christmas Day"
    # New Year's Day 2028 is a Saturday: not observed on Friday Dec 31, 2027, which trades.
    assert cal.is_trading_day(date(2027, 12, 31))
    # Juneteenth is a holiday from 2022 on: Friday June 18, 2021 traded.
    assert cal.is_trading_day(date(2021, 6, 18)) and not cal.is_trading_day(date(2022, 6, 20))
    assert cal.easter(2026) == date(2026, 4, 5) and cal.easter(2027) == date(2027, 3, 28)


def test_weekends_and_holidays_say_why():
    assert cal.closed_reason(date(2026, 4, 3)) == "2026-04-03 is an NYSE holiday (Good Friday)"
    assert cal.closed_reason(date(2026, 11, 28)) == "Saturday 2026-11-28 is a weekend day"
    assert cal.closed_reason(date(2026, 11, 27)) is None


def test_early_closes_and_the_session():
    assert cal.session_close(date(2026, 11, 27)) == cal.EARLY_CLOSE  # the day after Thanksgiving
    assert cal.session_close(date(2026, 12, 24)) == cal.EARLY_CLOSE  # Christmas Eve, a Thursday
    assert cal.session_close(date(2026, 12, 23)) == cal.CLOSE
    ny = cal.NEW_YORK
    assert cal.outside_session_reason(datetime(2026, 11, 27, 12, 59, tzinfo=ny)) is None
    assert "early close" in cal.outside_session_reason(datetime(2026, 11, 27, 13, 1, tzinfo=ny))
    assert cal.outside_session_reason(datetime(2026, 12, 1, 9, 30, tzinfo=ny)) is None
    assert cal.outside_session_reason(datetime(2026, 12, 1, 16, 0, 30, tzinfo=ny)) is None  # the 16:00 tick
    assert "09:29 New York time is outside" in cal.outside_session_reason(datetime(2026, 12, 1, 9, 29, tzinfo=ny))


def test_extra_holidays_come_from_the_settings(settings):
    settings.MARKET_EXTRA_HOLIDAYS = ["2026-12-02"]
    assert not cal.is_trading_day(date(2026, 12, 2))
    settings.MARKET_EXTRA_HOLIDAYS = ["02/12/2026"]
    with pytest.raises(Exception, match="MARKET_EXTRA_HOLIDAYS"):
        cal.is_trading_day(date(2026, 12, 2))
