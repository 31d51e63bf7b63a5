"""Market data against the real bundled files (brokers/data/market, see SOURCES.md there).

Expected values are worked out from the raw CSV rows, never with the code under test."""

import csv
import re
import shutil
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from django.conf import settings as django_settings

from brokers.marketdata.bars import (
    BundledSource,
    bars_from_csv,
    bars_load,
    bars_ref,
    bars_to_csv,
    parse_period,
    resample,
)
from workflows.artifacts.store import artifact_get
from workflows.errors import StepError

DATA = Path(django_settings.MARKET_DATA_DIR)


@pytest.fixture(autouse=True)
def _artifacts_dir(settings, tmp_path):
    settings.ARTIFACTS_DIR = tmp_path / "artifacts"


@pytest.fixture
def source():
    return BundledSource()


def raw_rows(name: str) -> list[dict[str, str]]:
    with (DATA / name).open(newline="") as f:
        return list(csv.DictReader(f))


def raw_daily(name: str) -> pd.DataFrame:
    return pd.read_csv(DATA / name, index_col="timestamp", parse_dates=True)


def closes_in(df: pd.DataFrame, start: str, end: str) -> pd.Series:
    return df["close"].pct_change().loc[start:end]


# Split adjustment


@pytest.mark.parametrize(
    ("symbol", "split_day"),
    [("AAPL", "2000-06-21"), ("AAPL", "2005-02-28"), ("MSFT", "2003-02-18")],
)
def test_unadjusted_split_shows_a_fake_halving_that_adjustment_removes(source, symbol, split_day):
    day = pd.Timestamp(split_day)
    start, end = f"{day - pd.Timedelta(days=20):%Y-%m-%d}", f"{day + pd.Timedelta(days=20):%Y-%m-%d}"
    raw = raw_daily(f"{symbol}-1d-2000-2013.csv")
    # The check below can fail: on the raw file it finds the -50% day.
    raw_moves = closes_in(raw, start, end)
    assert raw_moves.idxmin() == day
    assert raw_moves.min() < -0.45

    adjusted = source.bars(symbol=symbol, bar="1d", period="max", end=date(2013, 3, 1))
    assert closes_in(adjusted, start, end).min() > -0.2


def test_split_adjustment_divides_prices_and_multiplies_volume(source):
    adjusted = source.bars(symbol="AAPL", bar="1d", period="max", end=date(2013, 3, 1))
    raw = raw_daily("AAPL-1d-2000-2013.csv")
    # 2000-06-20 is before both splits (x4), 2005-02-25 before the second only (x2), 2013 after both.
    for day, factor in [("2000-06-20", 4), ("2005-02-25", 2), ("2013-03-01", 1)]:
        for column in ("open", "high", "low", "close"):
            assert adjusted.loc[day, column] == pytest.approx(raw.loc[day, column] / factor)
        assert adjusted.loc[day, "volume"] == raw.loc[day, "volume"] * factor


def test_real_drop_on_2000_09_29_is_kept(source):
    adjusted = source.bars(symbol="AAPL", bar="1d", period="max", end=date(2013, 3, 1))
    assert closes_in(adjusted, "2000-09-29", "2000-09-29").iloc[0] < -0.45


@pytest.mark.parametrize("name", ["AAPL-1d-2019-2024.csv", "IBM-1d-2000-2013.csv", "SPY-1d-1999-2020.csv"])
def test_files_without_named_splits_are_not_touched(source, name):
    raw = raw_daily(name)
    symbol = name.split("-")[0]
    bars = source.bars(symbol=symbol, bar="1d", period="max", end=raw.index[-1].date())
    assert list(bars.columns) == ["open", "high", "low", "close", "volume"]
    assert (bars["close"].to_numpy() == raw["close"].to_numpy()).all()
    assert (bars["volume"].to_numpy() == raw["volume"].to_numpy()).all()


# Files and row counts


def sources_table() -> list[tuple[str, str, int]]:
    """(file, range column, rows) for each file row of SOURCES.md's table."""
    rows = []
    for line in (DATA / "SOURCES.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 4 and cells[0].endswith(".csv"):
            rows.append((cells[0], cells[2], int(cells[3])))
    return rows


def test_sources_table_lists_every_file():
    assert {name for name, _, _ in sources_table()} == {p.name for p in DATA.glob("*.csv")}


@pytest.mark.parametrize(("name", "span", "rows"), sources_table())
def test_files_match_sources_row_counts_and_ranges(source, name, span, rows):
    symbol, kind = name.split("-")[:2]
    last_line = (DATA / name).read_text().strip().splitlines()[-1]
    end = date.fromisoformat(last_line[:10])
    bars = source.bars(symbol=symbol, bar=kind, period="max", end=end)
    assert len(bars) == rows
    if kind == "1d":
        first, last = re.findall(r"\d{4}-\d{2}-\d{2}", span)
        assert f"{bars.index[0]:%Y-%m-%d}" == first
        assert f"{bars.index[-1]:%Y-%m-%d}" == last
        assert bars.index.tz is None
    else:
        assert str(bars.index.tz) == "America/New_York"
    assert bars.index.name == "timestamp"
    assert bars.index.is_monotonic_increasing and bars.index.is_unique


def test_default_daily_file_is_the_latest_one(source):
    bars = source.bars(symbol="AAPL", bar="1d", period="max")
    assert f"{bars.index[0]:%Y-%m-%d}" == "2019-01-02"
    assert f"{bars.index[-1]:%Y-%m-%d}" == "2024-12-30"


def test_end_picks_the_file_covering_it(source):
    bars = source.bars(symbol="AAPL", bar="1d", period="1y", end=date(2010, 6, 30))
    assert bars.index[-1] == pd.Timestamp("2010-06-30")
    assert bars.index[0] > pd.Timestamp("2009-06-30")
    assert bars.index[0] <= pd.Timestamp("2009-07-06")


# Periods


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30d", pd.DateOffset(days=30)),
        ("2w", pd.DateOffset(weeks=2)),
        ("6m", pd.DateOffset(months=6)),
        ("1y", pd.DateOffset(years=1)),
        ("5y", pd.DateOffset(years=5)),
        ("max", None),
    ],
)
def test_period_parsing(text, expected):
    assert parse_period(text) == expected


@pytest.mark.parametrize("text", ["", "0d", "1q", "d", "1.5y", "-1y", "1Y", " 1y", "max ", "10000d", "1 y"])
def test_malformed_period_is_refused_naming_it(text):
    with pytest.raises(StepError, match=f'Period "{re.escape(text)}" is not valid'):
        parse_period(text)


@pytest.mark.parametrize(
    ("period", "after"),
    [("30d", "2013-01-30"), ("6m", "2012-09-01"), ("1y", "2012-03-01"), ("5y", "2008-03-01")],
)
def test_period_is_a_calendar_lookback_from_the_last_bar(source, period, after):
    bars = source.bars(symbol="IBM", bar="1d", period=period)
    raw = raw_daily("IBM-1d-2000-2013.csv")
    expected = raw.loc[(raw.index > pd.Timestamp(after)) & (raw.index <= pd.Timestamp("2013-03-01"))]
    assert list(bars.index) == list(expected.index)


# Errors


def test_unknown_symbol_names_it_and_lists_available(source):
    with pytest.raises(StepError) as exc:
        source.bars(symbol="ZZZZ", bar="1d", period="1y")
    assert '"ZZZZ"' in str(exc.value)
    assert "AAPL, GOOG, IBM, MSFT, SPY" in str(exc.value)


def test_unsupported_bar_names_it(source):
    with pytest.raises(StepError, match='Unsupported bar "2h"'):
        source.bars(symbol="AAPL", bar="2h", period="1y")


def test_intraday_bars_for_a_daily_only_symbol(source):
    with pytest.raises(StepError, match="No bundled 1-minute data for GOOG"):
        source.bars(symbol="GOOG", bar="1h", period="30d")


def test_no_bars_in_range_names_the_range_and_the_coverage(source):
    with pytest.raises(StepError) as exc:
        source.bars(symbol="AAPL", bar="1d", period="1y", end=date(2016, 1, 1))
    message = str(exc.value)
    assert "up to 2016-01-01" in message
    assert "2000-03-01..2013-03-01" in message and "2019-01-02..2024-12-30" in message


def test_spy_february_2011_hole_is_reported(source):
    with pytest.raises(StepError) as exc:
        source.bars(symbol="SPY", bar="1m", period="10d", end=date(2011, 2, 20))
    assert "2011-01-03..2011-01-31, 2011-03-01..2011-03-31" in str(exc.value)


def test_end_before_any_data(source):
    with pytest.raises(StepError, match="No SPY 1d bars up to 1990-01-01"):
        source.bars(symbol="SPY", bar="1d", period="max", end=date(1990, 1, 1))


@pytest.mark.parametrize(("source_bar", "to"), [("1d", "1h"), ("1h", "1h"), ("1w", "1d"), ("15m", "5m")])
def test_impossible_resample_is_refused(source_bar, to):
    end = None if source_bar in ("1m", "5m", "15m", "1h") else date(2013, 3, 1)
    df = BundledSource().bars(symbol="AAPL", bar=source_bar, period="max", end=end)
    with pytest.raises(StepError, match=f"Cannot resample {source_bar} bars to {to}"):
        resample(df, source_bar=source_bar, to=to)


def test_resample_to_unknown_bar_names_it(source):
    df = source.bars(symbol="SPY", bar="1d", period="30d")
    with pytest.raises(StepError, match='Unsupported bar "1mo"'):
        resample(df, source_bar="1d", to="1mo")


# Resampling the 1-minute files


def expected_from_raw(rows: list[dict[str, str]]) -> dict[str, float]:
    return {
        "open": float(rows[0]["open"]),
        "high": max(float(r["high"]) for r in rows),
        "low": min(float(r["low"]) for r in rows),
        "close": float(rows[-1]["close"]),
        "volume": sum(float(r["volume"]) for r in rows),
    }


def test_1m_to_1d_matches_the_raw_rows_of_a_day(source):
    minutes = source.bars(symbol="AAPL", bar="1m", period="max")
    daily = resample(minutes, source_bar="1m", to="1d")
    raw = raw_rows("AAPL-1m-2016-04-15_2016-05-13.csv")
    day_rows = [r for r in raw if r["timestamp"].startswith("2016-04-27")]
    assert len(day_rows) == 391
    expected = expected_from_raw(day_rows)
    got = daily.loc["2016-04-27"]
    for column, value in expected.items():
        assert got[column] == pytest.approx(value), column
    assert len(daily) == len({r["timestamp"][:10] for r in raw}) == 21
    assert daily.index.tz is None


def test_daily_from_1m_when_no_daily_file(tmp_path):
    shutil.copy(DATA / "AAPL-1m-2016-04-15_2016-05-13.csv", tmp_path)
    only_minutes = BundledSource(tmp_path)
    daily = only_minutes.bars(symbol="AAPL", bar="1d", period="max")
    assert len(daily) == 21
    expected = expected_from_raw(
        [r for r in raw_rows("AAPL-1m-2016-04-15_2016-05-13.csv") if "2016-05-02" in r["timestamp"]]
    )
    assert daily.loc["2016-05-02", "high"] == pytest.approx(expected["high"])
    weekly = only_minutes.bars(symbol="AAPL", bar="1w", period="max")
    assert [f"{t:%Y-%m-%d}" for t in weekly.index] == [
        "2016-04-15",
        "2016-04-18",
        "2016-04-25",
        "2016-05-02",
        "2016-05-09",
    ]


def test_1h_bars_start_at_0930_and_a_session_has_seven(source):
    hours = source.bars(symbol="AAPL", bar="1h", period="max")
    local = hours.index.tz_convert("America/New_York")
    per_session = pd.Series(local.strftime("%H:%M"), index=local.date).groupby(level=0).agg(list)
    assert len(per_session) == 21
    for times in per_session:
        assert times == ["09:30", "10:30", "11:30", "12:30", "13:30", "14:30", "15:30"]
    # 10:30 bucket = raw minutes 10:30 .. 11:29 of that day.
    raw = [r for r in raw_rows("AAPL-1m-2016-04-15_2016-05-13.csv") if r["timestamp"].startswith("2016-04-27")]
    bucket = [r for r in raw if "T10:30" <= r["timestamp"][10:16] <= "T11:29"]
    assert len(bucket) == 60
    got = hours.loc[pd.Timestamp("2016-04-27 10:30", tz="America/New_York")]
    for column, value in expected_from_raw(bucket).items():
        assert got[column] == pytest.approx(value), column


def test_1h_anchor_follows_new_york_time_across_dst(source):
    # SPY 1-minute spans the 2011-03-13 DST change; sessions still start 09:30 local.
    hours = source.bars(symbol="SPY", bar="1h", period="max")
    local = hours.index.tz_convert("America/New_York")
    assert set(local.strftime("%H:%M")) == {"09:30", "10:30", "11:30", "12:30", "13:30", "14:30", "15:30"}
    assert len(hours) == 7 * (16770 // 390)


@pytest.mark.parametrize("to", ["5m", "15m", "1h", "1d"])
def test_no_bucket_crosses_a_session(source, to):
    minutes = source.bars(symbol="SPY", bar="1m", period="max")
    out = resample(minutes, source_bar="1m", to=to)
    # Each minute belongs to the last bucket starting at or before it; both must share a date.
    position = (
        out.index.searchsorted(minutes.index.tz_localize(None) if out.index.tz is None else minutes.index, side="right")
        - 1
    )
    assert (position >= 0).all()
    bucket_dates = pd.DatetimeIndex(out.index[position]).strftime("%Y-%m-%d")
    minute_dates = minutes.index.tz_convert("America/New_York").strftime("%Y-%m-%d")
    assert (bucket_dates == minute_dates).all()
    assert out["volume"].sum() == minutes["volume"].sum()


def test_sessions_are_new_york_dates_even_for_utc_input():
    # 19:30 and 20:30 New York are on the next UTC day; they still belong to the 2016-04-15 session.
    index = pd.DatetimeIndex(
        ["2016-04-15 19:30", "2016-04-15 20:30", "2016-04-18 09:30", "2016-04-18 09:45"], tz="America/New_York"
    ).tz_convert("UTC")
    df = pd.DataFrame(
        {
            "open": [1, 2, 3, 4],
            "high": [5, 6, 7, 8],
            "low": [1, 1, 1, 1],
            "close": [2, 3, 4, 5],
            "volume": [1, 1, 1, 1],
        },
        index=index,
    ).astype(float)
    daily = resample(df, source_bar="15m", to="1d")
    assert [f"{t:%Y-%m-%d}" for t in daily.index] == ["2016-04-15", "2016-04-18"]
    assert list(daily["high"]) == [6, 8]
    hours = resample(df, source_bar="15m", to="1h")
    assert list(hours.index.strftime("%m-%d %H:%M")) == ["04-15 19:30", "04-15 20:30", "04-18 09:30"]


# Weekly


def test_1d_to_1w_labels_first_session_and_takes_the_weeks_extremes(source):
    daily = source.bars(symbol="SPY", bar="1d", period="max")
    weekly = resample(daily, source_bar="1d", to="1w")
    raw = raw_daily("SPY-1d-1999-2020.csv")
    iso = raw.index.isocalendar()
    groups = raw.groupby([iso["year"].to_numpy(), iso["week"].to_numpy()])
    assert len(weekly) == groups.ngroups
    expected = groups.agg(first=("open", "first"), high=("high", "max"), low=("low", "min"), volume=("volume", "sum"))
    expected.index = groups.apply(lambda g: g.index[0]).to_numpy()
    expected = expected.sort_index()
    assert list(weekly.index) == list(expected.index)
    assert (weekly["high"].to_numpy() == expected["high"].to_numpy()).all()
    assert (weekly["low"].to_numpy() == expected["low"].to_numpy()).all()
    assert (weekly["volume"].to_numpy() == expected["volume"].to_numpy()).all()

    sessions = set(raw.index)
    for label in weekly.index:
        earlier_same_week = [label - pd.Timedelta(days=d) for d in range(1, label.day_of_week + 1)]
        assert label.day_of_week == 0 or not sessions.intersection(earlier_same_week)
    # Memorial Day 2012 was Monday 05-28: that week starts Tuesday.
    assert pd.Timestamp("2012-05-29") in weekly.index
    assert pd.Timestamp("2012-05-28") not in weekly.index
    assert (weekly.index.day_of_week == 0).mean() > 0.9


# CSV and artifacts


@pytest.mark.parametrize(("symbol", "bar"), [("AAPL", "1m"), ("SPY", "1h"), ("MSFT", "1d"), ("SPY", "1w")])
def test_csv_round_trip(source, symbol, bar):
    bars = source.bars(symbol=symbol, bar=bar, period="max", end=date(2016, 5, 13) if bar in ("1d", "1w") else None)
    back = bars_from_csv(bars_to_csv(bars))
    pd.testing.assert_frame_equal(back, bars)
    assert back.index.name == "timestamp"


def test_daily_csv_writes_plain_dates(source):
    text = bars_to_csv(source.bars(symbol="IBM", bar="1d", period="30d")).decode()
    assert text.splitlines()[0] == "timestamp,open,high,low,close,volume"
    assert re.match(r"^\d{4}-\d{2}-\d{2},", text.splitlines()[1])


def test_bad_csv_is_a_step_error():
    with pytest.raises(StepError, match="no column"):
        bars_from_csv(b"timestamp,price\n2020-01-02,1\n")


def test_bars_ref_stores_an_artifact_that_loads_back(source, tmp_path):
    bars = source.bars(symbol="AAPL", bar="1h", period="5d")
    ref = bars_ref(bars, symbol="AAPL", bar="1h", source="bundled")
    assert ref["artifact"].startswith("bars/") and ref["artifact"].endswith(".csv")
    assert (tmp_path / "artifacts" / ref["artifact"]).exists()
    assert ref["rows"] == len(bars) == 7 * 5
    assert ref["first"] == "2016-05-09T09:30:00-04:00"
    assert ref["last"] == "2016-05-13T15:30:00-04:00"
    assert {k: ref[k] for k in ("symbol", "bar", "source")} == {"symbol": "AAPL", "bar": "1h", "source": "bundled"}
    pd.testing.assert_frame_equal(bars_load(ref), bars)
    assert artifact_get(key=ref["artifact"]) == bars_to_csv(bars)


def test_bars_load_refuses_what_is_not_a_reference():
    with pytest.raises(StepError, match="Expected a bars reference"):
        bars_load("bars/abc.csv")
