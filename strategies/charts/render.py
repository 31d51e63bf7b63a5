"""Price charts: one Plotly figure definition, exported to PNG by a persistent headless Chromium.

`figure(df, ...)` builds the figure as plain dicts (no plotly.graph_objects: building is cheap
and the same JSON is what the run page hands to plotly.js). `render_png(fig, ...)` turns it into
a PNG through `ChromiumRenderer`: one Chromium per worker process, started on first use from the
OS (`BROWSER_PATH`, else `chromium` on PATH; never downloaded), with plotly.js loaded once into
one page and `Plotly.toImage` called per chart over the DevTools protocol on a pipe. Measured in
bench/charts.py against kaleido 1.x, which reloads its tab after every image: see
docs/performance.md.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import html
import json
import math
import os
import select
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
import pandas as pd

from brokers.marketdata.bar_sizes import SESSION_BARS
from workflows.errors import StepError

# What a chart may show; the step's Params and the figure share these names.
# What a chart can draw: lines over the candles, and panels under them (the step form offers these).
Overlay = Literal["sma_20", "sma_50", "sma_200", "ema_20", "bollinger", "supertrend"]
Panel = Literal["volume", "macd", "rsi"]
OVERLAYS: tuple[str, ...] = get_args(Overlay)
PANELS: tuple[str, ...] = get_args(Panel)
# Indicator columns each overlay/panel needs (the strategies.indicators contract).
COLUMNS: dict[str, tuple[str, ...]] = {
    "sma_20": ("sma_20",),
    "sma_50": ("sma_50",),
    "sma_200": ("sma_200",),
    "ema_20": ("ema_20",),
    "bollinger": ("bb_upper", "bb_middle", "bb_lower"),
    "supertrend": ("supertrend", "supertrend_dir"),
    "volume": (),
    "macd": ("macd", "macd_signal", "macd_hist"),
    "rsi": ("rsi_14",),
}
BAR_LABELS = {"1m": "1-minute", "5m": "5-minute", "15m": "15-minute", "1h": "Hourly", "1d": "Daily", "1w": "Weekly"}
DEFAULT_WIDTH, DEFAULT_HEIGHT = 1280, 900

# A light theme close to trading tools: white, faint grid, teal/red candles, axis on the right.
FONT = "Liberation Sans, Arial, Helvetica, DejaVu Sans, sans-serif"
UP, DOWN = "#089981", "#f23645"
UP_FADED, DOWN_FADED = "rgba(8,153,129,0.45)", "rgba(242,54,69,0.45)"
GRID, AXIS_LINE, TEXT, MUTED = "#e9ecf1", "#b8bec9", "#1f2430", "#6b7280"
LINE_COLORS = {
    "sma_20": "#f59e0b",
    "sma_50": "#2563eb",
    "sma_200": "#7c3aed",
    "ema_20": "#0891b2",
    "bollinger": "#64748b",
    "macd": "#2563eb",
    "macd_signal": "#f59e0b",
    "rsi": "#7c3aed",
    "volume_avg": "#475569",
}
LABELS = {"sma_20": "SMA 20", "sma_50": "SMA 50", "sma_200": "SMA 200", "ema_20": "EMA 20"}
# Relative heights of the panels under the price panel.
PANEL_WEIGHT = {"volume": 0.16, "macd": 0.2, "rsi": 0.18}
PANEL_TITLES = {"volume": "Volume", "macd": "MACD 12, 26, 9", "rsi": "RSI 14"}
PANEL_GAP = 0.025


def _values(series: pd.Series, digits: int = 4) -> list[float | None]:
    """Floats rounded for a compact JSON, NaN as null (plotly draws a gap)."""
    a = np.round(series.to_numpy(dtype=float), digits)
    return [None if math.isnan(v) else v for v in a.tolist()]


def _labels(index: pd.DatetimeIndex, bar: str) -> list[str]:
    if bar in SESSION_BARS or (index.tz is None and bool((index == index.normalize()).all())):
        return [f"{ts:%Y-%m-%d}" for ts in index]
    return [f"{ts:%Y-%m-%d %H:%M}" for ts in index]


def _ticks(index: pd.DatetimeIndex, labels: list[str], bar: str, *, target: int = 10) -> tuple[list[str], list[str]]:
    """Tick positions at calendar boundaries (session, month, quarter, year), thinned to ~target."""
    if len(index) == 0:
        return [], []
    if bar in SESSION_BARS:
        span_days = (index[-1] - index[0]).days
        if span_days > 365 * 4:
            key, fmt = index.year, "%Y"
        elif span_days > 365 * 1.5:
            key, fmt = index.year * 4 + (index.month - 1) // 3, "%b %Y"
        elif span_days > 62:
            key, fmt = index.year * 12 + index.month, "%b %Y"
        else:
            key, fmt = index.year * 400 + index.dayofyear, "%b %d"
    else:
        dates = index.normalize()
        if dates.nunique() > 1:
            key, fmt = dates.asi8, "%b %d"
        else:
            key, fmt = index.hour, "%H:%M"
    key = np.asarray(key)
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    if len(starts) > 1 and starts[0] == 0 and starts[1] < len(index) * 0.03:
        starts = starts[1:]  # a partial first period would crowd the second label
    step = max(1, math.ceil(len(starts) / target))
    starts = starts[::step]
    return [labels[i] for i in starts], [f"{index[i]:{fmt}}" for i in starts]


def _require(df: pd.DataFrame, names: list[str]) -> None:
    missing = [c for name in names for c in COLUMNS[name] if c not in df.columns]
    if missing:
        raise StepError(f"The bars have no indicator column(s) {', '.join(missing)} needed by the chart")


def _line(x: list[str], y: pd.Series, name: str, color: str, yaxis: str = "y", **extra: Any) -> dict[str, Any]:
    trace = {
        "type": "scatter",
        "mode": "lines",
        "x": x,
        "y": _values(y),
        "name": name,
        "line": {"color": color, "width": 1.6},
        "xaxis": "x",
        "yaxis": yaxis,
        "hovertemplate": "%{y:.2f}",
    }
    trace.update(extra)
    return trace


def title_text(*, symbol: str, bar: str, last: str, close: float | None, title: str | None = None) -> str:
    # Plotly reads a subset of HTML in titles: a user's title is text, never markup.
    head = html.escape(title or symbol)
    parts = [f"<b>{head}</b>", BAR_LABELS.get(bar, bar), f"last bar {last}"]
    if close is not None and not math.isnan(close):
        parts.append(f"close {close:,.2f}")
    return "  ·  ".join(parts)


def figure(
    df: pd.DataFrame,
    *,
    symbol: str,
    bar: str,
    overlays: list[str] | tuple[str, ...] = (),
    panels: list[str] | tuple[str, ...] = ("volume",),
    width: int = DEFAULT_WIDTH,
    height: int = DEFAULT_HEIGHT,
    title: str | None = None,
) -> dict[str, Any]:
    """A candlestick chart as a plotly figure dict: {"data": [...], "layout": {...}}.

    `df`: OHLCV columns (open, high, low, close, volume) plus the indicator columns the chosen
    overlays and panels need, on a DatetimeIndex. Non-trading gaps never show: the x axis is a
    category axis of the bars' own timestamps, with ticks at calendar boundaries."""
    overlays = [o for o in OVERLAYS if o in overlays]
    panels = [p for p in PANELS if p in panels]
    unknown = sorted(set(overlays).difference(OVERLAYS) | set(panels).difference(PANELS))
    if unknown:
        raise StepError(f"Unknown chart overlay or panel: {', '.join(unknown)}")
    _require(df, [*overlays, *panels])
    if df.empty:
        raise StepError(f"No {symbol} bars to chart")

    index = pd.DatetimeIndex(df.index)
    x = _labels(index, bar)
    last = x[-1]
    data: list[dict[str, Any]] = []

    # Domains, top to bottom: price first, then each panel.
    weights = [PANEL_WEIGHT[p] for p in panels]
    price_weight = 1.0 - sum(weights)
    gaps = PANEL_GAP * len(panels)
    scale = (1.0 - gaps) / (price_weight + sum(weights))
    top = 1.0
    domains: list[tuple[float, float]] = []
    for w in [price_weight, *weights]:
        bottom = max(0.0, top - w * scale)
        domains.append((round(bottom, 4), round(top, 4)))
        top = bottom - PANEL_GAP
    axis_of = {"price": "y"} | {p: f"y{i + 2}" for i, p in enumerate(panels)}

    data.append(
        {
            "type": "candlestick",
            "x": x,
            "open": _values(df["open"]),
            "high": _values(df["high"]),
            "low": _values(df["low"]),
            "close": _values(df["close"]),
            "name": symbol,
            "showlegend": False,
            "increasing": {"line": {"color": UP, "width": 1}, "fillcolor": UP},
            "decreasing": {"line": {"color": DOWN, "width": 1}, "fillcolor": DOWN},
            "whiskerwidth": 0,
            "xaxis": "x",
            "yaxis": "y",
        }
    )
    if "bollinger" in overlays:
        color = LINE_COLORS["bollinger"]
        band = {"color": color, "width": 1}
        data.append(_line(x, df["bb_upper"], "Bollinger 20, 2", color, line=band, legendgroup="bb"))
        data.append(
            _line(
                x,
                df["bb_lower"],
                "Bollinger lower",
                color,
                line=band,
                legendgroup="bb",
                showlegend=False,
                fill="tonexty",
                fillcolor="rgba(100,116,139,0.08)",
            )
        )
        data.append(
            _line(
                x,
                df["bb_middle"],
                "Bollinger middle",
                color,
                line={"color": color, "width": 1, "dash": "dot"},
                legendgroup="bb",
                showlegend=False,
            )
        )
    for name in ("sma_20", "sma_50", "sma_200", "ema_20"):
        if name in overlays:
            data.append(_line(x, df[name], LABELS[name], LINE_COLORS[name]))
    if "supertrend" in overlays:
        up = df["supertrend_dir"] > 0
        for label, mask, color in (("SuperTrend 10, 3 up", up, UP), ("SuperTrend down", ~up, DOWN)):
            # Keep the flip bar in both series so the line has no hole where the trend changes.
            shown = mask | mask.shift(1, fill_value=False)
            data.append(
                _line(
                    x,
                    df["supertrend"].where(shown),
                    label,
                    color,
                    line={"color": color, "width": 2},
                    legendgroup="supertrend",
                    showlegend=label.endswith("up"),
                )
            )

    closes_up = (df["close"] >= df["open"]).to_numpy()
    if "volume" in panels:
        y = axis_of["volume"]
        data.append(
            {
                "type": "bar",
                "x": x,
                "y": _values(df["volume"], 0),
                "name": "Volume",
                "marker": {"color": np.where(closes_up, UP_FADED, DOWN_FADED).tolist(), "line": {"width": 0}},
                "showlegend": False,
                "xaxis": "x",
                "yaxis": y,
                "hovertemplate": "%{y:,.0f}",
            }
        )
        if "volume_avg_20" in df.columns:
            data.append(
                _line(
                    x,
                    df["volume_avg_20"],
                    "Volume avg 20",
                    LINE_COLORS["volume_avg"],
                    y,
                    line={"color": LINE_COLORS["volume_avg"], "width": 1.2},
                    showlegend=False,
                )
            )
    if "macd" in panels:
        y = axis_of["macd"]
        hist = df["macd_hist"]
        data.append(
            {
                "type": "bar",
                "x": x,
                "y": _values(hist),
                "name": "MACD histogram",
                "marker": {
                    "color": np.where(hist.to_numpy() >= 0, UP_FADED, DOWN_FADED).tolist(),
                    "line": {"width": 0},
                },
                "showlegend": False,
                "xaxis": "x",
                "yaxis": y,
            }
        )
        data.append(_line(x, df["macd"], "MACD", LINE_COLORS["macd"], y, showlegend=False))
        data.append(_line(x, df["macd_signal"], "Signal", LINE_COLORS["macd_signal"], y, showlegend=False))
    if "rsi" in panels:
        data.append(_line(x, df["rsi_14"], "RSI 14", LINE_COLORS["rsi"], axis_of["rsi"], showlegend=False))

    tickvals, ticktext = _ticks(index, x, bar)
    axis_font = {"size": 13, "color": TEXT}
    common_y = {
        "side": "right",
        "gridcolor": GRID,
        "zeroline": False,
        "showline": True,
        "linecolor": AXIS_LINE,
        "ticks": "outside",
        "tickcolor": AXIS_LINE,
        "ticklen": 4,
        "tickfont": axis_font,
        "anchor": "x",
        "nticks": 6,
    }
    bottom_axis = axis_of[panels[-1]] if panels else "y"
    layout: dict[str, Any] = {
        "width": width,
        "height": height,
        "template": None,
        "paper_bgcolor": "#ffffff",
        "plot_bgcolor": "#ffffff",
        "font": {"family": FONT, "size": 14, "color": TEXT},
        "title": {
            "text": title_text(symbol=symbol, bar=bar, last=last, close=float(df["close"].iloc[-1]), title=title),
            "x": 0.01,
            "xanchor": "left",
            "y": 0.985,
            "yanchor": "top",
            "font": {"size": 20, "color": TEXT},
        },
        "margin": {"l": 24, "r": 78, "t": 86, "b": 48},
        "showlegend": True,
        "legend": {
            "orientation": "h",
            "x": 0.0,
            "xanchor": "left",
            "y": 1.0,
            "yanchor": "bottom",
            "font": {"size": 13},
            "bgcolor": "rgba(255,255,255,0)",
        },
        "hovermode": "x unified",
        "dragmode": "pan",
        "bargap": 0.2,
        "xaxis": {
            "type": "category",
            "categoryorder": "trace",
            "rangeslider": {"visible": False},
            "anchor": bottom_axis,
            "tickmode": "array",
            "tickvals": tickvals,
            "ticktext": ticktext,
            "tickangle": 0,
            "tickfont": axis_font,
            "showgrid": True,
            "gridcolor": GRID,
            "showline": True,
            "linecolor": AXIS_LINE,
            "ticks": "outside",
            "tickcolor": AXIS_LINE,
            "ticklen": 4,
            "showspikes": True,
            "spikemode": "across",
            "spikethickness": 1,
            "spikecolor": MUTED,
            "spikedash": "dot",
        },
        "yaxis": {**common_y, "domain": list(domains[0]), "tickformat": ",.2f", "nticks": 10},
        "shapes": [],
        "annotations": [],
    }
    for i, panel in enumerate(panels):
        y = axis_of[panel]
        axis = {**common_y, "domain": list(domains[i + 1])}
        if panel == "volume":
            axis.update(tickformat="~s", rangemode="tozero", nticks=4)
        elif panel == "rsi":
            axis.update(range=[0, 100], tickvals=[30, 50, 70], showgrid=False)
            for level, dash in ((70, "dash"), (30, "dash"), (50, "dot")):
                layout["shapes"].append(
                    {
                        "type": "line",
                        "xref": "x domain",
                        "x0": 0,
                        "x1": 1,
                        "yref": y,
                        "y0": level,
                        "y1": level,
                        "line": {"color": MUTED, "width": 1, "dash": dash},
                    }
                )
        else:
            axis.update(nticks=5, zeroline=True, zerolinecolor=AXIS_LINE)
        layout[f"yaxis{i + 2}"] = axis
        layout["annotations"].append(
            {
                "text": PANEL_TITLES[panel],
                "xref": "paper",
                "yref": "paper",
                "x": 0.005,
                "y": domains[i + 1][1],
                "xanchor": "left",
                "yanchor": "top",
                "showarrow": False,
                "font": {"size": 13, "color": MUTED},
                "bgcolor": "rgba(255,255,255,0.8)",
            }
        )
    # The last close, marked on the price axis like a trading terminal's price line.
    close = float(df["close"].iloc[-1])
    if not math.isnan(close):
        color = UP if closes_up[-1] else DOWN
        layout["shapes"].append(
            {
                "type": "line",
                "xref": "x domain",
                "x0": 0,
                "x1": 1,
                "yref": "y",
                "y0": close,
                "y1": close,
                "line": {"color": color, "width": 1, "dash": "dot"},
            }
        )
        layout["annotations"].append(
            {
                "text": f"{close:,.2f}",
                "xref": "paper",
                "yref": "y",
                "x": 1,
                "y": close,
                "xanchor": "left",
                "yanchor": "middle",
                "showarrow": False,
                "font": {"size": 12, "color": "#ffffff"},
                "bgcolor": color,
                "borderpad": 2,
            }
        )
    return {"data": data, "layout": layout}


def figure_json(fig: dict[str, Any]) -> bytes:
    return json.dumps(fig, separators=(",", ":"), allow_nan=False).encode()


# --- PNG export -------------------------------------------------------------------------------

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    # Fewer, smaller processes: no zygote, no extension or crash machinery, one renderer.
    "--no-zygote",
    "--disable-extensions",
    "--disable-breakpad",
    "--disable-dev-shm-usage",
    "--renderer-process-limit=1",
    "--disable-features=Translate,MediaRouter,OptimizationHints,BackForwardCache",
    "--in-process-gpu",
    "--js-flags=--max-old-space-size=128",
    "--mute-audio",
    "--hide-scrollbars",
)

_PAGE = """<!doctype html>
<html><head><meta charset="utf-8">
<style>html,body{margin:0;padding:0;background:#fff}</style>
<script src="%(plotly)s"></script>
<script>
window.renderChart = async function (fig, width, height, scale) {
  const layout = Object.assign({}, fig.layout, {width: width, height: height});
  const url = await Plotly.toImage(
    {data: fig.data, layout: layout, config: {staticPlot: true}},
    {format: "png", width: width, height: height, scale: scale}
  );
  return url.slice(url.indexOf(",") + 1);
};
</script></head><body></body></html>
"""


def plotly_js_path() -> Path:
    import plotly

    return Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


def browser_path() -> str:
    """The OS Chromium: settings.BROWSER_PATH, else the first found on PATH. Debian's
    chromium-headless-shell comes first: same renderer, no browser UI, about 30% less memory."""
    from django.conf import settings

    configured = getattr(settings, "BROWSER_PATH", "") or ""
    if configured:
        path = Path(configured)
        if path.is_file() and os.access(path, os.X_OK):
            return str(path)
        raise StepError(
            f"BROWSER_PATH is set to {configured}, which is not an executable file; "
            "install Chromium from the OS packages and point BROWSER_PATH at it (e.g. /usr/bin/chromium)"
        )
    for name in ("chromium-headless-shell", "chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    raise StepError(
        "No Chromium found to render charts: BROWSER_PATH is empty and there is no chromium on PATH; "
        "install Chromium from the OS packages (apt-get install chromium-headless-shell) or set BROWSER_PATH"
    )


class RendererError(StepError):
    """The browser failed while rendering a chart."""


class _BrowserGone(Exception):
    pass


class ChromiumRenderer:
    """One headless Chromium with one page holding plotly.js, driven over --remote-debugging-pipe.

    Started on first use; if the browser dies (crash, OOM kill) the next render starts a new
    one. Not thread-safe by itself: a lock serialises renders."""

    def __init__(self, path: str | None = None, *, timeout: float = 60.0) -> None:
        self._path = path
        self.timeout = timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._tmp: str | None = None
        self._buffer = b""
        self._next_id = 0
        self._session: str | None = None
        self._lock = threading.Lock()
        self.starts = 0

    # Process management

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    def pids(self) -> list[int]:
        """The browser and every process under it."""
        root = self.pid
        if root is None:
            return []
        found, todo = [], [root]
        while todo:
            pid = todo.pop()
            found.append(pid)
            for task in Path(f"/proc/{pid}/task").glob("*"):
                with contextlib.suppress(OSError):
                    todo.extend(int(c) for c in (task / "children").read_text().split())
        return found

    def _start(self) -> None:
        path = self._path or browser_path()
        self._tmp = tempfile.mkdtemp(prefix="chart-renderer-")
        page = Path(self._tmp) / "chart.html"
        page.write_text(_PAGE % {"plotly": plotly_js_path().as_uri()})
        # The pipe protocol reads fd 3 and writes fd 4; the shell moves our pipes there and execs.
        command = [
            "/bin/sh",
            "-c",
            'exec 3<&0 4>&1 0</dev/null 1>/dev/null; exec "$@"',
            "sh",
            path,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={self._tmp}/profile",
            "--remote-debugging-pipe",
            "about:blank",
        ]
        try:
            self._proc = subprocess.Popen(
                command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                start_new_session=True,  # its own process group: close() kills every child
            )
        except OSError as exc:
            self._cleanup()
            raise StepError(f"Cannot start the browser {path} (BROWSER_PATH): {exc}") from exc
        self._buffer = b""
        self.starts += 1
        try:
            targets = self._call("Target.getTargets", {"filter": [{}]})["targetInfos"]
            for info in targets:
                # Chromium preloads browser WebUI (the omnibox popup) in a renderer of its own:
                # about 90 MB a headless chart page never needs.
                if info["type"] == "browser_ui":
                    with contextlib.suppress(RendererError):
                        self._call("Target.closeTarget", {"targetId": info["targetId"]})
            pages = [t["targetId"] for t in targets if t["type"] == "page"]
            target = pages[0] if pages else self._call("Target.createTarget", {"url": "about:blank"})["targetId"]
            self._session = self._call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
            self._call("Page.navigate", {"url": page.as_uri()}, session=self._session)
            deadline = time.monotonic() + self.timeout
            while not self._evaluate("typeof window.renderChart === 'function' && typeof Plotly === 'object'"):
                if time.monotonic() > deadline:
                    raise RendererError("plotly.js did not load in the chart browser")
                time.sleep(0.02)
        except _BrowserGone as exc:
            self.close()
            raise StepError(f"The browser {path} (BROWSER_PATH) exited while starting: {exc}") from exc
        except BaseException:
            self.close()
            raise

    def _cleanup(self) -> None:
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def close(self) -> None:
        proc, self._proc, self._session = self._proc, None, None
        if proc is not None:
            if proc.poll() is None:
                with contextlib.suppress(Exception):
                    self._write(proc, {"id": 0, "method": "Browser.close"})
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=3)
            # Whatever is left of its process group (renderer, utilities) goes too.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=3)
            for stream in (proc.stdin, proc.stdout):
                with contextlib.suppress(Exception):
                    stream.close()
        self._cleanup()

    # The DevTools protocol over the pipe: JSON messages ended by a NUL byte.

    @staticmethod
    def _write(proc: subprocess.Popen[bytes], message: dict[str, Any]) -> None:
        assert proc.stdin is not None
        proc.stdin.write(json.dumps(message).encode() + b"\0")
        proc.stdin.flush()

    def _call(self, method: str, params: dict[str, Any] | None = None, *, session: str | None = None) -> dict:
        proc = self._proc
        if proc is None or proc.poll() is not None:
            raise _BrowserGone("the browser is not running")
        self._next_id += 1
        message_id = self._next_id
        message: dict[str, Any] = {"id": message_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        try:
            self._write(proc, message)
        except (BrokenPipeError, OSError) as exc:
            raise _BrowserGone(str(exc)) from exc
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        deadline = time.monotonic() + self.timeout
        while True:
            while b"\0" in self._buffer:
                raw, self._buffer = self._buffer.split(b"\0", 1)
                reply = json.loads(raw)
                if reply.get("method") in ("Inspector.targetCrashed", "Target.targetCrashed"):
                    raise _BrowserGone("the chart page crashed")
                if reply.get("id") == message_id:
                    if "error" in reply:
                        raise RendererError(f"Chart browser error in {method}: {reply['error'].get('message')}")
                    return reply.get("result", {})
            left = deadline - time.monotonic()
            if left <= 0:
                raise _BrowserGone(f"no answer to {method} within {self.timeout:.0f} s")
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, 1 << 20)
                if not chunk:
                    raise _BrowserGone("the browser closed its pipe")
                self._buffer += chunk

    def _evaluate(self, expression: str) -> Any:
        result = self._call(
            "Runtime.evaluate",
            {"expression": expression, "awaitPromise": True, "returnByValue": True},
            session=self._session,
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise RendererError(f"Chart rendering failed in the browser: {text}")
        return result["result"].get("value")

    # The API

    def render(self, fig: dict[str, Any], *, width: int, height: int, scale: float = 1.0) -> bytes:
        """PNG bytes of a plotly figure dict, `width` x `height` CSS pixels times `scale`."""
        payload = json.dumps(fig, separators=(",", ":"))
        expression = f"renderChart({payload}, {int(width)}, {int(height)}, {float(scale)})"
        with self._lock:
            for attempt in (1, 2):
                if self.pid is None:
                    self.close()
                    self._start()
                try:
                    return base64.b64decode(self._evaluate(expression))
                except _BrowserGone as exc:
                    # A crashed or killed browser: start a new one and try once more.
                    self.close()
                    if attempt == 2:
                        raise RendererError(f"The chart browser failed twice: {exc}") from exc
        raise AssertionError("unreachable")


_renderer: ChromiumRenderer | None = None
_renderer_lock = threading.Lock()


def renderer() -> ChromiumRenderer:
    """This process's renderer (one per worker process; a forked child gets its own)."""
    global _renderer
    with _renderer_lock:
        if _renderer is None:
            _renderer = ChromiumRenderer()
        return _renderer


def renderer_close() -> None:
    global _renderer
    with _renderer_lock:
        if _renderer is not None:
            _renderer.close()
            _renderer = None


def _forget_in_child() -> None:
    # A forked worker must not share the parent's browser pipe; it starts its own on first use.
    global _renderer, _renderer_lock
    _renderer = None
    _renderer_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_in_child)
atexit.register(renderer_close)


def render_png(fig: dict[str, Any], *, width: int = DEFAULT_WIDTH, height: int = DEFAULT_HEIGHT) -> bytes:
    return renderer().render(fig, width=width, height=height)
