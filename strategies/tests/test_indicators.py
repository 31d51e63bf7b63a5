"""The indicators against TA-Lib on the bundled real daily bars, and SuperTrend against a hand calculation.

Tolerance: relative 1e-9 on every value, plus an absolute 1e-9 (price units) for MACD, whose three
lines cross zero where a relative test means nothing. No warm-up is skipped: the seeding is
TA-Lib's, so the first valid bar and every value after it must agree, and the NaN positions must
be identical. Measured on these files the largest differences are ~1e-15 relative (SMA, EMA, RSI,
ATR), ~1e-12 (Bollinger: TA-Lib's variance is mean(x^2) - mean(x)^2 over running sums, ours is
pandas' Welford) and ~1e-13 absolute (MACD); OBV is exact.
"""

from datetime import date

import numpy as np
import pandas as pd
import pytest
import talib

from brokers.marketdata.bars import BundledSource
from strategies.indicators import compute as ind

RTOL = 1e-9
MACD_ATOL = 1e-9

# Every bundled daily file, whole (AAPL has two; the 2000-2013 one is split-adjusted on load).
DAILY_FILES = [
    ("SPY", None),
    ("AAPL", date(2013, 12, 31)),
    ("AAPL", None),
    ("GOOG", None),
    ("IBM", None),
    ("MSFT", None),
]


def _load(symbol: str, end: date | None) -> pd.DataFrame:
    return BundledSource().bars(symbol=symbol, bar="1d", period="max", end=end)


@pytest.fixture(scope="module", params=DAILY_FILES, ids=[f"{s}-{e.year if e else 'latest'}" for s, e in DAILY_FILES])
def bars(request) -> pd.DataFrame:
    df = _load(*request.param)
    assert len(df) > 1000
    return df


@pytest.fixture(scope="module")
def spy() -> pd.DataFrame:
    return _load("SPY", None)


def ohlcv(df: pd.DataFrame) -> tuple[np.ndarray, ...]:
    return tuple(df[c].to_numpy() for c in ("open", "high", "low", "close", "volume"))


def assert_matches(ours, theirs, *, atol: float = 0.0) -> None:
    ours, theirs = np.asarray(ours, dtype=float), np.asarray(theirs, dtype=float)
    assert ours.shape == theirs.shape
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs), err_msg="warm-up (NaN positions) differs")
    np.testing.assert_allclose(ours, theirs, rtol=RTOL, atol=atol)


def matches(ours, theirs, *, atol: float = 0.0) -> bool:
    try:
        assert_matches(ours, theirs, atol=atol)
    except AssertionError:
        return False
    return True


def leading_nans(values) -> int:
    values = np.asarray(values, dtype=float)
    count = int(np.argmax(~np.isnan(values))) if (~np.isnan(values)).any() else len(values)
    assert not np.isnan(values[count:]).any(), "a NaN after the warm-up"
    return count


@pytest.mark.parametrize("n", [20, 50, 200])
def test_sma_matches_talib(bars, n):
    close = bars["close"].to_numpy()
    ours = ind.sma(close, n)
    assert_matches(ours, talib.SMA(close, n))
    assert leading_nans(ours) == n - 1


def test_ema_matches_talib(bars):
    close = bars["close"].to_numpy()
    ours = ind.ema(close, 20)
    assert_matches(ours, talib.EMA(close, 20))
    assert leading_nans(ours) == 19


def test_rsi_matches_talib(bars):
    close = bars["close"].to_numpy()
    ours = ind.rsi(close, 14)
    assert_matches(ours, talib.RSI(close, 14))
    assert leading_nans(ours) == 14
    assert np.nanmin(ours) >= 0 and np.nanmax(ours) <= 100


def test_macd_matches_talib(bars):
    close = bars["close"].to_numpy()
    ours = ind.macd(close, 12, 26, 9)
    for mine, theirs in zip(ours, talib.MACD(close, 12, 26, 9), strict=True):
        assert_matches(mine, theirs, atol=MACD_ATOL)
        assert leading_nans(mine) == 33
    np.testing.assert_allclose(ours.hist, ours.macd - ours.signal)


def test_bollinger_matches_talib(bars):
    close = bars["close"].to_numpy()
    ours = ind.bollinger(close, 20, 2.0)
    theirs = talib.BBANDS(close, timeperiod=20, nbdevup=2, nbdevdn=2, matype=talib.MA_Type.SMA)
    for mine, other in zip(ours, theirs, strict=True):
        assert_matches(mine, other)
        assert leading_nans(mine) == 19


def test_atr_matches_talib(bars):
    _, high, low, close, _ = ohlcv(bars)
    ours = ind.atr(high, low, close, 14)
    assert_matches(ours, talib.ATR(high, low, close, 14))
    assert leading_nans(ours) == 14


def test_obv_matches_talib(bars):
    *_, close, volume = ohlcv(bars)
    ours = ind.obv(close, volume)
    np.testing.assert_array_equal(ours, talib.OBV(close, volume))
    assert leading_nans(ours) == 0


def test_volume_average_is_the_sma_of_volume(bars):
    volume = bars["volume"].to_numpy()
    ours = ind.volume_average(volume, 20)
    assert_matches(ours, talib.SMA(volume, 20))
    assert leading_nans(ours) == 19


def test_each_comparison_can_fail(spy):
    """Plausible mistakes, each caught by the same comparison and tolerance as above."""
    _, high, low, close, volume = ohlcv(spy)
    s = pd.Series(close)
    # A window one bar short.
    assert not matches(ind.sma(close, 19), talib.SMA(close, 20))
    # An EMA seeded with the first close instead of the SMA of the first n: the warm-up length is
    # made equal, so only the values can tell.
    first_close_seeded = s.ewm(span=20, adjust=False).mean().to_numpy(copy=True)
    first_close_seeded[:19] = np.nan
    assert not matches(first_close_seeded, talib.EMA(close, 20))
    # Cutler's RSI (simple means of gains and losses) instead of Wilder's smoothing.
    change = s.diff()
    gain, loss = change.clip(lower=0).rolling(14).mean(), (-change).clip(lower=0).rolling(14).mean()
    assert not matches(100 * gain / (gain + loss), talib.RSI(close, 14))
    # MACD from two plain EMAs: the fast one seeded from the first 12 closes, not at bar 25 as TA-Lib.
    line = ind.ema(close, 12) - ind.ema(close, 26)
    line[:33] = np.nan
    assert not matches(line, talib.MACD(close, 12, 26, 9)[0], atol=MACD_ATOL)
    # Sample instead of population standard deviation.
    upper = (s.rolling(20).mean() + 2 * s.rolling(20).std(ddof=1)).to_numpy()
    assert not matches(upper, talib.BBANDS(close, 20, 2, 2, talib.MA_Type.SMA)[0])
    # An ATR that is a simple mean of the true range.
    true_range = pd.Series(talib.TRANGE(high, low, close))
    assert not matches(true_range.rolling(14).mean(), talib.ATR(high, low, close, 14))
    # OBV counting the previous bar's volume.
    flow = np.concatenate(([volume[0]], np.sign(np.diff(close)) * volume[:-1]))
    assert not matches(np.cumsum(flow), talib.OBV(close, volume))


# A SuperTrend(3, 2) worked out by hand. With n = 3 the ATR starts at bar 3 as the mean true range
# of bars 1..3, then atr = (2 * atr + tr) / 3. Basic bands BU/BL = hl2 +- 2 * atr; pc = previous close.
#
# bar  high  low   close  TR = max(h-l, |h-pc|, |l-pc|)  ATR              hl2   BU    BL
#  0   11    9     10     -                              -                -     -     -
#  1   12    10    11     max(2, 2, 0) = 2               -
#  2   13    11    12     max(2, 2, 0) = 2               -
#  3   14    12    13     max(2, 2, 0) = 2               (2 + 2 + 2)/3 = 2  13    17    9
#  4   15    13    14     max(2, 2, 0) = 2               (4 + 2)/3 = 2    14    18    10
#  5   19    14    18.5   max(5, 5, 0) = 5               (4 + 5)/3 = 3    16.5  22.5  10.5
#  6   20.5  17.5  20     max(3, 2, 1) = 3               (6 + 3)/3 = 3    19    25    13
#  7   21    18    18.5   max(3, 1, 2) = 3               (6 + 3)/3 = 3    19.5  25.5  13.5
#  8   19    16    16.5   max(3, 0.5, 2.5) = 3           (6 + 3)/3 = 3    17.5  23.5  11.5
#  9   17    11    12     max(6, 0.5, 5.5) = 6           (6 + 6)/3 = 4    14    22    6
# 10   14    10    11     max(4, 2, 2) = 4               (8 + 4)/3 = 4    12    20    4
# 11   15    11    14     max(4, 4, 0) = 4               (8 + 4)/3 = 4    13    21    5
#
# Final bands FU/FL (ratchet), direction and line:
# bar  FU                             FL                               direction                line
#  3   17 (first bar: BU)             9 (first bar: BL)                -1 (first bar)           17
#  4   17 (BU 18 > 17, pc 13 < 17)    10 (BL 10 > 9)                   -1 (14 not > 17)         17
#  5   17 (BU 22.5 > 17, pc 14 < 17)  10.5 (BL 10.5 > 10)              +1 (18.5 > 17)           10.5
#  6   25 (pc 18.5 > 17: reset)       13 (BL 13 > 10.5)                +1 (20 not < 13)         13
#  7   25 (BU 25.5 > 25, pc 20 < 25)  13.5 (BL 13.5 > 13)              +1 (18.5 not < 13.5)     13.5
#  8   23.5 (BU 23.5 < 25)            13.5 (BL 11.5 < 13.5, pc 18.5)   +1 (16.5 not < 13.5)     13.5
#  9   22 (BU 22 < 23.5)              13.5 (BL 6 < 13.5, pc 16.5)      -1 (12 < 13.5)           22
# 10   20 (BU 20 < 22)                4 (pc 12 < 13.5: reset)          -1 (11 not > 20)         20
# 11   20 (BU 21 > 20, pc 11 < 20)    5 (BL 5 > 4)                     -1 (14 not > 20)         20
HAND_HIGH = [11, 12, 13, 14, 15, 19, 20.5, 21, 19, 17, 14, 15]
HAND_LOW = [9, 10, 11, 12, 13, 14, 17.5, 18, 16, 11, 10, 11]
HAND_CLOSE = [10, 11, 12, 13, 14, 18.5, 20, 18.5, 16.5, 12, 11, 14]
NAN = np.nan
HAND_ATR = [NAN, NAN, NAN, 2, 2, 3, 3, 3, 3, 4, 4, 4]
HAND_LINE = [NAN, NAN, NAN, 17, 17, 10.5, 13, 13.5, 13.5, 22, 20, 20]
HAND_DIRECTION = [NAN, NAN, NAN, -1, -1, 1, 1, 1, 1, -1, -1, -1]


def test_supertrend_matches_the_hand_calculation():
    high, low, close = (np.array(v, dtype=float) for v in (HAND_HIGH, HAND_LOW, HAND_CLOSE))
    np.testing.assert_allclose(ind.atr(high, low, close, 3), HAND_ATR, rtol=1e-12)
    line, direction = ind.supertrend(high, low, close, 3, 2.0)
    np.testing.assert_allclose(line, HAND_LINE, rtol=1e-12)
    np.testing.assert_array_equal(direction, HAND_DIRECTION)


def test_supertrend_hand_calculation_can_fail():
    high, low, close = (np.array(v, dtype=float) for v in (HAND_HIGH, HAND_LOW, HAND_CLOSE))
    # Another multiplier moves the bands, so the same hand values no longer hold.
    line, _ = ind.supertrend(high, low, close, 3, 1.5)
    assert not np.allclose(line[3:], HAND_LINE[3:])
    # Without the ratchet (line = the basic band of the current side) bar 4 would read 18, not 17.
    hl2, average = (high + low) / 2, ind.atr(high, low, close, 3)
    assert hl2[4] + 2 * average[4] == 18 != HAND_LINE[4]


def test_supertrend_line_sits_on_the_right_side_of_the_close(spy):
    _, high, low, close, _ = ohlcv(spy)
    line, direction = ind.supertrend(high, low, close, 10, 3.0)
    assert leading_nans(line) == leading_nans(direction) == 10
    up, down = direction == 1, direction == -1
    assert (up | down)[10:].all()
    assert up.sum() > 100 and down.sum() > 100  # both trends occur over 20 years of SPY
    assert (close[up] >= line[up]).all() and (close[down] <= line[down]).all()


def test_too_short_series_are_all_nan():
    close = np.arange(1.0, 11.0)
    assert np.isnan(ind.sma(close, 20)).all()
    assert np.isnan(ind.ema(close, 20)).all()
    assert np.isnan(ind.rsi(close, 14)).all()
    assert all(np.isnan(v).all() for v in ind.macd(close))
    assert all(np.isnan(v).all() for v in ind.supertrend(close + 1, close - 1, close, 10, 3))
    empty = np.array([], dtype=float)
    assert len(ind.obv(empty, empty)) == 0
    with pytest.raises(ValueError, match="positive integer"):
        ind.sma(close, 0)


def test_series_in_series_out(spy):
    out = ind.sma(spy["close"], 20)
    assert isinstance(out, pd.Series) and out.index.equals(spy.index)
    upper, middle, lower = ind.bollinger(spy["close"])
    assert all(isinstance(v, pd.Series) for v in (upper, middle, lower))
    assert isinstance(ind.sma(spy["close"].to_numpy(), 20), np.ndarray)


EXPECTED_WARMUP = {
    "sma_20": 19,
    "sma_50": 49,
    "sma_200": 199,
    "ema_20": 19,
    "rsi_14": 14,
    "macd": 33,
    "macd_signal": 33,
    "macd_hist": 33,
    "bb_upper": 19,
    "bb_middle": 19,
    "bb_lower": 19,
    "atr_14": 14,
    "supertrend": 10,
    "supertrend_dir": 10,
    "obv": 0,
    "volume_avg_20": 19,
}


def test_compute_adds_every_column_with_its_warmup(spy):
    before = spy.copy()
    out = ind.compute(spy, list(reversed(ind.INDICATOR_NAMES)))
    pd.testing.assert_frame_equal(spy, before)  # the input is not changed
    assert list(out.columns) == ["open", "high", "low", "close", "volume", *EXPECTED_WARMUP]
    assert ind.indicator_columns(ind.INDICATOR_NAMES) == list(EXPECTED_WARMUP)
    for column, warmup in EXPECTED_WARMUP.items():
        assert leading_nans(out[column]) == warmup, column
    for spec in ind.INDICATORS.values():
        assert all(EXPECTED_WARMUP[c] == spec.warmup for c in spec.columns)
    close = spy["close"].to_numpy()
    assert_matches(out["macd_signal"], talib.MACD(close)[1], atol=MACD_ATOL)
    assert_matches(out["bb_lower"], talib.BBANDS(close, 20, 2, 2)[2])


def test_compute_only_what_is_asked(spy):
    out = ind.compute(spy, ["rsi_14", "sma_20", "rsi_14"])
    assert list(out.columns[5:]) == ["sma_20", "rsi_14"]
    with pytest.raises(ValueError, match="Unknown indicator"):
        ind.compute(spy, ["sma_21"])


def test_latest_values_round_and_turn_nan_into_none():
    df = pd.DataFrame({"sma_20": [np.nan, 101.123456789], "supertrend_dir": [np.nan, -1.0], "obv": [1.0, np.nan]})
    assert ind.latest_values(df, ["sma_20", "supertrend_dir", "obv"]) == {
        "sma_20": 101.1235,
        "supertrend_dir": -1,
        "obv": None,
    }
