"""The market data step types, run directly with a StepContext (no engine, no database)."""

from datetime import date

import pandas as pd
import pytest
from pydantic import ValidationError

from brokers.marketdata.bars import BundledSource, bars_load
from brokers.marketdata.steps import FetchBars, Resample
from workflows.engine import StepContext
from workflows.errors import StepError
from workflows.registry import registry


@pytest.fixture(autouse=True)
def _artifacts_dir(settings, tmp_path):
    settings.ARTIFACTS_DIR = tmp_path / "artifacts"


@pytest.fixture
def ctx():
    return StepContext(
        run_id=0, step_run_id=0, node_id="n", symbol="AAPL", run_params={}, attempt=1, idempotency_key="k"
    )


def fetch(ctx, **params):
    return FetchBars().run(ctx, {}, FetchBars.Params.model_validate(params))


def test_step_types_are_registered_with_their_ports():
    fetch_type = registry.get("market.fetch_bars")
    resample_type = registry.get("market.resample")
    assert fetch_type is FetchBars and resample_type is Resample
    assert fetch_type.tags == frozenset({"data_source"})
    assert fetch_type.inputs == ()
    assert [(p.name, p.type) for p in fetch_type.outputs] == [("bars", "bars")]
    assert [(p.name, p.type) for p in resample_type.inputs] == [("bars", "bars")]
    assert [(p.name, p.type) for p in resample_type.outputs] == [("bars", "bars")]
    for step_type in (fetch_type, resample_type):
        described = step_type.describe()
        assert described["category"] == "data"
        assert described["idempotent"] is True
        assert described["queue"] == "default"
        assert described["description"]
    schema = fetch_type.describe()["params_schema"]
    assert schema["required"] == ["symbol"]
    assert schema["properties"]["bar"]["enum"] == ["1m", "5m", "15m", "1h", "1d", "1w"]


def test_fetch_bars_outputs_a_reference_that_loads_back(ctx):
    outputs = fetch(ctx, symbol="aapl", period="6m", end="2012-12-31")
    ref = outputs["bars"]
    assert set(ref) == {"artifact", "symbol", "bar", "rows", "first", "last", "source"}
    assert (ref["symbol"], ref["bar"], ref["source"]) == ("AAPL", "1d", "bundled")
    expected = BundledSource().bars(symbol="AAPL", bar="1d", period="6m", end=date(2012, 12, 31))
    loaded = bars_load(ref)
    pd.testing.assert_frame_equal(loaded, expected)
    assert ref["rows"] == len(loaded)
    assert ref["first"] == f"{expected.index[0]:%Y-%m-%d}"
    assert ref["last"] == "2012-12-31"
    assert any(f"{ref['rows']} AAPL 1d bars" in line["message"] for line in ctx.logs)


def test_resample_step_turns_minutes_into_hours(ctx):
    minutes = fetch(ctx, symbol="MSFT", period="max", bar="1m")["bars"]
    assert minutes["rows"] == 8211
    outputs = Resample().run(ctx, {"bars": minutes}, Resample.Params(to="1h"))
    ref = outputs["bars"]
    assert (ref["symbol"], ref["bar"], ref["rows"]) == ("MSFT", "1h", 21 * 7)
    assert ref["first"] == "2016-04-15T09:30:00-04:00"
    hours = bars_load(ref)
    assert hours["volume"].sum() == bars_load(minutes)["volume"].sum()
    assert any("Resampled 8211 1m bars to 147 MSFT 1h bars" in line["message"] for line in ctx.logs)


def test_resample_step_daily_to_weekly(ctx):
    daily = fetch(ctx, symbol="SPY", period="1y")["bars"]
    weekly = bars_load(Resample().run(ctx, {"bars": daily}, Resample.Params(to="1w"))["bars"])
    assert bars_load(daily)["high"].max() == weekly["high"].max()
    assert len(weekly) in (52, 53)


def test_resample_step_refuses_a_finer_bar(ctx):
    daily = fetch(ctx, symbol="IBM", period="30d")["bars"]
    with pytest.raises(StepError, match="Cannot resample 1d bars to 1h"):
        Resample().run(ctx, {"bars": daily}, Resample.Params(to="1h"))


def test_fetch_errors_reach_the_user(ctx):
    with pytest.raises(StepError, match='"NOPE"'):
        fetch(ctx, symbol="NOPE")


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({}, "symbol"),
        ({"symbol": ""}, "symbol"),
        ({"symbol": "AAPL", "period": "1 year"}, "period"),
        ({"symbol": "AAPL", "bar": "2h"}, "bar"),
        ({"symbol": "AAPL", "source": "yahoo"}, "source"),
        ({"symbol": "AAPL", "end": "yesterday"}, "end"),
        ({"symbol": "AAPL", "colour": "red"}, "colour"),
    ],
)
def test_fetch_params_are_validated(params, field):
    with pytest.raises(ValidationError) as exc:
        FetchBars.Params.model_validate(params)
    assert [e["loc"][0] for e in exc.value.errors()] == [field]


def test_fetch_params_defaults():
    params = FetchBars.Params.model_validate({"symbol": "SPY"})
    assert (params.period, params.bar, params.source, params.end) == ("1y", "1d", "default", None)


def test_resample_params_require_a_known_bar():
    with pytest.raises(ValidationError):
        Resample.Params.model_validate({"to": "1mo"})
    with pytest.raises(ValidationError):
        Resample.Params.model_validate({})


def test_ibkr_fetches_go_to_the_ibkr_queue(settings):
    from brokers.marketdata.steps import FetchBars

    assert FetchBars.queue_for({"source": "bundled"}) == "default"
    assert FetchBars.queue_for({"source": "ibkr"}) == "ibkr"
    settings.MARKET_DATA_SOURCE = "ibkr"
    assert FetchBars.queue_for({}) == "ibkr"
    assert FetchBars.queue_for({"source": "default"}) == "ibkr"
