"""The IBKR source against a fake `IB` that behaves like ib_async's (no gateway, no network).

The fake keeps ib_async's method names, arguments and return types (qualifyContracts fills in
and returns Contract objects, reqHistoricalData returns a BarDataList of BarData) and fails the
way ib_async does with RaiseRequestErrors=True: RequestError(reqId, code, message), emitted on
errorEvent as (reqId, errorCode, errorString, contract) too.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pandas as pd
import pytest
from django.core.cache.backends.locmem import LocMemCache
from eventkit import Event
from ib_async import BarData, BarDataList, Contract, RequestError

from brokers.adapters.ibkr import client as ibkr
from brokers.adapters.ibkr.client import IbkrSource, PacingLimiter, history_request, parse_symbol
from brokers.adapters.registry import source_kinds
from brokers.marketdata.bars import COLUMNS, NEW_YORK, market_source
from workflows.errors import StepError, TransientStepError


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


# conId, primaryExchange per symbol the fake "IB" knows.
KNOWN = {"AAPL": (265598, "NASDAQ"), "MSFT": (272093, "NASDAQ")}


def daily_bars(n: int, last: date = date(2024, 6, 28)) -> list[BarData]:
    days = pd.bdate_range(end=last, periods=n)
    return [
        BarData(
            date=d.date(), open=100 + i, high=102 + i, low=99 + i, close=101 + i, volume=1000 + i, average=0, barCount=1
        )
        for i, d in enumerate(days)
    ]


def minute_bars(day: date, n: int) -> list[BarData]:
    # formatDate=2: tz-aware UTC datetimes. 13:30 UTC is 09:30 New York in summer.
    start = datetime(day.year, day.month, day.day, 13, 30, tzinfo=UTC)
    return [
        BarData(date=start + timedelta(minutes=i), open=10, high=11, low=9.5, close=10.5, volume=100) for i in range(n)
    ]


class FakeIB:
    """The parts of ib_async.IB the source uses, with ib_async's signatures and behaviour."""

    def __init__(self, *, bars=None, error=None, qualify_error=None, connected=True, on_request=None) -> None:
        self.RequestTimeout = 0.0
        self.RaiseRequestErrors = True
        self.errorEvent = Event("errorEvent")
        self.errors: list[tuple] = []
        self.errorEvent += lambda *args: self.errors.append(args)
        self.bars = bars if bars is not None else daily_bars(30)
        self.error = error  # (code, message) for reqHistoricalData
        self.qualify_error = qualify_error
        self.connected = connected
        self.on_request = on_request  # called before answering (timeouts, disconnects)
        self.qualify_calls: list[Contract] = []
        self.history_calls: list[dict] = []
        self._req_id = 0

    def isConnected(self) -> bool:
        return self.connected

    def _fail(self, contract, code: int, message: str):
        self._req_id += 1
        self.errorEvent.emit(self._req_id, code, message, contract)
        if self.RaiseRequestErrors:
            raise RequestError(self._req_id, code, message)

    def qualifyContracts(self, *contracts: Contract) -> list[Contract]:
        result = []
        for contract in contracts:
            self.qualify_calls.append(contract)
            if self.qualify_error:
                self._fail(contract, *self.qualify_error)
                continue
            if contract.conId:
                known = {cid: (sym, ex) for sym, (cid, ex) in KNOWN.items()}
                if contract.conId not in known:
                    continue
                contract.symbol, contract.primaryExchange = known[contract.conId]
            else:
                if contract.symbol not in KNOWN:
                    continue  # ib_async logs "Unknown contract" and leaves it out
                contract.conId, contract.primaryExchange = KNOWN[contract.symbol]
            contract.secType = contract.secType or "STK"
            contract.exchange = contract.exchange or "SMART"
            contract.currency = contract.currency or "USD"
            result.append(contract)
        return result

    def reqHistoricalData(
        self,
        contract,
        endDateTime,
        durationStr,
        barSizeSetting,
        whatToShow,
        useRTH,
        formatDate=1,
        keepUpToDate=False,
        chartOptions=[],  # noqa: B006 - ib_async's own signature
        timeout=60,
    ) -> BarDataList:
        self.history_calls.append(
            {
                "conId": contract.conId,
                "endDateTime": endDateTime,
                "durationStr": durationStr,
                "barSizeSetting": barSizeSetting,
                "whatToShow": whatToShow,
                "useRTH": useRTH,
                "formatDate": formatDate,
                "timeout": timeout,
            }
        )
        if self.on_request:
            self.on_request(self)
        if self.error:
            self._fail(contract, *self.error)
            return BarDataList()
        result = BarDataList(self.bars)
        result.contract = contract
        result.durationStr, result.barSizeSetting = durationStr, barSizeSetting
        return result


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def cache():
    return LocMemCache("ibkr-test", {})


@pytest.fixture(autouse=True)
def _clear_cache(cache):
    cache.clear()


def source(fake, clock, cache, **pacer_kwargs) -> IbkrSource:
    pacer = PacingLimiter(clock=clock, sleep=clock.sleep, **pacer_kwargs)
    return IbkrSource(fake, pacer=pacer, cache=cache, clock=clock)


def test_the_registered_source_is_this_class():
    assert source_kinds.get("ibkr").queue == "ibkr"  # read on the ibkr worker, which holds the connection
    assert isinstance(market_source("ibkr"), IbkrSource)


def test_daily_fetch_gives_the_protocol_frame(clock, cache):
    fake = FakeIB(bars=daily_bars(300))
    df = source(fake, clock, cache).bars(symbol="aapl", bar="1d", period="6m", end=None)
    assert list(df.columns) == COLUMNS
    assert df.index.name == "timestamp" and df.index.tz is None
    assert all(dtype == "float64" for dtype in df.dtypes)
    assert df.index[-1] == pd.Timestamp("2024-06-28")
    assert df.index[0] > pd.Timestamp("2023-12-28")  # trimmed to 6 calendar months
    [call] = fake.history_calls
    assert call == {
        "conId": 265598,
        "endDateTime": "",
        "durationStr": "6 M",
        "barSizeSetting": "1 day",
        "whatToShow": "TRADES",
        "useRTH": True,
        "formatDate": 2,
        "timeout": 30.0,
    }
    [contract] = fake.qualify_calls
    assert (contract.symbol, contract.exchange, contract.currency) == ("AAPL", "SMART", "USD")


def test_intraday_fetch_is_in_new_york_time_and_end_is_explicit(clock, cache):
    fake = FakeIB(bars=minute_bars(date(2024, 6, 27), 390) + minute_bars(date(2024, 6, 28), 390))
    df = source(fake, clock, cache).bars(symbol="MSFT", bar="1m", period="1d", end=date(2024, 6, 28))
    assert str(df.index.tz) == NEW_YORK
    assert df.index[0] == pd.Timestamp("2024-06-28 09:30", tz=NEW_YORK)
    assert len(df) == 390  # the 1d period keeps the last session only
    call = fake.history_calls[0]
    assert (call["durationStr"], call["barSizeSetting"]) == ("1 D", "1 min")
    assert call["endDateTime"] == "20240628 23:59:59 US/Eastern"


def test_weekly_bars_are_resampled_from_daily(clock, cache):
    fake = FakeIB(bars=daily_bars(60))
    df = source(fake, clock, cache).bars(symbol="AAPL", bar="1w", period="max")
    assert fake.history_calls[0]["barSizeSetting"] == "1 day"
    assert fake.history_calls[0]["durationStr"] == "20 Y"
    assert (df.index.day_of_week == 0).all()  # labelled with the week's first session (Mondays here)
    assert df["volume"].sum() == sum(b.volume for b in fake.bars)


def test_symbol_forms():
    assert parse_symbol(" aapl ").key == "STK:AAPL:SMART:USD"
    assert parse_symbol("sap:ibis:eur").key == "STK:SAP:IBIS:EUR"
    assert parse_symbol("ES:GLOBEX:USD:FUT").sec_type == "FUT"
    assert parse_symbol("conid:265598").key == "conid:265598"
    assert parse_symbol("CONID:265598").contract().conId == 265598
    for bad in ("", "a:b:c:d:e", "AAPL::USD", "$$$"):
        with pytest.raises(StepError, match="not a symbol IBKR can look up"):
            parse_symbol(bad)


def test_qualification_by_conid(clock, cache):
    fake = FakeIB()
    source(fake, clock, cache).bars(symbol="conid:272093", bar="1d", period="1m")
    assert fake.qualify_calls[0].conId == 272093
    assert fake.history_calls[0]["conId"] == 272093


def test_qualification_failure_is_a_clear_step_error(clock, cache):
    fake = FakeIB()
    with pytest.raises(StepError, match=r"could not qualify NOPE \(STK on SMART in USD\)") as info:
        source(fake, clock, cache).bars(symbol="NOPE", bar="1d", period="1y")
    assert not isinstance(info.value, TransientStepError)
    assert fake.history_calls == []


def test_no_security_definition_keeps_code_and_text(clock, cache):
    fake = FakeIB(qualify_error=(200, "No security definition has been found for the request"))
    with pytest.raises(StepError, match="IBKR error 200: No security definition has been found") as info:
        source(fake, clock, cache).bars(symbol="ZZZZ", bar="1d", period="1y")
    assert not isinstance(info.value, TransientStepError)
    assert fake.errors[0][1:3] == (200, "No security definition has been found for the request")


def test_empty_bars_is_a_step_error(clock, cache):
    fake = FakeIB(bars=[])
    with pytest.raises(StepError, match=r"IBKR returned no bars: 1 Y of 1 day bars for STK:AAPL:SMART:USD") as info:
        source(fake, clock, cache).bars(symbol="AAPL", bar="1d", period="1y")
    assert not isinstance(info.value, TransientStepError)


def test_pacing_violation_162_is_transient_with_code_and_text(clock, cache):
    text = "Historical Market Data Service error message:Historical data request pacing violation"
    fake = FakeIB(error=(162, text))
    with pytest.raises(TransientStepError, match=f"IBKR error 162: {text}"):
        source(fake, clock, cache).bars(symbol="AAPL", bar="1d", period="1y")


def test_162_without_data_is_not_retried(clock, cache):
    fake = FakeIB(
        error=(162, "Historical Market Data Service error message:HMDS query returned no data: AAPL@SMART Trades")
    )
    with pytest.raises(StepError, match=r"IBKR error 162: .*returned no data") as info:
        source(fake, clock, cache).bars(symbol="AAPL", bar="1d", period="1y")
    assert not isinstance(info.value, TransientStepError)


def test_request_timeout_is_transient(clock, cache):
    def time_out(ib):
        raise TimeoutError()  # what IB.RequestTimeout raises from a blocking call

    with pytest.raises(TransientStepError, match=r"IBKR did not answer within 30 s while fetching 1 Y of 1 day bars"):
        source(FakeIB(on_request=time_out), clock, cache).bars(symbol="AAPL", bar="1d", period="1y")


def test_history_timeout_returning_no_bars_is_transient(clock, cache):
    # reqHistoricalData's own timeout cancels the request and returns an empty list.
    def slow(ib):
        clock.now += 30
        ib.bars = []

    with pytest.raises(TransientStepError, match=r"within 30 s \(request timed out\)"):
        source(FakeIB(on_request=slow), clock, cache).bars(symbol="AAPL", bar="1d", period="1y")


def test_disconnected_is_transient(clock, cache):
    with pytest.raises(TransientStepError, match="IBKR is disconnected"):
        source(FakeIB(connected=False), clock, cache).bars(symbol="AAPL", bar="1d", period="1y")


def test_connection_lost_during_request_is_transient(clock, cache):
    def drop(ib):
        ib.connected = False
        raise ConnectionError("Socket disconnect")  # ib_async fails pending requests so

    with pytest.raises(TransientStepError, match=r"IBKR connection lost while fetching .*Socket disconnect"):
        source(FakeIB(on_request=drop), clock, cache).bars(symbol="AAPL", bar="1d", period="1y")


def test_default_connection_failure_is_transient(settings, monkeypatch):
    settings.IBKR_PORT = 1  # nothing listens there
    settings.IBKR_REQUEST_TIMEOUT_S = 1
    calls = []

    class NoGateway:
        RequestTimeout = 0
        RaiseRequestErrors = False

        def isConnected(self):
            return False

        def connect(self, **kwargs):
            calls.append(kwargs)
            raise ConnectionRefusedError(111, "Connect call failed")

    monkeypatch.setattr(ibkr, "_default_ib", NoGateway())
    with pytest.raises(TransientStepError, match=r"Cannot connect to IBKR at 127.0.0.1:1 \(clientId 1\)"):
        IbkrSource().ib  # noqa: B018
    assert calls == [{"host": "127.0.0.1", "port": 1, "clientId": 1, "timeout": 1, "readonly": False}]


def test_default_ib_is_configured_explicitly(settings, monkeypatch):
    import ib_async

    settings.IBKR_REQUEST_TIMEOUT_S = 7
    connected = []
    monkeypatch.setattr(ibkr, "_default_ib", None)
    monkeypatch.setattr(ib_async.IB, "connect", lambda self, **kw: connected.append(kw))
    ib = ibkr.default_ib()
    assert ib.RaiseRequestErrors is True and ib.RequestTimeout == 12
    assert connected[0]["readonly"] is False and connected[0]["clientId"] == settings.IBKR_CLIENT_ID


@pytest.mark.parametrize(
    ("period", "bar", "duration", "bar_size"),
    [
        ("1y", "1d", "1 Y", "1 day"),
        ("6m", "1d", "6 M", "1 day"),
        ("30d", "1d", "30 D", "1 day"),
        ("2w", "1h", "2 W", "1 hour"),
        ("5y", "1w", "5 Y", "1 day"),
        ("400d", "1d", "2 Y", "1 day"),
        ("1w", "1m", "1 W", "1 min"),
        ("5d", "1m", "5 D", "1 min"),
        ("30d", "5m", "30 D", "5 mins"),
        ("3m", "15m", "3 M", "15 mins"),
        ("1y", "1h", "1 Y", "1 hour"),
        ("max", "1m", "1 W", "1 min"),
        ("max", "5m", "1 M", "5 mins"),
        ("max", "15m", "3 M", "15 mins"),
        ("max", "1h", "1 Y", "1 hour"),
        ("max", "1d", "20 Y", "1 day"),
    ],
)
def test_period_and_bar_map_to_ib_strings(period, bar, duration, bar_size):
    request = history_request(period, bar)
    assert (request.duration, request.bar_size) == (duration, bar_size)


@pytest.mark.parametrize(
    ("period", "bar"), [("30d", "1m"), ("2w", "1m"), ("6m", "5m"), ("1y", "15m"), ("2y", "1h"), ("30y", "1d")]
)
def test_unsupported_pair_names_the_pair(period, bar, clock, cache):
    with pytest.raises(StepError, match=f'IBKR does not serve {bar} bars over "{period}"'):
        history_request(period, bar)
    fake = FakeIB()
    with pytest.raises(StepError, match="longest duration"):
        source(fake, clock, cache).bars(symbol="AAPL", bar=bar, period=period)
    assert fake.qualify_calls == [] and fake.history_calls == []


def test_bad_period_or_bar():
    with pytest.raises(StepError, match="Period"):
        history_request("1x", "1d")
    with pytest.raises(StepError, match="Unsupported bar"):
        history_request("1y", "2d")


def test_pacer_allows_60_requests_per_10_minutes(clock):
    pacer = PacingLimiter(clock=clock, sleep=clock.sleep, max_wait_s=1000)
    for i in range(60):
        assert pacer.acquire(identical=f"r{i}", contract=f"c{i}") == 0
        clock.now += 1
    start = clock.now
    waited = pacer.acquire(identical="r60", contract="c60")
    assert waited > 0 and clock.now == pytest.approx(1000 + 600)  # when the first request leaves the window
    assert clock.now - start == pytest.approx(waited)


def test_pacer_no_identical_request_within_15_s(clock):
    pacer = PacingLimiter(clock=clock, sleep=clock.sleep)
    pacer.acquire(identical="same", contract="c")
    clock.now += 4
    assert pacer.acquire(identical="same", contract="c") == pytest.approx(11)
    assert pacer.acquire(identical="other", contract="d") == 0


def test_pacer_at_most_5_per_contract_in_2_s(clock):
    pacer = PacingLimiter(clock=clock, sleep=clock.sleep)
    for i in range(5):
        assert pacer.acquire(identical=f"r{i}", contract="AAPL") == 0
        clock.now += 0.1
    assert pacer.acquire(identical="other-contract", contract="MSFT") == 0
    waited = pacer.acquire(identical="r5", contract="AAPL")
    assert waited == pytest.approx(1.5)  # 2 s after the first, sent at t+0, now t+0.5


def test_pacer_refuses_a_long_wait_as_transient(clock):
    pacer = PacingLimiter(clock=clock, sleep=clock.sleep, max_wait_s=20)
    for i in range(60):
        pacer.acquire(identical=f"r{i}", contract=f"c{i}")
    with pytest.raises(TransientStepError, match="IBKR pacing: this request would have to wait 600 s"):
        pacer.acquire(identical="r60", contract="c60")
    assert clock.slept == []


def test_pacer_is_safe_across_threads():
    import threading

    pacer = PacingLimiter(sleep=lambda s: None, max_wait_s=0)
    ok, refused = [], []

    def worker(i):
        try:
            pacer.acquire(identical=f"r{i}", contract=f"c{i}")
            ok.append(i)
        except TransientStepError:
            refused.append(i)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(100)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(ok) == 60 and len(refused) == 40


def test_source_goes_through_the_pacer(clock, cache):
    fake = FakeIB()
    src = source(fake, clock, cache)
    for end in (date(2024, 6, d) for d in range(3, 10)):
        src.bars(symbol="AAPL", bar="1d", period="1m", end=end)
    # 7 different requests for one contract: the 6th waited for the 2 s window.
    assert len(fake.history_calls) == 7
    assert clock.slept and clock.slept[0] == pytest.approx(2.0)


def test_identical_request_is_served_from_the_cache(clock, cache, settings):
    settings.IBKR_BAR_CACHE_S = 600
    fake = FakeIB(bars=daily_bars(300))
    first = source(fake, clock, cache).bars(symbol="AAPL", bar="1d", period="1y", end=date(2024, 6, 28))
    # A new source (another run in the batch) with the same process cache.
    again = source(fake, clock, cache).bars(symbol="aapl", bar="1d", period="1y", end=date(2024, 6, 28))
    pd.testing.assert_frame_equal(first, again)
    assert len(fake.history_calls) == 1 and len(fake.qualify_calls) == 1
    # Another end, another request.
    source(fake, clock, cache).bars(symbol="AAPL", bar="1d", period="1y", end=date(2024, 6, 27))
    assert len(fake.history_calls) == 2


def test_intraday_cache_round_trip_keeps_new_york_time(clock, cache):
    fake = FakeIB(bars=minute_bars(date(2024, 6, 28), 30))
    first = source(fake, clock, cache).bars(symbol="AAPL", bar="5m", period="1d")
    again = source(fake, clock, cache).bars(symbol="AAPL", bar="5m", period="1d")
    pd.testing.assert_frame_equal(first, again)
    assert str(again.index.tz) == NEW_YORK and len(fake.history_calls) == 1


def test_errors_are_not_cached(clock, cache):
    fake = FakeIB(error=(162, "Historical data request pacing violation"))
    src = source(fake, clock, cache)
    with pytest.raises(TransientStepError):
        src.bars(symbol="AAPL", bar="1d", period="1y")
    fake.error = None
    clock.now += 20
    assert len(src.bars(symbol="AAPL", bar="1d", period="1y")) > 0
    assert len(fake.history_calls) == 2
