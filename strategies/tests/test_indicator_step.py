"""The strategies.indicators step type, run directly with a StepContext on fetched bars."""

import json

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from brokers.marketdata.bars import bars_load
from brokers.marketdata.steps import FetchBars
from strategies.indicators.compute import INDICATOR_NAMES, compute, indicators_load
from strategies.indicators.steps import Indicators
from workflows.engine import StepContext
from workflows.registry import registry

ALL_COLUMNS = [
    "sma_20",
    "sma_50",
    "sma_200",
    "ema_20",
    "rsi_14",
    "macd",
    "macd_signal",
    "macd_hist",
    "bb_upper",
    "bb_middle",
    "bb_lower",
    "atr_14",
    "supertrend",
    "supertrend_dir",
    "obv",
    "volume_avg_20",
]


@pytest.fixture
def ctx():
    return StepContext(
        run_id=0, step_run_id=0, node_id="n", symbol="AAPL", run_params={}, attempt=1, idempotency_key="k"
    )


def fetch(ctx, **params) -> dict:
    return FetchBars().run(ctx, {}, FetchBars.Params.model_validate(params))["bars"]


def run(ctx, bars: dict, **params) -> dict:
    return Indicators().run(ctx, {"bars": bars}, Indicators.Params.model_validate(params))


def test_step_type_is_registered_with_its_ports():
    step_type = registry.get("strategies.indicators")
    assert step_type is Indicators
    assert step_type.category == "analysis"
    assert [(p.name, p.type) for p in step_type.inputs] == [("bars", "bars")]
    assert [(p.name, p.type) for p in step_type.outputs] == [("bars", "bars"), ("latest", "indicators")]
    schema = step_type.describe()["params_schema"]
    prop = schema["properties"]["indicators"]
    assert prop["default"] == list(INDICATOR_NAMES)
    assert prop["items"]["enum"] == list(INDICATOR_NAMES)
    assert prop["description"]
    assert step_type.description


def test_params_refuse_unknown_names_and_fields():
    with pytest.raises(ValidationError):
        Indicators.Params.model_validate({"indicators": ["sma_21"]})
    with pytest.raises(ValidationError):
        Indicators.Params.model_validate({"indicators": []})
    with pytest.raises(ValidationError):
        Indicators.Params.model_validate({"window": 20})
    assert Indicators.Params().indicators == list(INDICATOR_NAMES)


def test_indicators_on_fetched_bars(ctx, settings, tmp_path):
    bars = fetch(ctx, symbol="AAPL", period="2y", end="2012-12-31")
    outputs = run(ctx, bars)
    json.dumps(outputs)  # outputs are stored as JSON

    ref = outputs["bars"]
    assert ref["artifact"].startswith("indicators/")
    assert (settings.ARTIFACTS_DIR / ref["artifact"]).is_file()
    for key in ("symbol", "bar", "rows", "first", "last", "source"):
        assert ref[key] == bars[key]
    assert ref["indicators"] == list(INDICATOR_NAMES)
    assert ref["columns"] == ALL_COLUMNS

    loaded = indicators_load(ref)
    source = bars_load(bars)
    assert list(loaded.columns) == ["open", "high", "low", "close", "volume", *ALL_COLUMNS]
    # The CSV round trip keeps every value exactly.
    pd.testing.assert_frame_equal(loaded, compute(source, list(INDICATOR_NAMES)))
    # A bars consumer reads the OHLCV part of the same artifact.
    pd.testing.assert_frame_equal(bars_load(ref), source)

    latest = outputs["latest"]
    assert set(latest) == {"symbol", "bar", "timestamp", "close", "values"}
    assert (latest["symbol"], latest["bar"], latest["timestamp"]) == ("AAPL", "1d", "2012-12-31")
    assert latest["close"] == round(source["close"].iloc[-1], 4)
    assert list(latest["values"]) == ALL_COLUMNS
    last = loaded.iloc[-1]
    for column, value in latest["values"].items():
        assert value is not None
        assert value == pytest.approx(last[column], abs=1e-4), column
    assert latest["values"]["supertrend_dir"] in (1, -1)
    assert ctx.logs[-1]["message"].startswith("Computed sma_20, sma_50")


def test_a_subset_and_too_few_bars(ctx):
    bars = fetch(ctx, symbol="SPY", period="3m", end="2020-06-30")
    outputs = run(ctx, bars, indicators=["sma_200", "rsi_14"])
    assert outputs["bars"]["columns"] == ["sma_200", "rsi_14"]
    loaded = indicators_load(outputs["bars"])
    assert list(loaded.columns[5:]) == ["sma_200", "rsi_14"]
    assert loaded["sma_200"].isna().all() and not np.isnan(loaded["rsi_14"].iloc[-1])
    values = outputs["latest"]["values"]
    assert values["sma_200"] is None and 0 <= values["rsi_14"] <= 100
    warnings = [line["message"] for line in ctx.logs if line["level"] == "warning"]
    assert warnings == [f"sma_200 needs 200 bars and got {bars['rows']}: it is empty"]


def test_intraday_bars_keep_their_timestamps(ctx):
    bars = fetch(ctx, symbol="MSFT", period="30d", bar="1h", end="2016-05-13")
    outputs = run(ctx, bars, indicators=["ema_20"])
    loaded = indicators_load(outputs["bars"])
    assert loaded.index.equals(bars_load(bars).index)
    assert str(loaded.index.tz) == "America/New_York"
    assert outputs["latest"]["timestamp"] == bars["last"]


def test_indicators_load_reads_a_plain_bars_reference(ctx):
    bars = fetch(ctx, symbol="IBM", period="6m", end="2010-12-31")
    pd.testing.assert_frame_equal(indicators_load(bars), bars_load(bars))
