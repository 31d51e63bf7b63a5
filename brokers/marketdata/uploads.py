"""A user's own bars, uploaded as CSV: validated whole before anything is written.

`bars_upload` checks size, encoding, header, every row (timestamps, order, duplicates, prices,
volume, high/low consistency, blanks) and only then stores the normalised bars as an artifact
and the one current UploadedBars row for (owner, symbol, bar). A rejected file raises an
ApplicationError naming the lines at fault (as numbered in the file, header = line 1).

Splits: a split column (`split_ratio`, `split`, `splits` or `stock_splits`; yfinance writes "Stock
Splits") holds 1, 0 or nothing on ordinary days and the ratio on a split's (ex-)date: 2, 1.5, 0.5
for a reverse split, or the text "4:1", "4/1", "1:10". The bars before each split are adjusted with
`bars.adjust_splits` (the one adjustment, shared with the bundled files) and the upload lists each
split applied. A declared split the prices do not show (the file is adjusted already, or the split
is on another date) is refused, since adjusting would then create the jump it means to remove.
Without a split column, an overnight move within 3% of a common split ratio (2, 3, 4, ... 20 or an
inverse) is a warning stored with the upload, shown on the page and logged by every fetch of those
bars: such a move read as real is a fake crash (or rally) to indicators, charts and the AI analyst.

`UploadedSource(owner_id)` serves those bars through the MarketDataSource protocol, only to
their owner: the fetch step passes the run's workflow owner (`ctx.owner_id`).
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from fractions import Fraction
from typing import Any

import pandas as pd
from django.conf import settings
from django.db import transaction

from brokers.marketdata.bars import (
    BARS,
    COLUMNS,
    INTRADAY,
    NEW_YORK,
    adjust_splits,
    bars_from_csv,
    bars_to_csv,
    check_bar,
    iso_date,
    parse_period,
    resample,
    session_dates,
)
from brokers.models import UploadedBars
from workflows.artifacts.store import artifact_get, artifact_put
from workflows.errors import ApplicationError, StepError

SYMBOL = re.compile(r"^[A-Z0-9][A-Z0-9.\-]{0,31}$")
REQUIRED = ["timestamp", *COLUMNS]
MAX_LINES_LISTED = 10
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

# Header names of a split column, after lower-casing and turning spaces and dashes into "_".
SPLIT_COLUMNS = ("split_ratio", "split", "splits", "stock_splits")
_SPLIT_TEXT = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*[:/]\s*([0-9]*\.?[0-9]+)\s*$")
# Moves that look like an unadjusted split: these ratios and their inverses, within SPLIT_TOLERANCE.
SPLIT_SUSPECT_RATIOS = (2, 3, 4, 5, 7, 8, 10, 15, 20)
SPLIT_TOLERANCE = 0.03
MAX_WARNINGS = 20


def _lines(lines: list[int]) -> str:
    shown = ", ".join(str(n) for n in lines[:MAX_LINES_LISTED])
    more = len(lines) - MAX_LINES_LISTED
    return f"line{'s' if len(lines) > 1 else ''} {shown}" + (f" and {more} more" if more > 0 else "")


class _Problems:
    """Row problems grouped by kind, in the order first seen."""

    def __init__(self) -> None:
        self.by_kind: dict[str, list[int]] = defaultdict(list)
        self.details: list[dict[str, Any]] = []

    def add(self, line: int, kind: str, detail: str) -> None:
        lines = self.by_kind[kind]
        # Lines arrive in order: comparing with the last is enough, and keeps a file with many
        # bad lines linear (a membership test on the list made it quadratic).
        if not lines or lines[-1] != line:
            lines.append(line)
        if len(self.details) < 100:
            self.details.append({"line": line, "problem": kind, "detail": detail})

    def raise_if_any(self, filename: str) -> None:
        if not self.by_kind:
            return
        parts = [f"{kind} on {_lines(lines)}" for kind, lines in self.by_kind.items()]
        raise ApplicationError(
            f"{filename or 'The file'} was rejected and nothing was imported: " + "; ".join(parts) + ".",
            extra={"errors": self.details},
        )


def _check_symbol_and_bar(symbol: str, bar: str) -> str:
    symbol = (symbol or "").strip().upper()
    if not SYMBOL.match(symbol):
        raise ApplicationError(
            f'"{symbol}" is not a valid symbol: use letters, digits, "." or "-" (up to 32 characters)'
        )
    if bar not in BARS:
        raise ApplicationError(f'Unsupported bar "{bar}"; use one of {", ".join(BARS)}')
    return symbol


def _parse_time(text: str, *, intraday: bool) -> pd.Timestamp | None:
    if intraday:
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            return None
        if parsed.tzinfo is None or not re.search(r"\d[T ]\d", text):
            return None
        return pd.Timestamp(parsed).tz_convert(NEW_YORK)
    if not _DATE.match(text):
        return None
    try:
        return pd.Timestamp(date.fromisoformat(text))
    except ValueError:
        return None


def split_label(ratio: float) -> str:
    """A split ratio as people write it: 2.0 -> "2:1", 0.1 -> "1:10", 1.5 -> "3:2"."""
    fraction = Fraction(ratio).limit_denominator(1000)
    return f"{fraction.numerator}:{fraction.denominator}"


def _split_value(text: str) -> float | None:
    """A split cell: None when there is no split (empty, 0, 1), else the ratio; ValueError otherwise."""
    text = text.strip()
    if text == "":
        return None
    match = _SPLIT_TEXT.match(text)
    if match:
        new, old = float(match[1]), float(match[2])
        if new <= 0 or old <= 0:
            raise ValueError(text)
        ratio = new / old
    else:
        ratio = float(text)
        if ratio == 0:
            return None  # yfinance writes 0 on the days without a split
    # Beyond 1000:1 either way is a typo (or a price in the wrong column), not a split.
    if not math.isfinite(ratio) or not 1 / 1000 <= ratio <= 1000:
        raise ValueError(text)
    return None if ratio == 1 else ratio


def _split_kind(ratio: float) -> str:
    return f"{split_label(ratio)}{' reverse' if ratio < 1 else ''} split"


def _number(x: float) -> str:
    return f"{x:.8g}"


@dataclass
class ParsedBars:
    """An upload's bars, split-adjusted, with the splits applied and the moves that look like splits."""

    bars: pd.DataFrame
    splits: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[dict[str, Any]] = field(default_factory=list)


def _gap(df: pd.DataFrame, dates: pd.DatetimeIndex, day: pd.Timestamp) -> tuple[int, int] | None:
    """Positions of the last bar before `day` and the first on or after it (None at either end)."""
    first_after = int((dates < day).sum())
    if first_after == 0 or first_after == len(df):
        return None
    return first_after - 1, first_after


def _check_declared_splits(
    df: pd.DataFrame, splits: dict[date, tuple[float, int]], *, bar: str, column: str, problems: _Problems
) -> None:
    """Refuse a declared split the prices do not show: adjusting would create the jump it means to remove.

    The move over the split is the close before it over the first price after it (the open; for
    weekly bars the close, since the split may fall inside the week). Adjusting divides that move
    by the ratio; when this takes it further from 1 than it was, the bars are split-adjusted
    already (yfinance's defaults) or the split is on another date."""
    dates = session_dates(df.index)
    after_column = "close" if bar == "1w" else "open"
    for day, (ratio, line) in splits.items():
        where = _gap(df, dates, pd.Timestamp(day))
        if where is None:
            continue
        before, after = where
        move = df["close"].iloc[before] / df[after_column].iloc[after]
        if abs(math.log(move / ratio)) > abs(math.log(move)):
            problems.add(
                line,
                f'split in column "{column}" that the prices do not show (the bars look split-adjusted '
                "already, or the split is on another date)",
                f"{_split_kind(ratio)} on {day}, but the price went from {_number(df['close'].iloc[before])} "
                f"(close on {dates[before]:%Y-%m-%d}) to {_number(df[after_column].iloc[after])} ({after_column})",
            )


def _near_split(move: float) -> float | None:
    for k in SPLIT_SUSPECT_RATIOS:
        for ratio in (float(k), 1 / k):
            if abs(move / ratio - 1) <= SPLIT_TOLERANCE:
                return ratio
    return None


def _split_suspects(df: pd.DataFrame, *, bar: str, column: str | None) -> list[dict[str, Any]]:
    """Overnight moves that look like an unadjusted split, one per session.

    The move is the last close of a session over the next session's first open; for daily and
    weekly bars also over that bar's close (a weekly bar's split may fall inside the week, and a
    daily bar's open may already be off the split's level)."""
    dates = session_dates(df.index)
    starts = [i for i in range(1, len(df)) if dates[i] != dates[i - 1]]
    closes, opens = df["close"].to_numpy(), df["open"].to_numpy()
    found: list[dict[str, Any]] = []
    for i in starts:
        previous = closes[i - 1]
        ratio, price, which = _near_split(previous / opens[i]), opens[i], "open"
        if ratio is None and bar not in INTRADAY:
            ratio, price, which = _near_split(previous / closes[i]), closes[i], "close"
        if ratio is None:
            continue
        day = f"{dates[i]:%Y-%m-%d}"
        value = split_label(ratio) if ratio < 1 else _number(ratio)
        fix = (
            f'put {value} on {day} in the "{column}" column'
            if column
            else f"add a split_ratio column holding {value} on {day} (1 or empty on other days)"
        )
        found.append(
            {
                "date": day,
                "ratio": split_label(ratio),
                "message": (
                    f"{day}: the price {'fell' if ratio > 1 else 'rose'} from {_number(previous)} "
                    f"(close on {dates[i - 1]:%Y-%m-%d}) to {_number(price)} ({which}), the move of an "
                    f"unadjusted {_split_kind(ratio)}. If it was a split, {fix}, or upload split-adjusted "
                    "bars; if the move was real, nothing is wrong."
                ),
            }
        )
    if len(found) > MAX_WARNINGS:
        more = len(found) - MAX_WARNINGS
        after = found[MAX_WARNINGS - 1]["date"]
        summary = {"date": None, "ratio": None, "message": f"and {more} more moves like these after {after}"}
        found = [*found[:MAX_WARNINGS], summary]
    return found


def parse_bars_csv(data: bytes, *, bar: str, filename: str = "") -> ParsedBars:
    """Validate an uploaded CSV completely and return its split-adjusted bars; ApplicationError naming the rows."""
    check_bar(bar)
    name = filename or "The file"
    limit_mb = settings.MARKET_UPLOAD_MAX_MB
    if len(data) > limit_mb * 1024 * 1024:
        raise ApplicationError(f"{name} is {len(data) / 1024 / 1024:.1f} MB; the largest upload is {limit_mb} MB")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ApplicationError(f"{name} is not UTF-8 text (first bad byte on line {line})") from exc
    if "\x00" in text:
        raise ApplicationError(f"{name} is not a text file (it holds NUL bytes)")

    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        while header is not None and not any(cell.strip() for cell in header):
            header = next(reader, None)  # leading blank lines
        if header is None:
            raise ApplicationError(f"{name} is empty; expected a header line: {', '.join(REQUIRED)}")
        header_line = reader.line_num
        names = [cell.strip().lower() for cell in header]
        missing = [c for c in REQUIRED if c not in names]
        if missing:
            raise ApplicationError(
                f"{name}: the header (line {header_line}) has no column {', '.join(missing)}; "
                f"expected {', '.join(REQUIRED)} (any case, other columns are ignored)"
            )
        repeated = sorted({c for c in REQUIRED if names.count(c) > 1})
        if repeated:
            raise ApplicationError(f"{name}: the header (line {header_line}) repeats column {', '.join(repeated)}")
        where = {c: names.index(c) for c in REQUIRED}
        split_columns = [i for i, n in enumerate(names) if re.sub(r"[\s\-]+", "_", n) in SPLIT_COLUMNS]
        if len(split_columns) > 1:
            shown = ", ".join(f'"{header[i].strip()}"' for i in split_columns)
            raise ApplicationError(
                f"{name}: the header (line {header_line}) has more than one split column ({shown}); keep one"
            )
        split_at = split_columns[0] if split_columns else None
        split_column = header[split_at].strip() if split_at is not None else None
        splits: dict[date, tuple[float, int]] = {}

        intraday = bar in INTRADAY
        expected_time = (
            "an ISO date and time with a UTC offset, e.g. 2024-01-02T09:30:00-05:00"
            if intraday
            else "a date YYYY-MM-DD"
        )
        problems = _Problems()
        stamps: list[pd.Timestamp] = []
        values: list[list[float]] = []
        previous: pd.Timestamp | None = None
        seen: dict[pd.Timestamp, int] = {}
        for row in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in row):
                continue  # blank line (a trailing newline, say)
            cells = {c: (row[i].strip() if i < len(row) else "") for c, i in where.items()}
            blanks = [c for c, v in cells.items() if v == ""]
            if blanks:
                problems.add(line, "blank value", f"no value for {', '.join(blanks)}")
                continue
            stamp = _parse_time(cells["timestamp"], intraday=intraday)
            if stamp is None:
                problems.add(line, f"timestamp is not {expected_time}", f'"{cells["timestamp"]}"')
            numbers: dict[str, float] = {}
            for column in COLUMNS:
                try:
                    number = float(cells[column])
                except ValueError:
                    problems.add(line, "not a number", f'{column} "{cells[column]}"')
                    continue
                if math.isnan(number):
                    problems.add(line, "blank value", f"{column} is NaN")
                elif math.isinf(number):
                    problems.add(line, "not a number", f"{column} is infinite")
                else:
                    numbers[column] = number
            if stamp is not None:
                if stamp in seen:
                    problems.add(line, "duplicate timestamp", f"{cells['timestamp']} is on line {seen[stamp]} too")
                elif previous is not None and stamp < previous:
                    problems.add(
                        line, "timestamps not in ascending order", f"{cells['timestamp']} is before the line above"
                    )
                else:
                    seen[stamp] = line
                previous = stamp if previous is None else max(previous, stamp)
            if split_at is not None:
                cell = row[split_at].strip() if split_at < len(row) else ""
                try:
                    ratio = _split_value(cell)
                except ValueError:
                    problems.add(
                        line,
                        f'invalid value in split column "{split_column}" (expected a ratio such as 2, 0.5, 4:1 '
                        "or 1:10 on a split's date; 1, 0 or empty on other days)",
                        f'"{cell}"',
                    )
                    ratio = None
                if ratio is not None and stamp is not None:
                    day = stamp.date()
                    if day not in splits:
                        splits[day] = (ratio, line)
                    elif splits[day][0] != ratio:  # the same split on every bar of an intraday day is fine
                        problems.add(
                            line,
                            f'two different splits on one day in column "{split_column}"',
                            f"{split_label(ratio)} here, {split_label(splits[day][0])} on line {splits[day][1]}",
                        )
            if len(numbers) < len(COLUMNS):
                continue
            o, h, lo, c, v = (numbers[k] for k in COLUMNS)
            if min(o, h, lo, c) <= 0:
                problems.add(line, "non-positive price", f"open {o}, high {h}, low {lo}, close {c}")
            if v < 0:
                problems.add(line, "negative volume", f"volume {v}")
            if h < lo:
                problems.add(line, "high below low", f"high {h} < low {lo}")
            if h < max(o, c):
                problems.add(line, "high below open or close", f"high {h} < max(open {o}, close {c})")
            if lo > min(o, c):
                problems.add(line, "low above open or close", f"low {lo} > min(open {o}, close {c})")
            if stamp is not None:
                stamps.append(stamp)
                values.append([o, h, lo, c, v])
    except csv.Error as exc:
        raise ApplicationError(f"{name} is not valid CSV (line {reader.line_num}): {exc}") from exc

    problems.raise_if_any(name)
    if not values:
        raise ApplicationError(f"{name} has a header but no bars")
    index = pd.DatetimeIndex(stamps, name="timestamp")
    df = pd.DataFrame(values, index=index, columns=COLUMNS, dtype=float)
    applied: list[dict[str, Any]] = []
    if splits:
        _check_declared_splits(df, splits, bar=bar, column=str(split_column), problems=problems)
        problems.raise_if_any(name)
        dates = session_dates(df.index)
        for day, (ratio, _line) in sorted(splits.items()):
            count = int((dates < pd.Timestamp(day)).sum())
            bars_text = f"the {count:,} bar{'s' if count != 1 else ''} before it" if count else "no bar before it"
            applied.append(
                {
                    "date": day.isoformat(),
                    "ratio": ratio,
                    "label": split_label(ratio),
                    "bars_adjusted": count,
                    "message": f"{day}: {_split_kind(ratio)} applied to {bars_text}",
                }
            )
        df = adjust_splits(df, ((day, ratio) for day, (ratio, _line) in splits.items()))
    # Through the CSV form, so what is stored is exactly what later loads back.
    df = bars_from_csv(bars_to_csv(df))
    return ParsedBars(bars=df, splits=applied, warnings=_split_suspects(df, bar=bar, column=split_column))


def bars_upload(*, owner: Any, symbol: str, bar: str, filename: str, data: bytes) -> UploadedBars:
    """Validate the whole file, then store it as the owner's current bars for (symbol, bar)."""
    symbol = _check_symbol_and_bar(symbol, bar)
    filename = (filename or "").rsplit("/", 1)[-1].rsplit("\\", 1)[-1][:255]
    parsed = parse_bars_csv(data, bar=bar, filename=filename)
    df = parsed.bars
    key = artifact_put(data=bars_to_csv(df), kind="bars", ext="csv")
    with transaction.atomic():
        upload, _ = UploadedBars.objects.select_for_update().update_or_create(
            owner=owner,
            symbol=symbol,
            bar=bar,
            defaults={
                "rows": len(df),
                "first": iso_date(df.index[0]),
                "last": iso_date(df.index[-1]),
                "original_filename": filename,
                "artifact": key,
                "splits": parsed.splits,
                "warnings": parsed.warnings,
            },
        )
    return upload


def uploads_visible(*, user: Any):
    """A user's own uploads (nobody sees another's, staff included: they are private data)."""
    if not getattr(user, "is_authenticated", False):
        return UploadedBars.objects.none()
    return UploadedBars.objects.filter(owner=user)


class UploadedSource:
    """The run owner's uploaded bars as a MarketDataSource."""

    name = "upload"

    def __init__(self, owner_id: int | None = None) -> None:
        self.owner_id = owner_id
        # (level, message) about the bars last served, for the fetch step's log: the splits the
        # upload applied, and its split warnings that fall inside the bars served.
        self.notes: list[tuple[str, str]] = []

    def bars(self, *, symbol: str, bar: str, period: str, end: date | None = None) -> pd.DataFrame:
        if self.owner_id is None:
            raise StepError(
                "Uploaded bars are private to their owner, and this step does not know the run's owner; "
                "the upload source can only be used inside a run"
            )
        symbol = (symbol or "").strip().upper()
        check_bar(bar)
        offset = parse_period(period)
        uploads = {u.bar: u for u in UploadedBars.objects.filter(owner_id=self.owner_id, symbol=symbol)}
        usable = [b for b in BARS[: BARS.index(bar) + 1] if b in uploads]
        if not usable:
            have = ", ".join(sorted(uploads, key=BARS.index)) or "none"
            raise StepError(
                f"No uploaded {symbol} bars at {bar} or finer (you have uploaded {symbol} bars: {have}); "
                "upload them on the Market data page"
            )
        upload = uploads[usable[-1]]  # the coarsest that is still fine enough: least resampling
        df = bars_from_csv(artifact_get(key=upload.artifact))
        if end is None:
            anchor = session_dates(df.index)[-1]
        else:
            anchor = pd.Timestamp(end)
            df = df[session_dates(df.index) <= anchor]
        if upload.bar != bar and not df.empty:
            df = resample(df, source_bar=upload.bar, to=bar)
        if offset is not None and not df.empty:
            dates = session_dates(df.index)
            df = df[(dates > anchor - offset) & (dates <= anchor)]
        if df.empty:
            raise StepError(
                f"No uploaded {symbol} {bar} bars in the {period} up to {anchor:%Y-%m-%d}; "
                f"your {upload.bar} upload covers {upload.first} .. {upload.last}"
            )
        self.notes = _notes(upload, df)
        return df


def _notes(upload: UploadedBars, df: pd.DataFrame) -> list[tuple[str, str]]:
    """What a run should hear about an upload's splits, limited to the sessions of the bars it got."""
    dates = session_dates(df.index)
    first, last = f"{dates[0]:%Y-%m-%d}", f"{dates[-1]:%Y-%m-%d}"
    what = f"Your {upload.symbol} {upload.bar} upload ({upload.original_filename or 'no file name'})"
    notes: list[tuple[str, str]] = []
    applied = [s["message"] for s in upload.splits if first < s["date"] <= last]
    if applied:
        notes.append(("info", f"{what} is split-adjusted: " + "; ".join(applied)))
    for warning in upload.warnings:
        # A move on the first bar served is not in these bars; the summary line (no date) always is.
        if warning["date"] is None or first < warning["date"] <= last:
            notes.append(("warning", f"{what} may hold an unadjusted split: {warning['message']}"))
    return notes
