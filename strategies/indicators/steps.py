"""The `strategies.indicators` step type: technical indicators over fetched bars."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from brokers.marketdata.bars import bars_load
from strategies.indicators.compute import (
    INDICATOR_NAMES,
    INDICATORS,
    IndicatorName,
    compute,
    indicator_columns,
    indicators_ref,
    latest_values,
)
from workflows.registry import Port, StepType, register

if TYPE_CHECKING:
    from workflows.engine import StepContext


class IndicatorsParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    indicators: list[IndicatorName] = Field(
        list(INDICATOR_NAMES),
        min_length=1,
        description=(
            "Indicators to add as columns: sma_20/50/200, ema_20, rsi_14 (Wilder), macd (12/26/9: macd, "
            "macd_signal, macd_hist), bollinger (20/2: bb_upper, bb_middle, bb_lower), atr_14, "
            "supertrend (10/3: supertrend, supertrend_dir +1 up / -1 down), obv, volume_avg_20"
        ),
    )


@register
class Indicators(StepType):
    name = "strategies.indicators"
    label = "Indicators"
    category = "analysis"
    description = (
        "Adds technical indicators to bars (moving averages, RSI, MACD, Bollinger bands, ATR, SuperTrend, OBV, "
        "volume average), computed like TA-Lib. Outputs the bars with the indicator columns, for charts, and "
        "the last bar's values, for decisions. Early bars an indicator cannot cover yet are left empty."
    )
    Params = IndicatorsParams
    inputs = (Port("bars", "bars", "OHLCV bars"),)
    outputs = (
        Port("bars", "bars", "The bars with one column per indicator value, as a CSV artifact"),
        Port("latest", "indicators", "The last bar's value of every indicator column (null if not computable)"),
    )
    queue = "default"
    time_limit = 60
    idempotent = True

    def run(self, ctx: StepContext, inputs: dict[str, Any], params: IndicatorsParams) -> dict[str, Any]:
        source_ref = inputs["bars"]
        df = bars_load(source_ref)
        names = list(dict.fromkeys(params.indicators))
        for name in names:
            needed = INDICATORS[name].warmup + 1
            if len(df) < needed:
                ctx.log(f"{name} needs {needed} bars and got {len(df)}: it is empty", level="warning")
        out = compute(df, names)
        ref = indicators_ref(
            out,
            symbol=source_ref.get("symbol", ""),
            bar=source_ref.get("bar", ""),
            source=source_ref.get("source", ""),
            names=names,
        )
        columns = indicator_columns(names)
        latest = {
            "symbol": ref["symbol"],
            "bar": ref["bar"],
            "timestamp": ref["last"],
            "close": None if out.empty else round(float(out["close"].iloc[-1]), 4),
            "values": latest_values(out, columns),
        }
        ctx.log(f"Computed {', '.join(ref['indicators'])} over {len(df)} {ref['symbol']} {ref['bar']} bars")
        return {"bars": ref, "latest": latest}
