"""Market data step types: fetch bars from a source, resample them to a coarser bar."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from brokers.adapters.registry import source_choice, source_name, source_queue, source_schema
from brokers.marketdata.bar_sizes import Bar
from brokers.marketdata.bars import PERIOD_PATTERN, MarketDataSource, bars_load, bars_ref, market_source, resample
from workflows.registry import Port, StepType, register

if TYPE_CHECKING:
    from workflows.engine import StepContext

BARS_PORT = Port("bars", "bars", "OHLCV bars stored as a CSV artifact")


def _span(ref: dict[str, Any]) -> str:
    return f"{ref['rows']} {ref['symbol']} {ref['bar']} bars, {ref['first']} .. {ref['last']}"


class FetchBarsParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    symbol: str = Field(min_length=1, description="Ticker, usually {{symbol}} (the run's symbol)")
    period: str = Field(
        "1y",
        pattern=PERIOD_PATTERN,
        description="How far back from the last bar, in calendar time: 30d, 2w, 6m, 1y, 5y or max",
    )
    bar: Bar = Field("1d", description="Bar size; intraday bars are in New York time")
    # The registered sources (brokers/adapters/*/kind.py): the editor offers them as a choice.
    source: Annotated[str, AfterValidator(source_choice)] = Field("default", json_schema_extra=source_schema)
    end: date | None = Field(None, description="Last date to include; empty means the latest available bar")


@register
class FetchBars(StepType):
    name = "market.fetch_bars"
    label = "Fetch bars"
    category = "data"
    description = (
        "Loads OHLCV bars for a symbol from a market data source over a period counted back from the "
        "end date (or the latest bar). Bundled data is real but covers fixed date ranges; splits are adjusted."
    )
    Params = FetchBarsParams
    outputs = (BARS_PORT,)
    queue = "default"
    time_limit = 60
    idempotent = True
    tags = frozenset({"data_source"})

    @classmethod
    def queue_for(cls, params: dict[str, Any]) -> str:
        # IBKR requests go to the one ibkr worker process (DESIGN §5): one connection with its
        # own clientId, and one pacing limiter for IB's historical-data rules.
        return source_queue(params.get("source", "default"), cls.queue)

    def run(self, ctx: StepContext, inputs: dict[str, Any], params: FetchBarsParams) -> dict[str, Any]:
        source = source_name(params.source)
        # The owner's id: a source of private data (uploads) reads only the run owner's.
        data_source: MarketDataSource = market_source(source, owner_id=ctx.owner_id)
        df = data_source.bars(symbol=params.symbol, bar=params.bar, period=params.period, end=params.end)
        ref = bars_ref(df, symbol=params.symbol.strip().upper(), bar=params.bar, source=source)
        ctx.log(f"Fetched {_span(ref)} ({params.period} from {source})")
        # A source may say more about the bars it served (an upload's splits and split warnings).
        for level, note in getattr(data_source, "notes", ()):
            ctx.log(note, level=level)
        return {"bars": ref}


class ResampleParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to: Bar = Field(description="Target bar size; must be coarser than the input bars")


@register
class Resample(StepType):
    name = "market.resample"
    label = "Resample bars"
    category = "data"
    description = (
        "Aggregates bars to a coarser bar size (e.g. 1m to 1h, 1d to 1w). Intraday bars never span two "
        "sessions and start at the session open; weekly bars are labelled with the week's first session."
    )
    Params = ResampleParams
    inputs = (BARS_PORT,)
    outputs = (BARS_PORT,)
    queue = "default"
    time_limit = 60
    idempotent = True

    def run(self, ctx: StepContext, inputs: dict[str, Any], params: ResampleParams) -> dict[str, Any]:
        source_ref = inputs["bars"]
        df = bars_load(source_ref)
        source_bar = source_ref.get("bar", "")
        out = resample(df, source_bar=source_bar, to=params.to)
        ref = bars_ref(out, symbol=source_ref.get("symbol", ""), bar=params.to, source=source_ref.get("source", ""))
        ctx.log(f"Resampled {len(df)} {source_bar} bars to {_span(ref)}")
        return {"bars": ref}
