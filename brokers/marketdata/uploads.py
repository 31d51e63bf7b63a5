"""A user's own bars, uploaded as CSV: validated whole before anything is written.

`bars_upload` checks size, encoding, header, every row (timestamps, order, duplicates, prices,
volume, high/low consistency, blanks) and only then stores the normalised bars as an artifact
and the one current UploadedBars row for (owner, symbol, bar). A rejected file raises an
ApplicationError naming the lines at fault (as numbered in the file, header = line 1).

`UploadedSource(owner_id)` serves those bars through the MarketDataSource protocol, only to
their owner: the fetch step passes the run's workflow owner (`ctx.owner_id`).
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections import defaultdict
from datetime import date, datetime
from typing import Any

import pandas as pd
from django.conf import settings
from django.db import transaction

from brokers.marketdata.bars import (
    BARS,
    COLUMNS,
    INTRADAY,
    NEW_YORK,
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


def parse_bars_csv(data: bytes, *, bar: str, filename: str = "") -> pd.DataFrame:
    """Validate an uploaded CSV completely and return its bars; ApplicationError naming the rows."""
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
    # Through the CSV form, so what is stored is exactly what later loads back.
    return bars_from_csv(bars_to_csv(df))


def bars_upload(*, owner: Any, symbol: str, bar: str, filename: str, data: bytes) -> UploadedBars:
    """Validate the whole file, then store it as the owner's current bars for (symbol, bar)."""
    symbol = _check_symbol_and_bar(symbol, bar)
    filename = (filename or "").rsplit("/", 1)[-1].rsplit("\\", 1)[-1][:255]
    df = parse_bars_csv(data, bar=bar, filename=filename)
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
        return df
