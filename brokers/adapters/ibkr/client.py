"""Bars from Interactive Brokers through ib_async, behind the MarketDataSource protocol.

One request = qualify the contract, ask `reqHistoricalData` for a duration and bar size mapped
from the step's (period, bar), convert the bars to the protocol's frame, trim to the period.

- Durations per bar size. IB wants "only a few thousand bars at a time" (its step-size rule,
  historical_limitations in the TWS API docs); its documented table of duration -> allowed bar
  sizes (1 D: 1 min..1 day, 1 W: 3 mins..1 week, 1 M: 30 mins..1 month, 1 Y: 1 day..1 month)
  was relaxed for bars of 1 minute and more, but a request must stay around 2,000 bars.
  The largest duration served here for each bar (MAX_DURATION) is:

      bar   IB bar size   largest duration   about (regular hours)
      1m    1 min         1 W                1,950 bars
      5m    5 mins        1 M                1,640 bars
      15m   15 mins       3 M                1,640 bars
      1h    1 hour        1 Y                1,760 bars
      1d    1 day         20 Y               5,000 bars
      1w    1 day (*)     20 Y               1,040 weeks

  (*) weekly bars are built here from daily ones (`marketdata.resample`), so a week is labelled
  with its first session exactly as the bundled source does; IB's own "1 week" bars are not.
  A longer period is refused with a StepError naming the pair; `max` is the largest duration.
  Periods in days/weeks/months beyond a year are asked as whole years (IB refuses "400 D") and
  trimmed back here.
- Pacing (PacingLimiter, one per process, thread-safe): at most 60 historical requests in any
  10 minutes, no identical request within 15 s, at most 5 requests for one contract, exchange and
  tick type within 2 s (IB: "six or more ... within two seconds" is a violation). A request that
  would have to wait longer than `max_wait_s` is not slept on: TransientStepError, the engine
  retries the step later.
- Errors keep IB's code and text: pacing (162) and connectivity codes are TransientStepError
  (retried per node policy), the rest (200 no security definition, 321, 354, ...) StepError.
  A timeout or a lost connection is a TransientStepError.
- Bar cache (Django cache, IBKR_BAR_CACHE_S): keyed by contract spec, duration, bar size and end,
  checked before IB is contacted at all, so a batch of runs asks IBKR once for the same bars.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import pandas as pd
from django.conf import settings
from django.core.cache import caches

from brokers.marketdata.bars import (
    BARS,
    COLUMNS,
    INTRADAY,
    NEW_YORK,
    bars_from_csv,
    bars_to_csv,
    check_bar,
    parse_period,
    resample,
    session_dates,
)
from workflows.errors import StepError, TransientStepError

logger = logging.getLogger(__name__)

# Our bar -> IB barSizeSetting (what is asked of IB; 1w is resampled from 1 day, see above).
BAR_SIZES = {"1m": "1 min", "5m": "5 mins", "15m": "15 mins", "1h": "1 hour", "1d": "1 day", "1w": "1 day"}
# Our bar -> the largest IB duration served for it, as (count, IB unit).
MAX_DURATION: dict[str, tuple[int, str]] = {
    "1m": (1, "W"),
    "5m": (1, "M"),
    "15m": (3, "M"),
    "1h": (1, "Y"),
    "1d": (20, "Y"),
    "1w": (20, "Y"),
}
_UNIT_DAYS = {"D": 1, "W": 7, "M": 30, "Y": 365}
_PERIOD_UNIT = {"d": "D", "w": "W", "m": "M", "y": "Y"}
WHAT_TO_SHOW = "TRADES"
USE_RTH = True

# IB codes a retry may cure: pacing, lost farm/API connectivity, a dropped query.
TRANSIENT_CODES = frozenset({162, 366, 502, 504, 1100, 1300, 2103, 2105, 2110, 10182})
# Code 162 also carries these, which no retry cures.
_PERMANENT_162 = ("no data", "permission", "not subscribed", "no market data", "invalid")

_SPEC = re.compile(r"^[A-Z0-9][A-Z0-9.\- ]{0,31}$")


@dataclass(frozen=True)
class HistoryRequest:
    """What is asked of IB for one (period, bar): duration and bar size strings."""

    duration: str
    bar_size: str
    fetch_bar: str  # the bar IB sends (1d for weekly bars, resampled here)


def _duration_days(count: int, unit: str) -> int:
    return count * _UNIT_DAYS[unit]


def history_request(period: str, bar: str) -> HistoryRequest:
    """(period, bar) -> IB durationStr and barSizeSetting; StepError for a pair IB does not serve."""
    check_bar(bar)
    parse_period(period)  # validates the syntax with the shared message
    max_count, max_unit = MAX_DURATION[bar]
    fetch_bar = "1d" if bar == "1w" else bar
    if period == "max":
        return HistoryRequest(f"{max_count} {max_unit}", BAR_SIZES[bar], fetch_bar)
    count, unit = int(period[:-1]), _PERIOD_UNIT[period[-1]]
    if _duration_days(count, unit) > _duration_days(max_count, max_unit):
        raise StepError(
            f'IBKR does not serve {bar} bars over "{period}": the longest duration for {bar} bars '
            f'({BAR_SIZES[bar]}) is {max_count} {max_unit}. Use a shorter period, a coarser bar, or "max"'
        )
    # IB refuses durations over 365 days in D (and is unreliable in W/M): ask whole years, trim later.
    if unit != "Y" and _duration_days(count, unit) > 365:
        count, unit = math.ceil(_duration_days(count, unit) / 365), "Y"
    return HistoryRequest(f"{count} {unit}", BAR_SIZES[bar], fetch_bar)


# Contracts


@dataclass(frozen=True)
class ContractSpec:
    """A symbol as the step gives it: `AAPL`, `AAPL:NASDAQ:USD`, `SAP:IBIS:EUR:STK` or `conid:265598`."""

    symbol: str = ""
    exchange: str = "SMART"
    currency: str = "USD"
    sec_type: str = "STK"
    con_id: int = 0

    @property
    def key(self) -> str:
        if self.con_id:
            return f"conid:{self.con_id}"
        return f"{self.sec_type}:{self.symbol}:{self.exchange}:{self.currency}"

    def contract(self) -> Any:
        from ib_async import Contract, Stock

        if self.con_id:
            return Contract(conId=self.con_id)
        if self.sec_type == "STK":
            return Stock(self.symbol, self.exchange, self.currency)
        return Contract(secType=self.sec_type, symbol=self.symbol, exchange=self.exchange, currency=self.currency)


def parse_symbol(text: str) -> ContractSpec:
    raw = (text or "").strip()
    match = re.fullmatch(r"(?i)conid:\s*([0-9]{1,12})", raw)
    if match:
        con_id = int(match[1])
        if con_id <= 0:
            raise StepError(f'"{raw}" is not a valid IBKR contract id')
        return ContractSpec(con_id=con_id)
    parts = [p.strip().upper() for p in raw.split(":")]
    if not 1 <= len(parts) <= 4 or not all(parts) or not _SPEC.match(parts[0]):
        raise StepError(
            f'"{raw}" is not a symbol IBKR can look up; use SYMBOL, SYMBOL:EXCHANGE:CURRENCY '
            "(optionally :SECTYPE, e.g. SAP:IBIS:EUR:STK) or conid:NUMBER"
        )
    defaults = ["", "SMART", "USD", "STK"]
    symbol, exchange, currency, sec_type = parts + defaults[len(parts) :]
    return ContractSpec(symbol=symbol, exchange=exchange, currency=currency, sec_type=sec_type)


# Pacing


class PacingLimiter:
    """IBKR's historical-data pacing rules, shared by every request of the process.

    `clock` and `sleep` are injectable (tests use a fake clock whose sleep advances it)."""

    WINDOW_S = 600.0
    WINDOW_MAX = 60
    IDENTICAL_S = 15.0
    SAME_CONTRACT_S = 2.0
    SAME_CONTRACT_MAX = 5

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        max_wait_s: float = 20.0,
    ) -> None:
        self.clock = clock
        self.sleep = sleep
        self.max_wait_s = max_wait_s
        self._lock = threading.Lock()
        self._all: deque[float] = deque()
        self._by_contract: dict[str, deque[float]] = {}
        self._identical: dict[str, float] = {}

    def _delay(self, now: float, identical: str, contract: str) -> float:
        while self._all and self._all[0] <= now - self.WINDOW_S:
            self._all.popleft()
        recent = self._by_contract.setdefault(contract, deque())
        while recent and recent[0] <= now - self.SAME_CONTRACT_S:
            recent.popleft()
        for key, at in list(self._identical.items()):
            if at <= now - self.IDENTICAL_S:
                del self._identical[key]
        delay = 0.0
        if len(self._all) >= self.WINDOW_MAX:
            delay = max(delay, self._all[-self.WINDOW_MAX] + self.WINDOW_S - now)
        if len(recent) >= self.SAME_CONTRACT_MAX:
            delay = max(delay, recent[-self.SAME_CONTRACT_MAX] + self.SAME_CONTRACT_S - now)
        if identical in self._identical:
            delay = max(delay, self._identical[identical] + self.IDENTICAL_S - now)
        return delay

    def acquire(self, *, identical: str, contract: str) -> float:
        """Wait until a request may go, record it, and return the seconds waited.

        `identical` names the whole request, `contract` its contract/exchange/tick type."""
        waited = 0.0
        while True:
            with self._lock:
                now = self.clock()
                delay = self._delay(now, identical, contract)
                if delay <= 0:
                    self._all.append(now)
                    self._by_contract[contract].append(now)
                    self._identical[identical] = now
                    return waited
            if waited + delay > self.max_wait_s:
                raise TransientStepError(
                    f"IBKR pacing: this request would have to wait {delay:.0f} s more to respect IBKR's "
                    "historical-data limits (60 requests per 10 minutes, 5 per contract per 2 s, "
                    "no identical request within 15 s); it will be retried"
                )
            self.sleep(delay)
            waited += delay


PACER = PacingLimiter()


# The connection


_IB_LOCK = threading.RLock()  # ib_async is not thread-safe: one request at a time per process
_default_ib: Any = None


def _connect(ib: Any) -> None:
    host, port, client_id = settings.IBKR_HOST, settings.IBKR_PORT, settings.IBKR_CLIENT_ID
    try:
        # Read-write: the ibkr worker's one connection also carries orders (brokers.adapters.ibkr.broker), and
        # ib_async loads open and completed orders only on a read-write connect, which the reconcile
        # after a reconnect needs. The trading gate is in our code (brokers.orders.services.order_place),
        # not in a read-only API connection.
        ib.connect(host=host, port=port, clientId=client_id, timeout=settings.IBKR_REQUEST_TIMEOUT_S, readonly=False)
    except (TimeoutError, OSError, ConnectionError) as exc:
        raise TransientStepError(
            f"Cannot connect to IBKR at {host}:{port} (clientId {client_id}): {exc or type(exc).__name__}. "
            "Is IB Gateway or TWS running with the API enabled?"
        ) from exc


def default_ib() -> Any:
    """The process-wide IB connection, created on first use and reconnected when dropped."""
    global _default_ib
    with _IB_LOCK:
        if _default_ib is None:
            from ib_async import IB

            ib = IB()
            # The outer guard of every blocking call; reqHistoricalData gets its own (shorter)
            # timeout, which also cancels the request at IB.
            ib.RequestTimeout = settings.IBKR_REQUEST_TIMEOUT_S + 5
            ib.RaiseRequestErrors = True
            _default_ib = ib
        if not _default_ib.isConnected():
            _connect(_default_ib)
        return _default_ib


# The source


def _request_error(exc: Any) -> StepError:
    code, message = getattr(exc, "code", None), getattr(exc, "message", str(exc))
    text = f"IBKR error {code}: {message}"
    if code == 162 and not any(word in str(message).lower() for word in _PERMANENT_162):
        return TransientStepError(f"{text} (historical-data pacing violation or dropped query; will be retried)")
    if code in TRANSIENT_CODES and code != 162:
        return TransientStepError(f"{text} (will be retried)")
    if code == 200:
        return StepError(f"{text} (no security definition: check the symbol, exchange and currency)")
    return StepError(text)


def _to_frame(bars: list[Any], *, intraday: bool) -> pd.DataFrame:
    stamps = [b.date for b in bars]
    if intraday:
        index = pd.DatetimeIndex(
            [pd.Timestamp(d).tz_localize("UTC") if pd.Timestamp(d).tzinfo is None else pd.Timestamp(d) for d in stamps]
        )
        index = index.tz_convert(NEW_YORK)
    else:
        # Daily bars come as dates; a datetime (unlikely) keeps only its exchange date.
        index = pd.DatetimeIndex(
            [
                pd.Timestamp(d.astimezone(UTC)).tz_convert(NEW_YORK).tz_localize(None).normalize()
                if isinstance(d, datetime) and d.tzinfo is not None
                else pd.Timestamp(d).normalize()
                for d in stamps
            ]
        )
    values = [[float(b.open), float(b.high), float(b.low), float(b.close), float(b.volume)] for b in bars]
    df = pd.DataFrame(values, index=index.rename("timestamp"), columns=COLUMNS)
    df = df[~df.index.duplicated(keep="last")].sort_index()
    # Through the CSV form, so fresh and cached bars are the very same frame (dtypes included).
    return bars_from_csv(bars_to_csv(df))


class IbkrSource:
    """Interactive Brokers as a MarketDataSource. `ib` defaults to the process-wide connection."""

    name = "ibkr"

    def __init__(
        self,
        ib: Any = None,
        *,
        pacer: PacingLimiter | None = None,
        cache: Any = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ib = ib
        self.pacer = pacer or PACER
        self._cache = cache
        self._clock = clock
        self._contracts: dict[str, Any] = {}

    @property
    def cache(self) -> Any:
        return self._cache if self._cache is not None else caches["default"]

    @property
    def ib(self) -> Any:
        if self._ib is None:
            return default_ib()
        if not self._ib.isConnected():
            raise TransientStepError("IBKR is disconnected (the IB connection is not connected); will be retried")
        return self._ib

    @property
    def timeout_s(self) -> float:
        return float(settings.IBKR_REQUEST_TIMEOUT_S)

    # Contract

    def qualify(self, spec: ContractSpec) -> Any:
        if spec.key in self._contracts:
            return self._contracts[spec.key]
        contract = spec.contract()
        result = self._call(lambda ib: ib.qualifyContracts(contract), what=f"qualifying {spec.key}")
        found = [c for c in (result or []) if c is not None]
        described = (
            f"conid {spec.con_id}"
            if spec.con_id
            else f"{spec.symbol} ({spec.sec_type} on {spec.exchange} in {spec.currency})"
        )
        if found and isinstance(found[0], list):  # qualifyContractsAsync(returnAll=True): candidates
            candidates = ", ".join(f"conid:{c.conId} {c.primaryExchange or c.exchange}" for c in found[0] if c)
            raise StepError(f"IBKR found several contracts for {described}: {candidates}. Give conid:NUMBER")
        if len(found) != 1 or not getattr(found[0], "conId", 0):
            raise StepError(
                f"IBKR could not qualify {described}: no unique contract (unknown or ambiguous). "
                "Give SYMBOL:EXCHANGE:CURRENCY or conid:NUMBER"
            )
        self._contracts[spec.key] = found[0]
        return found[0]

    # Calls into ib_async, with their errors translated

    def _call(self, fn: Callable[[Any], Any], *, what: str) -> Any:
        from ib_async import RequestError

        with _IB_LOCK:
            ib = self.ib
            try:
                return fn(ib)
            except RequestError as exc:
                raise _request_error(exc) from exc
            except TimeoutError as exc:  # IB.RequestTimeout
                raise TransientStepError(
                    f"IBKR did not answer within {self.timeout_s:.0f} s while {what}; will be retried"
                ) from exc
            except (ConnectionError, OSError) as exc:
                raise TransientStepError(
                    f"IBKR connection lost while {what}: {exc or type(exc).__name__}; will be retried"
                ) from exc

    # Bars

    def _end_text(self, end: date | None) -> str:
        # Explicit exchange time zone: a bare date would be read in the machine's zone.
        return "" if end is None else f"{end:%Y%m%d} 23:59:59 US/Eastern"

    def fetch(self, spec: ContractSpec, request: HistoryRequest, end: date | None) -> pd.DataFrame:
        """IB bars for one request (cached), in the protocol's frame, untrimmed."""
        end_text = self._end_text(end)
        parts = [spec.key, request.duration, request.bar_size, WHAT_TO_SHOW, str(USE_RTH), end_text or "latest"]
        cache_key = "ibkr-bars:" + hashlib.sha256("|".join(parts).encode()).hexdigest()
        cached = self.cache.get(cache_key)
        if cached is not None:
            return bars_from_csv(cached)

        contract = self.qualify(spec)
        exchange = getattr(contract, "exchange", "") or spec.exchange
        self.pacer.acquire(
            identical="|".join([f"conid:{contract.conId}", *parts[1:]]),
            contract=f"{contract.conId}|{exchange}|{WHAT_TO_SHOW}",
        )
        intraday = request.fetch_bar in INTRADAY
        started = self._clock()
        bars = self._call(
            lambda ib: ib.reqHistoricalData(
                contract,
                endDateTime=end_text,
                durationStr=request.duration,
                barSizeSetting=request.bar_size,
                whatToShow=WHAT_TO_SHOW,
                useRTH=USE_RTH,
                formatDate=2,  # intraday bars as UTC-aware datetimes, not the TWS login zone
                timeout=self.timeout_s,
            ),
            what=f"fetching {request.duration} of {request.bar_size} bars for {spec.key}",
        )
        what = f"{request.duration} of {request.bar_size} bars for {spec.key}"
        if not bars:
            if self.timeout_s and self._clock() - started >= self.timeout_s * 0.95:
                # ib_async cancels the request at IB and returns no bars when its timeout passes.
                raise TransientStepError(
                    f"IBKR did not send {what} within {self.timeout_s:.0f} s (request timed out); will be retried"
                )
            raise StepError(f"IBKR returned no bars: {what}" + (f" up to {end:%Y-%m-%d}" if end else ""))
        df = _to_frame(list(bars), intraday=intraday)
        self.cache.set(cache_key, bars_to_csv(df), timeout=settings.IBKR_BAR_CACHE_S)
        return df

    def bars(self, *, symbol: str, bar: str, period: str, end: date | None = None) -> pd.DataFrame:
        request = history_request(period, bar)
        offset = parse_period(period)
        spec = parse_symbol(symbol)
        df = self.fetch(spec, request, end)
        if end is not None:
            df = df[session_dates(df.index) <= pd.Timestamp(end)]
        if bar != request.fetch_bar:
            df = resample(df, source_bar=request.fetch_bar, to=bar)
        if offset is not None and not df.empty:
            anchor = pd.Timestamp(end) if end is not None else session_dates(df.index)[-1]
            dates = session_dates(df.index)
            df = df[(dates > anchor - offset) & (dates <= anchor)]
        if df.empty:
            raise StepError(
                f"IBKR has no {spec.key} {bar} bars in the {period}" + (f" up to {end:%Y-%m-%d}" if end else "")
            )
        return df


__all__ = ["BARS", "BAR_SIZES", "MAX_DURATION", "PACER", "HistoryRequest", "IbkrSource", "PacingLimiter"]
