"""Strategy step types: indicators over bars, and charts of them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from brokers.marketdata import bars_load, iso_date
from strategies import charts
from strategies.ai import steps as ai_steps  # noqa: F401 - registers the AI step types
from strategies.indicators import (
    INDICATOR_NAMES,
    INDICATORS,
    IndicatorName,
    compute,
    indicator_columns,
    indicators_load,
    indicators_ref,
    latest_values,
)
from workflows.artifacts import artifact_put
from workflows.errors import StepError
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


Overlay = Literal["sma_20", "sma_50", "sma_200", "ema_20", "bollinger", "supertrend"]
Panel = Literal["volume", "macd", "rsi"]


class RenderChartParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    overlays: list[Overlay] = Field(
        default_factory=lambda: ["sma_20", "sma_50", "bollinger"],
        description="Lines drawn over the candles: moving averages, Bollinger bands, SuperTrend",
    )
    panels: list[Panel] = Field(
        default_factory=lambda: ["volume", "macd", "rsi"],
        description="Panels under the price: volume, MACD (12, 26, 9), RSI 14 with its 30/70 levels",
    )
    bars: int = Field(250, ge=20, le=2000, description="How many of the latest bars to show")
    width: int = Field(charts.DEFAULT_WIDTH, ge=400, le=2400, description="Image width in pixels")
    height: int = Field(charts.DEFAULT_HEIGHT, ge=300, le=2000, description="Image height in pixels")
    title: str | None = Field(None, max_length=120, description="Title instead of the symbol (optional)")


def _load(ref: Any) -> pd.DataFrame:
    return indicators_load(ref) if isinstance(ref, dict) and ref.get("indicators") else bars_load(ref)


# The strategies.indicators name computing what each overlay or panel draws.
_INDICATOR_OF = {"rsi": "rsi_14", "volume": "volume_avg_20"}


def _with_indicators(df: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """`df` with the columns the chosen overlays and panels need, computing the missing ones."""
    missing = [name for name in names if any(c not in df.columns for c in charts.COLUMNS[name])]
    if "volume" in names and "volume_avg_20" not in df.columns:
        missing.append("volume")  # its average line is drawn when available
    if not missing:
        return df
    return compute(df, sorted({_INDICATOR_OF.get(name, name) for name in missing}))


@register
class RenderChart(StepType):
    name = "strategies.render_chart"
    label = "Render chart"
    category = "analysis"
    description = (
        "Draws a candlestick chart with the chosen overlays and panels (volume, MACD, RSI) and stores it "
        "as a PNG (for people and vision models) and as plotly figure JSON (interactive on the run page)."
    )
    Params = RenderChartParams
    inputs = (Port("bars", "bars", "OHLCV bars, with indicator columns when they come from strategies.indicators"),)
    outputs = (Port("chart", "chart", "PNG and figure JSON artifact keys with the chart's symbol, bar and last bar"),)
    queue = "charts"
    time_limit = 120
    idempotent = True

    def run(self, ctx: StepContext, inputs: dict[str, Any], params: RenderChartParams) -> dict[str, Any]:
        ref = inputs["bars"]
        df = _load(ref)
        if df.empty:
            raise StepError("No bars to chart")
        # Indicators over the whole series (a 200-bar SMA needs its history), then the window.
        df = _with_indicators(df, [*params.overlays, *params.panels]).iloc[-params.bars :]
        symbol = str(ref.get("symbol") or ctx.symbol)
        bar = str(ref.get("bar") or "")
        fig = charts.figure(
            df,
            symbol=symbol,
            bar=bar,
            overlays=params.overlays,
            panels=params.panels,
            width=params.width,
            height=params.height,
            title=params.title,
        )
        ctx.check_cancelled()
        png = charts.render_png(fig, width=params.width, height=params.height)
        chart = {
            "png": artifact_put(data=png, kind="charts", ext="png"),
            "figure": artifact_put(data=charts.figure_json(fig), kind="figures", ext="json"),
            "width": params.width,
            "height": params.height,
            "symbol": symbol,
            "bar": bar,
            "last": iso_date(df.index[-1]),
            # What it was drawn from, so an analyst can read the same bars and indicators.
            "bars": ref,
        }
        ctx.log(f"Charted {len(df)} {symbol} {bar} bars up to {chart['last']} ({len(png) // 1024} kB PNG)")
        return {"chart": chart}
