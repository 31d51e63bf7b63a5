"""Market data: bars from a source, resampling between bar sizes, and bars as artifacts.

Every bar is labelled at its start, as in the bundled files. Intraday bars (1m .. 1h) carry a
tz-aware DatetimeIndex in New York time; daily and weekly bars a naive one of exchange dates.
Columns are always the floats open, high, low, close, volume, in that order.
"""

from __future__ import annotations

import functools
import io
import re
from collections.abc import Iterable
from datetime import date
from pathlib import Path
from typing import Any, Protocol

import pandas as pd
from django.conf import settings

from brokers.marketdata.bar_sizes import BARS, INTRADAY_MINUTES
from workflows.artifacts.store import artifact_get, artifact_put
from workflows.errors import ApplicationError, StepError

NEW_YORK = "America/New_York"
COLUMNS = ["open", "high", "low", "close", "volume"]
AGGREGATION = {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}
INTRADAY = {bar: pd.Timedelta(minutes=minutes) for bar, minutes in INTRADAY_MINUTES.items()}
# Shared with the fetch step's Params so the editor refuses what parse_period would.
PERIOD_PATTERN = r"^(max|[1-9][0-9]{0,3}[dwmy])$"
_PERIOD_UNITS = {"d": "days", "w": "weeks", "m": "months", "y": "years"}

# SOURCES.md: the 2000-2013 Quandl daily files are unadjusted and these splits fall inside them.
# Keyed by file, because the other AAPL daily file (2019-2024) is already split-adjusted.
UNADJUSTED_SPLITS: dict[str, tuple[tuple[date, float], ...]] = {
    "AAPL-1d-2000-2013.csv": ((date(2000, 6, 21), 2.0), (date(2005, 2, 28), 2.0)),
    "MSFT-1d-2000-2013.csv": ((date(2003, 2, 18), 2.0),),
}

# SYMBOL-1d-anything.csv; the lazy symbol lets a symbol hold a dash (BRK-B-1d-....csv).
_FILE_NAME = re.compile(r"^(?P<symbol>[A-Z0-9][A-Z0-9.\-]*?)-(?P<bar>1d|1m)-.+\.csv$")
_KIND_LABEL = {"1d": "daily", "1m": "1-minute"}
# Calendar days between sessions beyond which coverage is reported as two ranges (a data hole).
_HOLE_DAYS = 7


class MarketDataSource(Protocol):
    def bars(self, *, symbol: str, bar: str, period: str, end: date | None = None) -> pd.DataFrame:
        """Bars for `symbol` over `period` counted back from `end` (default: the latest bar).

        Index `timestamp`: tz-aware New York time for intraday bars, naive dates for 1d/1w.
        A source may also set `notes`, a list of (log level, message) about the bars just served,
        which the fetch step logs (the upload source: the splits applied, suspected unadjusted ones)."""
        ...


def check_bar(bar: str) -> None:
    if bar not in BARS:
        raise StepError(f'Unsupported bar "{bar}"; use one of {", ".join(BARS)}')


def parse_period(period: str) -> pd.DateOffset | None:
    """`30d`, `2w`, `6m`, `1y` -> a calendar offset; `max` -> None (no limit)."""
    if not isinstance(period, str) or not re.fullmatch(PERIOD_PATTERN, period):
        raise StepError(f'Period "{period}" is not valid; use a number and a unit d, w, m or y (30d, 6m, 1y) or "max"')
    if period == "max":
        return None
    return pd.DateOffset(**{_PERIOD_UNITS[period[-1]]: int(period[:-1])})


def session_dates(index: pd.DatetimeIndex) -> pd.DatetimeIndex:
    """The naive exchange date of each bar; an intraday bar belongs to its New York date."""
    if index.tz is not None:
        index = index.tz_convert(NEW_YORK).tz_localize(None)
    return index.normalize()


def _new_york(index: pd.DatetimeIndex) -> pd.DatetimeIndex:
    # Naive intraday timestamps can only mean exchange time.
    return index.tz_localize(NEW_YORK) if index.tz is None else index.tz_convert(NEW_YORK)


def _aggregate(df: pd.DataFrame, labels: Any) -> pd.DataFrame:
    out = df[COLUMNS].groupby(pd.DatetimeIndex(labels, name="timestamp")).agg(AGGREGATION)
    return out.astype(float)


def resample(df: pd.DataFrame, *, source_bar: str, to: str) -> pd.DataFrame:
    """Aggregate bars to a coarser bar, never mixing two sessions in one intraday bucket.

    Intraday buckets start at each session's first bar (1h: 09:30, 10:30, ...); 1d groups by
    New York session date; 1w groups by ISO week, labelled with the week's first session."""
    check_bar(source_bar)
    check_bar(to)
    if BARS.index(to) <= BARS.index(source_bar):
        raise StepError(
            f"Cannot resample {source_bar} bars to {to}: bars can only be aggregated to a coarser bar "
            f"({', '.join(BARS[BARS.index(source_bar) + 1 :]) or 'none is coarser'})"
        )
    if df.empty:
        return df[COLUMNS].copy()
    if to in INTRADAY:
        index = _new_york(df.index)
        times = index.to_series()
        start = times.groupby(index.normalize()).transform("min")
        step = INTRADAY[to]
        return _aggregate(df, start + (times - start) // step * step)
    if source_bar in INTRADAY:
        daily = _aggregate(df, session_dates(df.index))
        return daily if to == "1d" else resample(daily, source_bar="1d", to=to)
    dates = session_dates(df.index)
    monday = dates - pd.to_timedelta(dates.day_of_week, unit="D")
    first_session = dates.to_series().groupby(monday).transform("min")
    return _aggregate(df, first_session)


def _parse_timestamps(values: pd.Series) -> pd.DatetimeIndex:
    # Dates alone are daily bars (naive); anything with a time carries its UTC offset.
    if values.str.len().max() > 10:
        parsed = pd.to_datetime(values, utc=True, format="ISO8601").dt.tz_convert(NEW_YORK)
    else:
        parsed = pd.to_datetime(values, format="%Y-%m-%d")
    return pd.DatetimeIndex(parsed, name="timestamp")


def _frame(raw: pd.DataFrame, what: str) -> pd.DataFrame:
    missing = [c for c in ["timestamp", *COLUMNS] if c not in raw.columns]
    if missing:
        raise StepError(f"{what} has no column(s) {', '.join(missing)}")
    try:
        index = _parse_timestamps(raw["timestamp"].astype(str))
        return pd.DataFrame(raw[COLUMNS].astype(float).to_numpy(), index=index, columns=COLUMNS)
    except ValueError as exc:
        raise StepError(f"{what} is not valid bar data: {exc}") from exc


def adjust_splits(df: pd.DataFrame, splits: Iterable[tuple[date, float]]) -> pd.DataFrame:
    """Split-adjust bars: every bar of a session before a split's (ex-)date has its prices divided
    by the ratio (2 for 2-for-1, 0.1 for a 1-for-10 reverse split) and its volume multiplied.

    The one home of the adjustment: the bundled files' known splits and an upload's split column."""
    df = df.copy()
    # Session dates, so intraday bars (tz-aware) are compared by their New York date too.
    dates = session_dates(df.index)
    for split_date, ratio in splits:
        before = dates < pd.Timestamp(split_date)
        df.loc[before, ["open", "high", "low", "close"]] /= ratio
        df.loc[before, "volume"] *= ratio
    return df


@functools.lru_cache(maxsize=32)
def _read_cached(path: str, mtime_ns: int) -> pd.DataFrame:
    name = Path(path).name
    df = _frame(pd.read_csv(path, dtype={"timestamp": str}), f"Market data file {name}")
    return adjust_splits(df, UNADJUSTED_SPLITS.get(name, ()))


def _read(path: Path) -> pd.DataFrame:
    # The mtime in the cache key makes an edited file load again.
    return _read_cached(str(path), path.stat().st_mtime_ns).copy()


def _coverage(dates: pd.DatetimeIndex) -> list[str]:
    """Date ranges covered by `dates`, split where a hole longer than a week appears."""
    days = dates.unique().sort_values()
    if days.empty:
        return []
    breaks = (days[1:] - days[:-1]) > pd.Timedelta(days=_HOLE_DAYS)
    starts = days[[True, *breaks]]
    ends = days[[*breaks, True]]
    return [f"{a:%Y-%m-%d}..{b:%Y-%m-%d}" for a, b in zip(starts, ends, strict=True)]


class BundledSource:
    """The real CSV files in MARKET_DATA_DIR (see SOURCES.md there): offline, fixed date ranges."""

    name = "bundled"

    def __init__(self, directory: Path | str | None = None) -> None:
        self._directory = Path(directory) if directory is not None else None

    @property
    def directory(self) -> Path:
        return self._directory or Path(settings.MARKET_DATA_DIR)

    def files(self) -> dict[str, dict[str, list[Path]]]:
        """{symbol: {"1d" | "1m": [paths]}} from the file names."""
        found: dict[str, dict[str, list[Path]]] = {}
        for path in sorted(self.directory.glob("*.csv")):
            match = _FILE_NAME.match(path.name)
            if match:
                found.setdefault(match["symbol"], {}).setdefault(match["bar"], []).append(path)
        return found

    def symbols(self) -> list[str]:
        return sorted(self.files())

    def _describe(self, symbol: str, by_kind: dict[str, list[Path]]) -> str:
        parts = []
        for kind, paths in sorted(by_kind.items(), key=lambda item: item[0] != "1d"):
            ranges = [r for path in paths for r in _coverage(session_dates(_read(path).index))]
            parts.append(f"{_KIND_LABEL[kind]} {', '.join(ranges)}")
        return f"bundled {symbol} data covers {'; '.join(parts)}"

    def bars(self, *, symbol: str, bar: str, period: str, end: date | None = None) -> pd.DataFrame:
        symbol = symbol.strip().upper()
        check_bar(bar)
        offset = parse_period(period)
        files = self.files()
        if symbol not in files:
            raise StepError(
                f'No bundled market data for symbol "{symbol}"; available symbols: {", ".join(sorted(files)) or "none"}'
            )
        by_kind = files[symbol]
        # Daily bars come from a daily file when there is one, else from the 1-minute bars.
        kind = "1m" if bar in INTRADAY or "1d" not in by_kind else "1d"
        if kind not in by_kind:
            raise StepError(f"No bundled 1-minute data for {symbol}, so no {bar} bars; {symbol} has daily data only")

        frames = [_read(path) for path in by_kind[kind]]
        if end is None:
            df = max(frames, key=lambda f: f.index[-1])
            anchor = session_dates(df.index)[-1]
        else:
            anchor = pd.Timestamp(end)
            # The file covering `end`, or the latest one before it (then the window may be empty).
            started = [f for f in frames if session_dates(f.index)[0] <= anchor]
            if not started:
                raise StepError(f"No {symbol} {bar} bars up to {anchor:%Y-%m-%d}; {self._describe(symbol, by_kind)}")
            df = max(started, key=lambda f: f.index[0])
            df = df[session_dates(df.index) <= anchor]

        if bar != kind:
            df = resample(df, source_bar=kind, to=bar)
        if offset is not None:
            dates = session_dates(df.index)
            df = df[(dates > anchor - offset) & (dates <= anchor)]
        if df.empty:
            raise StepError(
                f"No {symbol} {bar} bars in the {period} up to {anchor:%Y-%m-%d}; {self._describe(symbol, by_kind)}"
            )
        return df


def market_source(name: str, *, owner_id: int | None = None) -> MarketDataSource:
    """A source by name ("default": the MARKET_DATA_SOURCE setting), from the registry of brokers/adapters/."""
    from brokers.adapters.registry import source_kind

    try:
        return source_kind(name).create(owner_id=owner_id)
    except ApplicationError as exc:
        raise StepError(exc.message) from None


def iso_date(ts: pd.Timestamp) -> str:
    """A bar's label as text: the date for daily bars, ISO 8601 with offset for intraday."""
    return f"{ts:%Y-%m-%d}" if ts.tz is None and ts == ts.normalize() else ts.isoformat()


def bars_to_csv(df: pd.DataFrame) -> bytes:
    index = df.index
    dates_only = index.tz is None and bool((index == index.normalize()).all())
    return df[COLUMNS].to_csv(index_label="timestamp", date_format="%Y-%m-%d" if dates_only else None).encode()


def bars_from_csv(data: bytes) -> pd.DataFrame:
    try:
        raw = pd.read_csv(io.BytesIO(data), dtype={"timestamp": str})
    except (ValueError, pd.errors.ParserError) as exc:
        raise StepError(f"Bars CSV cannot be read: {exc}") from exc
    return _frame(raw, "Bars CSV")


def bars_ref(df: pd.DataFrame, *, symbol: str, bar: str, source: str) -> dict[str, Any]:
    """Store the bars as a CSV artifact; the small dict is what a step outputs."""
    key = artifact_put(data=bars_to_csv(df), kind="bars", ext="csv")
    return ref_describe(df, key=key, symbol=symbol, bar=bar, source=source)


def ref_describe(df: pd.DataFrame, *, key: str, symbol: str, bar: str, source: str) -> dict[str, Any]:
    """The reference to stored bars (or bars with more columns): key, what and which span."""
    empty = df.empty
    return {
        "artifact": key,
        "symbol": symbol,
        "bar": bar,
        "rows": len(df),
        "first": None if empty else iso_date(df.index[0]),
        "last": None if empty else iso_date(df.index[-1]),
        "source": source,
    }


def bars_load(ref: dict[str, Any]) -> pd.DataFrame:
    if not isinstance(ref, dict) or not isinstance(ref.get("artifact"), str):
        raise StepError(f"Expected a bars reference with an artifact key, got {type(ref).__name__}")
    return bars_from_csv(artifact_get(key=ref["artifact"]))
