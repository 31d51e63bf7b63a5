"""Charts: the figure definition, PNG export through the persistent browser, the render step."""

import itertools
import os
import signal
import struct
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from brokers.marketdata.bars import BundledSource, bars_ref
from strategies.charts import render as charts
from workflows.artifacts.store import artifact_get
from workflows.errors import StepError
from workflows.tests.s3 import use_minio

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
ALL_OVERLAYS = ["sma_20", "sma_50", "sma_200", "ema_20", "bollinger", "supertrend"]
ALL_PANELS = ["volume", "macd", "rsi"]


def add_indicators(df: pd.DataFrame) -> pd.DataFrame:
    """The indicator columns a chart needs, by small textbook formulas (the real ones live in
    strategies.indicators; these only have to look like indicators on a chart)."""
    df = df.copy()
    close = df["close"]
    for n in (20, 50, 200):
        df[f"sma_{n}"] = close.rolling(n).mean()
    df["ema_20"] = close.ewm(span=20, adjust=False).mean()
    sd = close.rolling(20).std(ddof=0)
    df["bb_middle"] = df["sma_20"]
    df["bb_upper"] = df["sma_20"] + 2 * sd
    df["bb_lower"] = df["sma_20"] - 2 * sd
    macd = close.ewm(span=12, adjust=False).mean() - close.ewm(span=26, adjust=False).mean()
    df["macd"] = macd
    df["macd_signal"] = macd.ewm(span=9, adjust=False).mean()
    df["macd_hist"] = macd - df["macd_signal"]
    delta = close.diff()
    gain = delta.clip(lower=0).ewm(alpha=1 / 14, adjust=False).mean()
    loss = (-delta.clip(upper=0)).ewm(alpha=1 / 14, adjust=False).mean()
    df["rsi_14"] = 100 - 100 / (1 + gain / loss)
    prev = close.shift()
    tr = pd.concat([df["high"] - df["low"], (df["high"] - prev).abs(), (df["low"] - prev).abs()], axis=1).max(axis=1)
    atr = tr.ewm(alpha=1 / 10, adjust=False).mean()
    mid = (df["high"] + df["low"]) / 2
    direction = np.where(close > mid.rolling(10).mean(), 1, -1)
    df["supertrend"] = np.where(direction > 0, mid - 3 * atr, mid + 3 * atr)
    df["supertrend_dir"] = direction
    df["volume_avg_20"] = df["volume"].rolling(20).mean()
    return df


def png_size(png: bytes) -> tuple[int, int]:
    assert png[:8] == PNG_MAGIC
    assert png[12:16] == b"IHDR"
    return struct.unpack(">II", png[16:24])


@pytest.fixture(autouse=True)
def _market_data(settings):
    # The real bundled files (the project's default MARKET_DATA_DIR may be a copy or a link).
    shared = Path(__file__).resolve().parents[3] / "shared" / "data" / "market"
    if not (Path(settings.MARKET_DATA_DIR) / "AAPL-1d-2019-2024.csv").exists() and shared.exists():
        settings.MARKET_DATA_DIR = shared


@pytest.fixture
def daily():
    return add_indicators(BundledSource().bars(symbol="AAPL", bar="1d", period="2y")).iloc[-250:]


@pytest.fixture
def fresh_renderer():
    renderer = charts.ChromiumRenderer()
    yield renderer
    renderer.close()


# The figure definition


def test_figure_has_candles_overlays_panels_and_title(daily):
    fig = charts.figure(daily, symbol="AAPL", bar="1d", overlays=ALL_OVERLAYS, panels=ALL_PANELS)
    names = [t["name"] for t in fig["data"]]
    kinds = [t["type"] for t in fig["data"]]
    assert kinds[0] == "candlestick" and len(fig["data"][0]["x"]) == 250
    for expected in ("SMA 20", "SMA 50", "SMA 200", "EMA 20", "Bollinger 20, 2", "SuperTrend 10, 3 up", "Volume"):
        assert expected in names
    assert {"MACD", "Signal", "MACD histogram", "RSI 14"} <= set(names)
    layout = fig["layout"]
    # Price, volume, MACD, RSI: four stacked y axes on the right, price on top, no overlap.
    axes = [layout[k] for k in ("yaxis", "yaxis2", "yaxis3", "yaxis4")]
    assert all(a["side"] == "right" for a in axes)
    domains = [a["domain"] for a in axes]
    assert domains[0][1] == 1.0 and all(a[0] > b[1] for a, b in itertools.pairwise(domains))
    assert layout["yaxis4"]["range"] == [0, 100]
    assert sorted(s["y0"] for s in layout["shapes"] if s["yref"] == "y4") == [30, 50, 70]
    # Traces sit on their panel's axis.
    by_name = {t["name"]: t for t in fig["data"]}
    assert (
        by_name["Volume"]["yaxis"] == "y2" and by_name["MACD"]["yaxis"] == "y3" and by_name["RSI 14"]["yaxis"] == "y4"
    )
    # No gaps for weekends and holidays, no range slider, trading-tool size.
    assert layout["xaxis"]["type"] == "category" and layout["xaxis"]["rangeslider"] == {"visible": False}
    assert (layout["width"], layout["height"]) == (1280, 900)
    title = layout["title"]["text"]
    assert "AAPL" in title and "Daily" in title and f"{daily.index[-1]:%Y-%m-%d}" in title
    # Valid JSON for plotly.js: NaN (indicator warm-up) becomes null.
    assert b"NaN" not in charts.figure_json(fig)


def test_figure_without_panels_or_overlays(daily):
    fig = charts.figure(daily, symbol="MSFT", bar="1w", overlays=[], panels=[], title="My chart")
    assert [t["type"] for t in fig["data"]] == ["candlestick"]
    assert "yaxis2" not in fig["layout"] and fig["layout"]["yaxis"]["domain"] == [0.0, 1.0]
    assert "My chart" in fig["layout"]["title"]["text"] and "Weekly" in fig["layout"]["title"]["text"]


def test_figure_only_requested_panels(daily):
    fig = charts.figure(daily, symbol="AAPL", bar="1d", overlays=["sma_50"], panels=["rsi"])
    names = [t["name"] for t in fig["data"]]
    assert names == ["AAPL", "SMA 50", "RSI 14"]
    assert fig["layout"]["yaxis2"]["range"] == [0, 100] and "yaxis3" not in fig["layout"]


def test_figure_names_missing_indicator_columns():
    bars = BundledSource().bars(symbol="AAPL", bar="1d", period="1y")
    with pytest.raises(StepError, match="rsi_14"):
        charts.figure(bars, symbol="AAPL", bar="1d", overlays=[], panels=["rsi"])


def test_ticks_fall_on_month_starts(daily):
    fig = charts.figure(daily, symbol="AAPL", bar="1d", panels=["volume"])
    ticks = fig["layout"]["xaxis"]["tickvals"]
    assert 4 <= len(ticks) <= 12
    assert all(t in fig["data"][0]["x"] for t in ticks)


# PNG export


@pytest.mark.parametrize("symbol", ["AAPL", "MSFT"])
@pytest.mark.parametrize("bar", ["1d", "1w"])
def test_png_for_daily_and_weekly_bars(symbol, bar):
    period = "2y" if bar == "1d" else "6y"
    bars = add_indicators(BundledSource().bars(symbol=symbol, bar=bar, period=period)).iloc[-250:]
    fig = charts.figure(bars, symbol=symbol, bar=bar, overlays=["sma_20", "sma_50", "bollinger"], panels=ALL_PANELS)
    png = charts.render_png(fig, width=1280, height=900)
    assert png[:8] == PNG_MAGIC
    assert png_size(png) == (1280, 900)
    assert len(png) > 60_000  # a chart, not a blank page


def test_png_size_follows_the_request(daily):
    fig = charts.figure(daily, symbol="AAPL", bar="1d", panels=["volume"])
    assert png_size(charts.render_png(fig, width=800, height=500)) == (800, 500)


def test_renderer_restarts_after_its_browser_is_killed(daily, fresh_renderer):
    fig = charts.figure(daily, symbol="AAPL", bar="1d", panels=["volume"])
    fresh_renderer.render(fig, width=640, height=400)
    first = fresh_renderer.pid
    pids = fresh_renderer.pids()
    assert first is not None and len(pids) >= 2
    os.kill(first, signal.SIGKILL)
    deadline = time.monotonic() + 5
    stat = Path(f"/proc/{first}/stat")
    while stat.exists() and stat.read_text().split()[2] != "Z":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    png = fresh_renderer.render(fig, width=640, height=400)
    assert png_size(png) == (640, 400)
    assert fresh_renderer.pid not in (None, first) and fresh_renderer.starts == 2


def test_renderer_close_ends_every_browser_process(daily, fresh_renderer):
    fresh_renderer.render(charts.figure(daily, symbol="AAPL", bar="1d", panels=[]), width=400, height=300)
    pids = fresh_renderer.pids()
    fresh_renderer.close()
    deadline = time.monotonic() + 5
    while any(os.path.exists(f"/proc/{p}") for p in pids):
        assert time.monotonic() < deadline, "browser processes left behind"
        time.sleep(0.05)
    assert fresh_renderer.pid is None


def test_missing_browser_gives_a_clear_error(settings, daily):
    settings.BROWSER_PATH = "/nonexistent/chromium"
    renderer = charts.ChromiumRenderer()
    with pytest.raises(StepError, match=r"BROWSER_PATH.*/nonexistent/chromium"):
        renderer.render(charts.figure(daily, symbol="AAPL", bar="1d", panels=[]), width=400, height=300)
    assert renderer.pid is None


def test_no_browser_on_path_gives_a_clear_error(settings, monkeypatch):
    settings.BROWSER_PATH = ""
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(StepError, match="BROWSER_PATH"):
        charts.browser_path()


# The step


class _Ctx:
    symbol = "AAPL"

    def __init__(self):
        self.lines = []

    def log(self, message, *, level="info"):
        self.lines.append(message)

    def check_cancelled(self):
        pass


@pytest.mark.parametrize("store", ["filesystem", "minio"])
def test_render_chart_step_stores_png_and_figure(settings, s3_endpoint, store):
    from strategies.charts import steps as chart_steps

    if store == "minio":
        use_minio(settings, s3_endpoint)
    raw = BundledSource().bars(symbol="MSFT", bar="1w", period="8y")
    ref = bars_ref(raw, symbol="MSFT", bar="1w", source="bundled")
    step = chart_steps.RenderChart()
    params = step.Params(overlays=["sma_20", "bollinger"], panels=["volume", "rsi"], width=1000, height=700)
    out = step.run(_Ctx(), {"bars": ref}, params)["chart"]
    assert out["symbol"] == "MSFT" and out["bar"] == "1w" and out["last"] == ref["last"]
    assert (out["width"], out["height"]) == (1000, 700)
    assert out["png"].startswith("charts/") and out["png"].endswith(".png")
    assert out["figure"].startswith("figures/") and out["figure"].endswith(".json")
    assert png_size(artifact_get(key=out["png"])) == (1000, 700)
    import json

    fig = json.loads(artifact_get(key=out["figure"]))
    assert fig["data"][0]["type"] == "candlestick" and "MSFT" in fig["layout"]["title"]["text"]


def test_render_chart_step_reads_bars_with_indicators():
    from strategies.charts import steps as chart_steps
    from strategies.indicators import compute as indicators

    raw = BundledSource().bars(symbol="AAPL", bar="1d", period="2y")
    names = ["sma_20", "sma_200", "macd", "rsi_14", "supertrend", "volume_avg_20"]
    ref = indicators.indicators_ref(
        indicators.compute(raw, names), symbol="AAPL", bar="1d", source="bundled", names=names
    )
    step = chart_steps.RenderChart()
    params = step.Params(overlays=["sma_200", "supertrend"], panels=["volume", "macd", "rsi"], bars=120)
    out = step.run(_Ctx(), {"bars": ref}, params)["chart"]
    assert png_size(artifact_get(key=out["png"])) == (1280, 900)
    import json

    fig = json.loads(artifact_get(key=out["figure"]))
    assert len(fig["data"][0]["x"]) == 120
    # The 200-bar average was computed on the whole series, so it is drawn from the first bar shown.
    sma_200 = next(t for t in fig["data"] if t["name"] == "SMA 200")
    assert sma_200["y"][0] is not None


def test_render_chart_step_describes_itself():
    from strategies.charts.steps import RenderChart
    from workflows.registry import registry

    assert registry.get("strategies.render_chart") is RenderChart
    described = RenderChart.describe()
    assert described["queue"] == "charts" and described["time_limit"] == 120 and described["category"] == "analysis"
    assert [p["type"] for p in described["inputs"]] == ["bars"] and [p["type"] for p in described["outputs"]] == [
        "chart"
    ]
    with pytest.raises(ValueError):
        RenderChart.Params(width=10)
    with pytest.raises(ValueError):
        RenderChart.Params(panels=["volume", "stochastic"])


def test_a_users_title_is_text_not_markup():
    from strategies.charts.render import title_text

    text = title_text(symbol="AAPL", bar="1d", last="2024-12-30", close=1.0, title='<a href="x">hi</a>')
    assert "<a " not in text and "&lt;a href" in text
