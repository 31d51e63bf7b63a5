"""The offline analyst: what the AI steps answer when no model endpoint is configured.

It is not a model. It reads the same indicators a model would see on the chart and applies
fixed rules, so the same bars always give exactly the same analysis and decision (no
randomness, no clock). Every answer is labelled with ANALYST_LABEL on the run page.

Analysis of one timeframe (the last bar):

- Four signals, each bullish, bearish or neutral:
  - Trend: close above SMA 50 is bullish, below is bearish.
  - Momentum: MACD histogram (12/26/9) above 0 is bullish, below 0 is bearish.
  - RSI 14: above 55 is bullish, below 45 is bearish, 45..55 is neutral. The reading notes
    overbought (above 70) and oversold (below 30); those do not change the signal.
  - SuperTrend (10, 3): direction up is bullish, down is bearish.
  A signal whose indicator cannot be computed yet (too few bars) is neutral and says so.
- Bias: bullish when at least 3 of the 4 signals are bullish, bearish when at least 3 are
  bearish, else neutral.
- Confidence: the share of the four signals that agree with the bias (0.75 or 1.0). A neutral
  bias has no edge to be confident in: 0.25.
- Trend: up when close > SMA 50 > SMA 200, down when close < SMA 50 < SMA 200, else sideways.
  With fewer than 200 bars (no SMA 200), SMA 20 and SMA 50 take the places of SMA 50 and
  SMA 200 (close > SMA 20 > SMA 50 is up).
- Key levels: the 20-bar low is support and the 20-bar high is resistance; the lower and upper
  Bollinger bands (20, 2) and SMA 50 are support when at or below the close and resistance
  when above it. Distinct, ascending, at most 5 on each side (the ones nearest the price).

Consolidation of several timeframes (shortest first):

- Alignment: "single" for one timeframe; "aligned" when every bias is the same bullish or
  bearish bias; "conflicting" when both bullish and bearish appear; else "mixed" (a neutral
  timeframe next to a directional one, or all neutral).
- Bias: the common bias when aligned or single, else neutral. Confidence: the mean confidence
  when aligned or single, else 0. Trend: the one every timeframe shows, else sideways.
- Key levels: all timeframes' levels merged, distinct, at most 5 on each side.

Decision:

- BUY when the bias is bullish and the timeframes are aligned (or there is a single one); SELL
  when bearish and aligned or single; HOLD otherwise, saying why.
- Entry: the last close. Stop: 2 x ATR 14 (of the shortest timeframe) below the entry for a BUY,
  above it for a SELL. Targets: 3 x ATR (conservative, R 1.5) and 5 x ATR (aggressive, R 2.5)
  on the other side.
- HOLD when the ATR is missing or not positive, or when the stop or a target would not be a
  positive price.
- Confidence: the analysis confidence for BUY and SELL, 0 for HOLD.

Prices are rounded to 2 decimals, or 4 when the last close is below 1.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from pydantic import ValidationError

from brokers.marketdata.bars import iso_date
from strategies.ai.schemas import (
    Alignment,
    Analysis,
    Bias,
    Consolidation,
    Decision,
    KeyLevels,
    Signal,
    Trend,
    neutral,
    validation_message,
)
from strategies.indicators.compute import INDICATOR_NAMES, INDICATORS, compute, indicator_columns
from workflows.errors import StepError

ANALYST_LABEL = "Offline rule-based analyst (no AI model)"

# What the analysis reads; computed when the bars do not carry them already.
ANALYSIS_INDICATORS = ("sma_20", "sma_50", "sma_200", "rsi_14", "macd", "bollinger", "supertrend")

RSI_BULLISH = 55.0
RSI_BEARISH = 45.0
RSI_OVERBOUGHT = 70.0
RSI_OVERSOLD = 30.0
LEVEL_WINDOW = 20
MAX_LEVELS = 5
# A bias needs this many of the four signals.
BIAS_QUORUM = 3
NEUTRAL_CONFIDENCE = 0.25
STOP_ATR = 2.0
CONSERVATIVE_ATR = 3.0
AGGRESSIVE_ATR = 5.0


# Numbers


def _digits(price: float) -> int:
    """Decimals for a price level: cents, or 4 decimals below 1 where cents are too coarse."""
    return 4 if abs(price) < 1 else 2


def _price(value: float, reference: float) -> float:
    return round(float(value), _digits(reference))


def _fmt(value: float, reference: float) -> str:
    return f"{value:.{_digits(reference)}f}"


def _finite(value: Any) -> float | None:
    """A float, or None for NaN, infinities and anything that is not a number."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _last(df: pd.DataFrame, column: str) -> float | None:
    return _finite(df[column].iloc[-1]) if column in df.columns and len(df) else None


def _last_date(df: pd.DataFrame) -> str:
    label = df.index[-1]
    return iso_date(label) if isinstance(label, pd.Timestamp) else str(label)


def _needs(name: str) -> int:
    """Bars an indicator needs before its first value."""
    return INDICATORS[name].warmup + 1


def _with_indicators(df: pd.DataFrame, names: Iterable[str]) -> pd.DataFrame:
    """The bars with the named indicators, computing only those whose columns are missing."""
    missing = [name for name in names if not all(c in df.columns for c in INDICATORS[name].columns)]
    return compute(df, missing) if missing else df


# Key levels


def _nearest(support: Iterable[float], resistance: Iterable[float]) -> KeyLevels:
    """Distinct ascending levels, keeping the MAX_LEVELS nearest the price on each side: the
    highest supports and the lowest resistances."""
    below = sorted({s for s in support if s > 0})[-MAX_LEVELS:]
    above = sorted({r for r in resistance if r > 0})[:MAX_LEVELS]
    return KeyLevels(support=below, resistance=above)


def _key_levels(df: pd.DataFrame, close: float) -> KeyLevels:
    window = df.iloc[-LEVEL_WINDOW:]
    support = [_finite(window["low"].min())]
    resistance = [_finite(window["high"].max())]
    for column in ("bb_lower", "bb_upper", "sma_50"):
        level = _last(df, column)
        if level is not None:
            (support if level <= close else resistance).append(level)
    return _nearest(
        (_price(s, close) for s in support if s is not None),
        (_price(r, close) for r in resistance if r is not None),
    )


# Signals


def _missing(label: str, name: str, rows: int) -> Signal:
    return Signal(
        indicator=label,
        reading=f"{label} not available: needs {_needs(name)} bars, have {rows}",
        bias="neutral",
    )


def _trend_signal(df: pd.DataFrame, close: float) -> Signal:
    sma = _last(df, "sma_50")
    if sma is None:
        return _missing("SMA 50", "sma_50", len(df))
    if close > sma:
        side, bias = "above", "bullish"
    elif close < sma:
        side, bias = "below", "bearish"
    else:
        side, bias = "at", "neutral"
    return Signal(indicator="SMA 50", reading=f"close {_fmt(close, close)} {side} SMA 50 {_fmt(sma, close)}", bias=bias)


def _momentum_signal(df: pd.DataFrame, close: float) -> Signal:
    hist, line, signal = _last(df, "macd_hist"), _last(df, "macd"), _last(df, "macd_signal")
    if hist is None or line is None or signal is None:
        return _missing("MACD", "macd", len(df))
    bias: Bias = "bullish" if hist > 0 else "bearish" if hist < 0 else "neutral"
    digits = _digits(close) + 2
    reading = (
        f"MACD histogram {hist:+.{digits}f} (MACD {line:.{digits}f} "
        f"{'above' if hist > 0 else 'below' if hist < 0 else 'at'} signal {signal:.{digits}f})"
    )
    return Signal(indicator="MACD", reading=reading, bias=bias)


def _rsi_signal(df: pd.DataFrame) -> Signal:
    value = _last(df, "rsi_14")
    if value is None:
        return _missing("RSI 14", "rsi_14", len(df))
    if value > RSI_BULLISH:
        bias, reading = "bullish", f"RSI 14 {value:.1f} above {RSI_BULLISH:g}"
    elif value < RSI_BEARISH:
        bias, reading = "bearish", f"RSI 14 {value:.1f} below {RSI_BEARISH:g}"
    else:
        bias, reading = "neutral", f"RSI 14 {value:.1f} between {RSI_BEARISH:g} and {RSI_BULLISH:g}"
    if value > RSI_OVERBOUGHT:
        reading += f", overbought (above {RSI_OVERBOUGHT:g})"
    elif value < RSI_OVERSOLD:
        reading += f", oversold (below {RSI_OVERSOLD:g})"
    return Signal(indicator="RSI 14", reading=reading, bias=bias)


def _supertrend_signal(df: pd.DataFrame, close: float) -> Signal:
    direction, line = _last(df, "supertrend_dir"), _last(df, "supertrend")
    if direction is None or line is None:
        return _missing("SuperTrend", "supertrend", len(df))
    if direction > 0:
        return Signal(indicator="SuperTrend", reading=f"SuperTrend up, line {_fmt(line, close)}", bias="bullish")
    return Signal(indicator="SuperTrend", reading=f"SuperTrend down, line {_fmt(line, close)}", bias="bearish")


def _trend(df: pd.DataFrame, close: float) -> tuple[Trend, str]:
    fast, slow, names = _last(df, "sma_50"), _last(df, "sma_200"), ("SMA 50", "SMA 200")
    if slow is None:
        fast, slow, names = _last(df, "sma_20"), _last(df, "sma_50"), ("SMA 20", "SMA 50")
    if fast is None or slow is None:
        return "sideways", "too few bars for the moving averages"
    text = f"{names[0]} {_fmt(fast, close)}, {names[1]} {_fmt(slow, close)}"
    if close > fast > slow:
        return "up", f"close above {names[0]} above {names[1]} ({text})"
    if close < fast < slow:
        return "down", f"close below {names[0]} below {names[1]} ({text})"
    return "sideways", f"close and moving averages not stacked ({text})"


def _levels_text(levels: KeyLevels) -> str:
    def show(values: list[float]) -> str:
        return ", ".join(_fmt(v, v) for v in values) if values else "none"

    return f"support {show(levels.support)}; resistance {show(levels.resistance)}"


def offline_analysis(df: pd.DataFrame) -> Analysis:
    """One timeframe's analysis by the rules in the module docstring."""
    if df is None or df.empty:
        return neutral("no bars to analyse")
    df = _with_indicators(df, ANALYSIS_INDICATORS)
    close = _finite(df["close"].iloc[-1])
    if close is None or close <= 0:
        return neutral("the last close is not a positive price")

    signals = [_trend_signal(df, close), _momentum_signal(df, close), _rsi_signal(df), _supertrend_signal(df, close)]
    bullish = sum(s.bias == "bullish" for s in signals)
    bearish = sum(s.bias == "bearish" for s in signals)
    if bullish >= BIAS_QUORUM:
        bias, confidence = "bullish", bullish / len(signals)
    elif bearish >= BIAS_QUORUM:
        bias, confidence = "bearish", bearish / len(signals)
    else:
        bias, confidence = "neutral", NEUTRAL_CONFIDENCE
    trend, trend_text = _trend(df, close)
    levels = _key_levels(df, close)

    neutral_count = len(signals) - bullish - bearish
    readings = "; ".join(s.reading for s in signals)
    summary = (
        f"Close {_fmt(close, close)} on {_last_date(df)}. "
        f"{bullish} of {len(signals)} signals bullish, {bearish} bearish, {neutral_count} neutral, "
        f"so the bias is {bias}"
        + (f" (needs {BIAS_QUORUM} of {len(signals)} in one direction)" if bias == "neutral" else "")
        + f", confidence {confidence:.2f}. Trend {trend}: {trend_text}. Signals: {readings}. "
        f"Key levels: {_levels_text(levels)}."
    )
    return Analysis(
        trend=trend, bias=bias, confidence=confidence, key_levels=levels, signals=signals, summary=summary[:4000]
    )


# Consolidation


def _alignment(biases: list[Bias]) -> Alignment:
    if len(biases) == 1:
        return "single"
    if "bullish" in biases and "bearish" in biases:
        return "conflicting"
    if len(set(biases)) == 1 and biases[0] != "neutral":
        return "aligned"
    return "mixed"


_ALIGNMENT_TEXT = {
    "single": "one timeframe",
    "aligned": "the timeframes agree",
    "conflicting": "the timeframes conflict (one bullish, another bearish)",
    "mixed": "the timeframes do not agree on a direction",
}


def offline_consolidate(analyses: Sequence[tuple[str, Analysis]]) -> Consolidation:
    """Several timeframes' analyses, shortest first, merged by the rules in the module docstring."""
    if not analyses:
        return Consolidation(
            trend="sideways",
            bias="neutral",
            confidence=0.0,
            key_levels=KeyLevels(),
            summary="No analysis: no timeframe to consolidate.",
            timeframe_alignment="mixed",
        )
    # A missing bar label still needs a name in the signals and the summary.
    analyses = [(str(bar).strip() or f"timeframe {i}", analysis) for i, (bar, analysis) in enumerate(analyses, 1)]
    biases: list[Bias] = [analysis.bias for _, analysis in analyses]
    alignment = _alignment(biases)
    directional = alignment in ("aligned", "single")
    bias: Bias = biases[0] if directional else "neutral"
    confidence = float(np.mean([a.confidence for _, a in analyses])) if directional else 0.0
    trends = {analysis.trend for _, analysis in analyses}
    trend: Trend = trends.pop() if len(trends) == 1 else "sideways"
    levels = _nearest(
        (s for _, a in analyses for s in a.key_levels.support),
        (r for _, a in analyses for r in a.key_levels.resistance),
    )
    signals = [
        Signal(indicator=f"{bar} {signal.indicator}"[:60], reading=signal.reading, bias=signal.bias)
        for bar, analysis in analyses
        for signal in analysis.signals
    ][:20]
    each = ", ".join(f"{bar} {a.bias} (confidence {a.confidence:.2f}, trend {a.trend})" for bar, a in analyses)
    summary = (
        f"Timeframes: {each}. Alignment {alignment}: {_ALIGNMENT_TEXT[alignment]}, so the combined bias is {bias}, "
        f"confidence {confidence:.2f}. Key levels: {_levels_text(levels)}."
    )
    return Consolidation(
        trend=trend,
        bias=bias,
        confidence=confidence,
        key_levels=levels,
        signals=signals,
        summary=summary[:4000],
        timeframe_alignment=alignment,
    )


# Decision


def _hold(reason: str, *, alignment: Alignment, levels: KeyLevels) -> Decision:
    return Decision(
        action="HOLD",
        confidence=0.0,
        timeframe_alignment=alignment,
        key_levels=levels,
        reasoning=f"HOLD: {reason}"[:8000],
    )


def offline_decision(analysis: Analysis | Consolidation, *, last_close: float, atr: float | None) -> Decision:
    """BUY, SELL or HOLD from an analysis by the rules in the module docstring; `atr` is the
    ATR 14 of the shortest timeframe."""
    alignment: Alignment = analysis.timeframe_alignment if isinstance(analysis, Consolidation) else "single"
    levels = analysis.key_levels
    view = f"bias {analysis.bias}, {_ALIGNMENT_TEXT[alignment]} ({alignment})"
    if analysis.bias == "neutral":
        return _hold(f"no clear direction ({view}). {analysis.summary}", alignment=alignment, levels=levels)
    if alignment not in ("aligned", "single"):
        return _hold(
            f"{view}; a trade needs aligned timeframes. {analysis.summary}", alignment=alignment, levels=levels
        )
    close = _finite(last_close)
    if close is None or close <= 0:
        return _hold(
            f"the last close {last_close!r} is not a positive price ({view})", alignment=alignment, levels=levels
        )
    risk = _finite(atr)
    if risk is None or risk <= 0:
        return _hold(
            f"{view}, but the ATR 14 is {'not available' if risk is None else 'not positive'}, so there is no "
            "volatility to place the stop by",
            alignment=alignment,
            levels=levels,
        )

    side = 1.0 if analysis.bias == "bullish" else -1.0
    action = "BUY" if side > 0 else "SELL"
    entry = _price(close, close)
    stop = _price(close - side * STOP_ATR * risk, close)
    conservative = _price(close + side * CONSERVATIVE_ATR * risk, close)
    aggressive = _price(close + side * AGGRESSIVE_ATR * risk, close)
    if min(stop, conservative, aggressive) <= 0:
        return _hold(
            f"{view}, but with ATR 14 {risk:g} the {'stop' if stop <= 0 else 'target'} would not be a positive price",
            alignment=alignment,
            levels=levels,
        )
    below, above = ("below", "above") if side > 0 else ("above", "below")
    reasoning = (
        f"{action}: {view}, confidence {analysis.confidence:.2f}. Entry at the last close {_fmt(entry, close)}; "
        f"stop {STOP_ATR:g} x ATR 14 ({risk:.{_digits(close) + 2}f}) {below} it at {_fmt(stop, close)}; targets "
        f"{CONSERVATIVE_ATR:g} x ATR {above} it at {_fmt(conservative, close)} (R {CONSERVATIVE_ATR / STOP_ATR:g}) "
        f"and {AGGRESSIVE_ATR:g} x ATR at {_fmt(aggressive, close)} (R {AGGRESSIVE_ATR / STOP_ATR:g}). "
        f"{analysis.summary}"
    )
    try:
        return Decision(
            action=action,
            entry=entry,
            stop_loss=stop,
            take_profit_conservative=conservative,
            take_profit_aggressive=aggressive,
            confidence=analysis.confidence,
            timeframe_alignment=alignment,
            key_levels=levels,
            reasoning=reasoning[:8000],
        )
    except ValidationError as exc:
        # An ATR too small for the price's rounding puts the levels on the entry.
        return _hold(
            f"{view}, but the levels are invalid: {validation_message(exc)}", alignment=alignment, levels=levels
        )


# Context for prompts and decisions

_PRICE_COLUMNS = {"sma_20", "sma_50", "sma_200", "ema_20", "bb_upper", "bb_middle", "bb_lower", "supertrend"}
_FINE_COLUMNS = {"macd", "macd_signal", "macd_hist", "atr_14"}
_WHOLE_COLUMNS = {"obv", "volume_avg_20", "supertrend_dir"}


def _context_value(column: str, value: float | None, close: float) -> float | int | None:
    if value is None:
        return None
    if column in _WHOLE_COLUMNS:
        return round(value)
    if column in _PRICE_COLUMNS:
        return _price(value, close)
    if column in _FINE_COLUMNS:
        return round(value, _digits(close) + 2)
    return round(value, 2)


def market_context(df: pd.DataFrame) -> dict[str, Any]:
    """The last bar's close, date, ATR 14 and every indicator value, JSON-safe (None where an
    indicator cannot be computed yet): what prompts show and decisions use."""
    if df is None or df.empty:
        raise StepError("No bars: nothing to analyse")
    df = _with_indicators(df, INDICATOR_NAMES)
    close = _finite(df["close"].iloc[-1])
    if close is None:
        raise StepError("The last bar has no close price")
    indicators = {
        column: _context_value(column, _last(df, column), close) for column in indicator_columns(INDICATOR_NAMES)
    }
    return {
        "last_close": round(close, _digits(close) + 2),
        "last_date": _last_date(df),
        "atr": indicators["atr_14"],
        "indicators": indicators,
    }
