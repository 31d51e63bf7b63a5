"""The `strategies.render_chart` step type: a price chart with indicators, as PNG and plotly JSON."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from brokers.marketdata.bars import bars_load, iso_date
from strategies.charts import render as charts
from strategies.charts.render import Overlay, Panel
from strategies.indicators.compute import (
    compute,
    indicators_load,
)
from workflows.artifacts.store import artifact_put
from workflows.errors import StepError
from workflows.registry import Port, StepType, register

if TYPE_CHECKING:
    from workflows.engine import StepContext


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
