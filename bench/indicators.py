"""Indicators over 100 symbols x 10 years of daily bars: strategies.indicators.compute next to TA-Lib.

    .venv/bin/python bench/indicators.py [--repeats 7]

The 100 series are real bundled daily bars: 25 windows of 2,520 sessions (10 years) from each of
the four files that hold that much (SPY 1999-2020, and AAPL, IBM, MSFT 2000-2013, split-adjusted),
the windows' starts spread evenly over each file. GOOG (8.5 years) and AAPL 2019-2024 are too short.

Prints, for the best of --repeats passes over all 100 series, the total and per-symbol time of:
our `compute(df, every indicator)` (DataFrame in and out, SuperTrend included); the same without
SuperTrend, which TA-Lib does not have; TA-Lib computing that same set on the same bars; and our
SuperTrend alone. Then the largest difference between the two on the last series.
"""

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import talib  # noqa: E402

from brokers.marketdata.bars import BundledSource  # noqa: E402
from strategies.indicators.compute import INDICATOR_NAMES, compute  # noqa: E402

SYMBOLS, WINDOWS_EACH, SESSIONS = ("SPY", "AAPL", "IBM", "MSFT"), 25, 2520
TALIB_SET = [name for name in INDICATOR_NAMES if name != "supertrend"]


def series() -> list[pd.DataFrame]:
    source = BundledSource(os.environ.get("MARKET_DATA_DIR", ROOT / "brokers" / "data" / "market"))
    out = []
    for symbol in SYMBOLS:
        # The longest daily file of the symbol (AAPL: 2000-2013, not 2019-2024).
        paths = source.files()[symbol]["1d"]
        full = max((source.bars(symbol=symbol, bar="1d", period="max", end=_last(p)) for p in paths), key=len)
        assert len(full) >= SESSIONS, (symbol, len(full))
        for start in np.linspace(0, len(full) - SESSIONS, WINDOWS_EACH).astype(int):
            out.append(full.iloc[start : start + SESSIONS])
    return out


def _last(path: Path):
    return pd.read_csv(path, usecols=["timestamp"])["timestamp"].iloc[-1]


def talib_all(df: pd.DataFrame) -> dict[str, np.ndarray]:
    high, low, close, volume = (df[c].to_numpy() for c in ("high", "low", "close", "volume"))
    macd, signal, hist = talib.MACD(close, 12, 26, 9)
    upper, middle, lower = talib.BBANDS(close, 20, 2, 2, talib.MA_Type.SMA)
    return {
        "sma_20": talib.SMA(close, 20),
        "sma_50": talib.SMA(close, 50),
        "sma_200": talib.SMA(close, 200),
        "ema_20": talib.EMA(close, 20),
        "rsi_14": talib.RSI(close, 14),
        "macd": macd,
        "macd_signal": signal,
        "macd_hist": hist,
        "bb_upper": upper,
        "bb_middle": middle,
        "bb_lower": lower,
        "atr_14": talib.ATR(high, low, close, 14),
        "obv": talib.OBV(close, volume),
        "volume_avg_20": talib.SMA(volume, 20),
    }


def best_of(repeats: int, frames: list[pd.DataFrame], work: Callable[[pd.DataFrame], object]) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for df in frames:
            work(df)
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()

    frames = series()
    print(
        f"{len(frames)} series x {SESSIONS} daily bars: {WINDOWS_EACH} evenly spaced 10-year windows of each of "
        f"{', '.join(SYMBOLS)} (bundled, split-adjusted); best of {args.repeats} passes"
    )
    print(f"numpy {np.__version__}, pandas {pd.__version__}, TA-Lib wheel {talib.__version__}\n")
    rows = [
        ("ours: compute(df, all 11 indicators)", lambda df: compute(df, list(INDICATOR_NAMES))),
        ("ours: compute(df, the 10 TA-Lib has)", lambda df: compute(df, TALIB_SET)),
        ("TA-Lib: the same 10 (numpy arrays)", talib_all),
        ("ours: supertrend alone", lambda df: compute(df, ["supertrend"])),
    ]
    results = {}
    print(f"{'':40s} {'total':>10s} {'per symbol':>12s}")
    for label, work in rows:
        total = best_of(args.repeats, frames, work)
        results[label] = total
        print(f"{label:40s} {total * 1000:8.1f} ms {total / len(frames) * 1000:9.3f} ms")
    ratio = results[rows[1][0]] / results[rows[2][0]]
    print(f"\nours / TA-Lib on the same 10 indicators: {ratio:.1f}x")

    ours, theirs = compute(frames[-1], TALIB_SET), talib_all(frames[-1])
    worst = max(np.nanmax(np.abs(ours[c].to_numpy() - v) / np.maximum(np.abs(v), 1.0)) for c, v in theirs.items())
    print(f"largest difference from TA-Lib on the last series (relative, absolute below 1): {worst:.1e}")


if __name__ == "__main__":
    main()
