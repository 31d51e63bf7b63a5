"""The offline rule-based analyst: deterministic, right on bars whose answer is known, and always
valid against the strict schemas; and the default prompts' placeholders."""

import json
import re

import numpy as np
import pandas as pd
import pytest

from brokers.marketdata import bars as marketdata
from brokers.marketdata.bars import BundledSource
from strategies.ai.offline import (
    ANALYST_LABEL,
    market_context,
    offline_analysis,
    offline_consolidate,
    offline_decision,
)
from strategies.ai.prompt_defaults import PROMPT_DEFAULTS
from strategies.ai.schemas import Analysis, Consolidation, Decision, KeyLevels, Signal
from strategies.indicators.compute import compute

BARS = 300
STEPS = np.arange(BARS)


def make_bars(close: np.ndarray) -> pd.DataFrame:
    """Daily bars around the given closes: each opens at the previous close, high and low 0.4% beyond."""
    close = np.asarray(close, dtype=float)
    index = pd.bdate_range("2020-01-01", periods=len(close), name="timestamp")
    open_ = np.concatenate(([close[0]], close[:-1]))
    return pd.DataFrame(
        {
            "open": open_,
            "high": np.maximum(open_, close) * 1.004,
            "low": np.minimum(open_, close) * 0.996,
            "close": close,
            "volume": 1e6 + 1e4 * (np.arange(len(close)) % 7),
        },
        index=index,
    )


# Accelerating trends (so MACD keeps widening) with a small deterministic wiggle.
UPTREND = make_bars(50 + 0.1 * STEPS + 0.002 * STEPS**2 + 0.3 * np.sin(STEPS * 1.3))
DOWNTREND = make_bars(300 - 0.1 * STEPS - 0.002 * STEPS**2 + 0.3 * np.sin(STEPS * 1.3))
# A range: a 40-bar wave, ending as price turns down from the top (close above SMA 50 and
# SuperTrend still up, MACD histogram already negative, RSI near 50).
CHOPPY = make_bars(100 + 3 * np.sin(np.arange(298) * 2 * np.pi / 40))
FLAT = make_bars(np.full(BARS, 100.0))


def atr_of(df: pd.DataFrame) -> float:
    return float(compute(df, ["atr_14"])["atr_14"].iloc[-1])


def decide(df: pd.DataFrame) -> Decision:
    return offline_decision(offline_analysis(df), last_close=float(df["close"].iloc[-1]), atr=atr_of(df))


def assert_valid(model: Analysis | Consolidation | Decision) -> None:
    assert type(model).model_validate(model.model_dump()) == model
    # JSON-safe as well: what the step stores and a model-written answer would be.
    assert type(model).model_validate(json.loads(model.model_dump_json())) == model


def analysis(bias: str, *, confidence: float = 0.75, trend: str = "sideways", support=(), resistance=()) -> Analysis:
    return Analysis(
        trend=trend,
        bias=bias,
        confidence=confidence,
        key_levels=KeyLevels(support=list(support), resistance=list(resistance)),
        signals=[Signal(indicator="RSI 14", reading="RSI 14 60.0 above 55", bias=bias)],
        summary=f"A {bias} view.",
    )


# Determinism on real bars


@pytest.fixture(scope="module")
def aapl() -> pd.DataFrame:
    return BundledSource().bars(symbol="AAPL", bar="1d", period="max")


def test_same_bars_same_answer_every_time(aapl):
    def run(df: pd.DataFrame) -> tuple[dict, dict, dict]:
        context = market_context(df)
        result = offline_analysis(df)
        decision = offline_decision(result, last_close=context["last_close"], atr=context["atr"])
        return result.model_dump(), decision.model_dump(), context

    first = run(aapl)
    assert run(aapl) == first
    assert run(aapl.copy()) == first
    marketdata._read_cached.cache_clear()
    fresh = BundledSource().bars(symbol="AAPL", bar="1d", period="max")
    assert run(fresh) == first
    # The input is not modified (no indicator columns added to the caller's frame).
    assert list(fresh.columns) == marketdata.COLUMNS


def test_real_bars_daily_and_weekly(aapl):
    weekly = BundledSource().bars(symbol="AAPL", bar="1w", period="max")
    daily_view, weekly_view = offline_analysis(aapl), offline_analysis(weekly)
    merged = offline_consolidate([("1 day", daily_view), ("1 week", weekly_view)])
    context = market_context(aapl)
    decision = offline_decision(merged, last_close=context["last_close"], atr=context["atr"])
    for model in (daily_view, weekly_view, merged, decision):
        assert_valid(model)
    assert offline_consolidate([("1 day", daily_view), ("1 week", weekly_view)]) == merged
    assert [s.indicator for s in daily_view.signals] == ["SMA 50", "MACD", "RSI 14", "SuperTrend"]
    assert "1 day" in merged.summary and "1 week" in merged.summary
    # Precomputed indicator columns (an indicators artifact) give the same answer.
    precomputed = compute(aapl, ["sma_20", "sma_50", "sma_200", "macd", "rsi_14", "supertrend"])
    assert offline_analysis(precomputed) == daily_view


def test_market_context_is_json_safe(aapl):
    context = market_context(aapl)
    assert json.loads(json.dumps(context)) == context
    assert context["last_close"] == pytest.approx(float(aapl["close"].iloc[-1]))
    assert context["last_date"] == f"{aapl.index[-1]:%Y-%m-%d}"
    assert context["atr"] == pytest.approx(atr_of(aapl), abs=1e-4)
    indicators = context["indicators"]
    assert set(indicators) >= {"sma_50", "sma_200", "rsi_14", "macd_hist", "bb_lower", "supertrend_dir", "obv"}
    assert indicators["supertrend_dir"] in (1, -1)
    assert isinstance(indicators["obv"], int)
    assert all(v is None or isinstance(v, int | float) for v in indicators.values())

    short = market_context(aapl.iloc[:30])
    assert short["indicators"]["sma_50"] is None
    assert short["indicators"]["macd"] is None
    assert short["indicators"]["rsi_14"] is not None
    assert json.loads(json.dumps(short)) == short


# Bars whose answer is known


def test_uptrend_is_a_buy_two_atr_below():
    result = offline_analysis(UPTREND)
    assert_valid(result)
    assert (result.bias, result.trend, result.confidence) == ("bullish", "up", 1.0)
    assert [s.bias for s in result.signals] == ["bullish"] * 4
    assert "overbought" in result.signals[2].reading

    close, atr = float(UPTREND["close"].iloc[-1]), atr_of(UPTREND)
    decision = offline_decision(result, last_close=close, atr=atr)
    assert_valid(decision)
    assert decision.action == "BUY"
    assert decision.timeframe_alignment == "single"
    assert decision.entry == round(close, 2)
    assert decision.stop_loss == round(close - 2 * atr, 2)
    assert decision.take_profit_conservative == round(close + 3 * atr, 2)
    assert decision.take_profit_aggressive == round(close + 5 * atr, 2)
    assert decision.confidence == 1.0
    assert all(s < close for s in decision.key_levels.support)
    assert all(r > close for r in decision.key_levels.resistance)


def test_downtrend_is_a_sell_mirrored():
    result = offline_analysis(DOWNTREND)
    assert (result.bias, result.trend, result.confidence) == ("bearish", "down", 1.0)
    assert "oversold" in result.signals[2].reading

    close, atr = float(DOWNTREND["close"].iloc[-1]), atr_of(DOWNTREND)
    decision = offline_decision(result, last_close=close, atr=atr)
    assert_valid(decision)
    assert decision.action == "SELL"
    assert decision.entry == round(close, 2)
    assert decision.stop_loss == round(close + 2 * atr, 2)
    assert decision.take_profit_conservative == round(close - 3 * atr, 2)
    assert decision.take_profit_aggressive == round(close - 5 * atr, 2)


@pytest.mark.parametrize("bars", [CHOPPY, FLAT], ids=["choppy", "flat"])
def test_range_is_a_hold(bars):
    result = offline_analysis(bars)
    assert_valid(result)
    biases = [s.bias for s in result.signals]
    assert biases.count("bullish") < 3 and biases.count("bearish") < 3
    assert (result.bias, result.confidence) == ("neutral", 0.25)
    decision = decide(bars)
    assert_valid(decision)
    assert decision.action == "HOLD"
    assert decision.entry is None and decision.stop_loss is None
    assert "no clear direction" in decision.reasoning


def test_choppy_signals_disagree():
    assert [s.bias for s in offline_analysis(CHOPPY).signals] == ["bullish", "bearish", "neutral", "bullish"]


def test_flat_is_sideways():
    result = offline_analysis(FLAT)
    assert result.trend == "sideways"
    assert result.signals[0].reading == "close 100.00 at SMA 50 100.00"


def test_too_few_bars_neutral_signals_and_hold():
    bars = UPTREND.iloc[:30]
    result = offline_analysis(bars)
    assert_valid(result)
    by_name = {s.indicator: s for s in result.signals}
    assert by_name["SMA 50"].bias == "neutral" and "needs 50 bars, have 30" in by_name["SMA 50"].reading
    assert by_name["MACD"].bias == "neutral" and "not available" in by_name["MACD"].reading
    assert by_name["RSI 14"].bias == "bullish"
    assert by_name["SuperTrend"].bias == "bullish"
    assert result.bias == "neutral"
    decision = decide(bars)
    assert_valid(decision)
    assert decision.action == "HOLD"


def test_no_bars_at_all():
    empty = UPTREND.iloc[:0]
    result = offline_analysis(empty)
    assert result.bias == "neutral"
    assert offline_decision(result, last_close=100.0, atr=1.0).action == "HOLD"
    single = offline_analysis(UPTREND.iloc[:1])
    assert_valid(single)
    assert single.bias == "neutral"


def test_bars_without_dates():
    plain = UPTREND.reset_index(drop=True)
    assert offline_analysis(plain).bias == "bullish"
    assert market_context(plain)["last_date"] == str(BARS - 1)


def test_key_levels_sides_rounding_and_limits():
    close = float(UPTREND["close"].iloc[-1])
    levels = offline_analysis(UPTREND).key_levels
    window = UPTREND.iloc[-20:]
    assert round(float(window["low"].min()), 2) in levels.support
    assert round(float(window["high"].max()), 2) in levels.resistance
    for values in (levels.support, levels.resistance):
        assert values == sorted(set(values))
        assert len(values) <= 5
        assert all(v > 0 and round(v, 2) == v for v in values)
    assert max(levels.support) <= close < min(levels.resistance)

    # Below 1, levels keep 4 decimals.
    penny = make_bars((50 + 0.1 * STEPS + 0.002 * STEPS**2) / 1000)
    penny_levels = offline_analysis(penny).key_levels
    assert any(round(v, 2) != v for v in penny_levels.support + penny_levels.resistance)
    assert all(round(v, 4) == v for v in penny_levels.support + penny_levels.resistance)
    decision = decide(penny)
    assert_valid(decision)
    assert decision.action == "BUY"
    assert decision.stop_loss == round(float(penny["close"].iloc[-1]) - 2 * atr_of(penny), 4)


# Decision edge cases


@pytest.mark.parametrize("atr", [None, 0.0, -1.0, float("nan")])
def test_no_atr_is_a_hold(atr):
    decision = offline_decision(offline_analysis(UPTREND), last_close=float(UPTREND["close"].iloc[-1]), atr=atr)
    assert_valid(decision)
    assert decision.action == "HOLD"
    assert "ATR" in decision.reasoning


def test_stop_below_zero_is_a_hold():
    decision = offline_decision(analysis("bullish"), last_close=10.0, atr=6.0)
    assert decision.action == "HOLD"
    assert "positive price" in decision.reasoning
    # A SELL's targets below zero as well.
    assert offline_decision(analysis("bearish"), last_close=10.0, atr=2.5).action == "HOLD"


def test_atr_too_small_for_the_rounding_is_a_hold():
    decision = offline_decision(analysis("bullish"), last_close=100.0, atr=0.001)
    assert_valid(decision)
    assert decision.action == "HOLD"


# Consolidation


def test_consolidate_single():
    only = analysis("bullish", confidence=0.75, trend="up", support=[95.0], resistance=[110.0])
    merged = offline_consolidate([("1 day", only)])
    assert_valid(merged)
    assert (merged.timeframe_alignment, merged.bias, merged.trend) == ("single", "bullish", "up")
    assert merged.confidence == 0.75
    assert merged.key_levels == only.key_levels
    decision = offline_decision(merged, last_close=100.0, atr=2.0)
    assert (decision.action, decision.timeframe_alignment) == ("BUY", "single")
    assert decision.stop_loss == 96.0
    assert (decision.take_profit_conservative, decision.take_profit_aggressive) == (106.0, 110.0)


def test_consolidate_aligned():
    merged = offline_consolidate(
        [
            ("1 day", analysis("bearish", confidence=0.75, trend="down", support=[90.0, 95.0], resistance=[105.0])),
            ("1 week", analysis("bearish", confidence=1.0, trend="down", support=[80.0, 95.0], resistance=[120.0])),
        ]
    )
    assert_valid(merged)
    assert (merged.timeframe_alignment, merged.bias, merged.confidence, merged.trend) == (
        "aligned",
        "bearish",
        0.875,
        "down",
    )
    assert merged.key_levels.support == [80.0, 90.0, 95.0]
    assert merged.key_levels.resistance == [105.0, 120.0]
    assert "1 day bearish" in merged.summary and "1 week bearish" in merged.summary
    assert [s.indicator for s in merged.signals] == ["1 day RSI 14", "1 week RSI 14"]
    decision = offline_decision(merged, last_close=100.0, atr=2.0)
    assert_valid(decision)
    assert (decision.action, decision.timeframe_alignment, decision.confidence) == ("SELL", "aligned", 0.875)
    assert (decision.entry, decision.stop_loss, decision.take_profit_conservative) == (100.0, 104.0, 94.0)


@pytest.mark.parametrize(
    ("biases", "alignment"),
    [
        (["bullish", "neutral"], "mixed"),
        (["neutral", "neutral"], "mixed"),
        (["bullish", "bearish"], "conflicting"),
        (["bearish", "neutral", "bullish"], "conflicting"),
    ],
)
def test_consolidate_not_aligned_never_trades(biases, alignment):
    merged = offline_consolidate([(f"bar {i}", analysis(b, confidence=1.0)) for i, b in enumerate(biases)])
    assert_valid(merged)
    assert (merged.timeframe_alignment, merged.bias, merged.confidence) == (alignment, "neutral", 0.0)
    decision = offline_decision(merged, last_close=100.0, atr=2.0)
    assert_valid(decision)
    assert (decision.action, decision.timeframe_alignment) == ("HOLD", alignment)


def test_conflicting_never_trades_even_with_a_directional_bias():
    # A model-made consolidation may claim a bias while conflicting: the offline decision still holds.
    conflicting = Consolidation(**analysis("bullish", confidence=0.9).model_dump(), timeframe_alignment="conflicting")
    assert offline_decision(conflicting, last_close=100.0, atr=2.0).action == "HOLD"
    mixed = Consolidation(**analysis("bearish", confidence=0.9).model_dump(), timeframe_alignment="mixed")
    assert offline_decision(mixed, last_close=100.0, atr=2.0).action == "HOLD"


def test_consolidate_keeps_the_nearest_five_levels():
    views = [
        ("1 day", analysis("bullish", support=[91.0, 92.0, 93.0], resistance=[101.0, 102.0, 103.0])),
        ("1 week", analysis("bullish", support=[89.0, 90.0, 93.0, 94.0], resistance=[103.0, 104.0, 105.0, 106.0])),
    ]
    merged = offline_consolidate(views)
    assert merged.key_levels.support == [90.0, 91.0, 92.0, 93.0, 94.0]
    assert merged.key_levels.resistance == [101.0, 102.0, 103.0, 104.0, 105.0]


def test_consolidate_nothing():
    merged = offline_consolidate([])
    assert_valid(merged)
    assert merged.bias == "neutral"
    assert offline_decision(merged, last_close=100.0, atr=2.0).action == "HOLD"


def test_label():
    assert ANALYST_LABEL == "Offline rule-based analyst (no AI model)"


# Default prompts

PLACEHOLDER = re.compile(r"{{\s*(\w+)\s*}}")
CHART = {"symbol", "bar", "last_date", "last_close", "indicators", "instructions"}
ALLOWED = {
    "chart_daily": CHART,
    "chart_weekly": CHART,
    "consolidate": {"symbol", "analyses", "instructions"},
    "decide": {"symbol", "analysis", "last_close", "atr", "indicators", "instructions"},
}


def test_prompt_defaults_keys():
    assert set(PROMPT_DEFAULTS) == set(ALLOWED)


@pytest.mark.parametrize("key", sorted(ALLOWED))
def test_prompt_default_fields_and_placeholders(key):
    prompt = PROMPT_DEFAULTS[key]
    assert set(prompt) == {"title", "description", "system", "user"}
    for field in ("title", "description", "system", "user"):
        assert isinstance(prompt[field], str) and prompt[field].strip(), field
    used = set(PLACEHOLDER.findall(prompt["system"] + prompt["user"]))
    assert used <= ALLOWED[key], used - ALLOWED[key]
    # The user template carries the data: every name the step fills in appears there.
    assert set(PLACEHOLDER.findall(prompt["user"])) == ALLOWED[key]
    # No stray braces that look like a placeholder but are not one.
    assert "{{" not in PLACEHOLDER.sub("", prompt["system"] + prompt["user"])
    assert 150 <= len(prompt["system"].split()) <= 350
    assert "JSON object only" in prompt["system"]


@pytest.mark.parametrize("key", ["chart_daily", "chart_weekly", "consolidate", "decide"])
def test_prompts_ask_for_numbers_only(key):
    system = PROMPT_DEFAULTS[key]["system"]
    assert "JSON number" in system
    assert "never text" in system and "range" in system


def test_decide_prompt_prefers_hold_and_leaves_r_to_the_system():
    system = PROMPT_DEFAULTS["decide"]["system"]
    assert "HOLD" in system
    assert "computes the reward/risk" in system
    assert "Stop-loss beyond a real support level" in system


def test_chart_prompts_differ_by_timeframe():
    assert "weekly" in PROMPT_DEFAULTS["chart_weekly"]["system"].lower()
    assert "timing" in PROMPT_DEFAULTS["chart_daily"]["system"].lower()
    assert PROMPT_DEFAULTS["chart_daily"]["system"] != PROMPT_DEFAULTS["chart_weekly"]["system"]
    for key in ("chart_daily", "chart_weekly"):
        system = PROMPT_DEFAULTS[key]["system"]
        for term in ("SMA 200", "Bollinger", "MACD", "RSI", "SuperTrend", "OBV", "20-bar average"):
            assert term in system, (key, term)
