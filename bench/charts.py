"""Chart PNG benchmark: our persistent-Chromium renderer, kaleido 1.x, and a minimal matplotlib render.

    .venv/bin/python bench/charts.py [--symbol AAPL] [--bar 1d] [--bars 250] [--n 20] [--no-kaleido]

For each renderer, in this one process: the cold time (first chart, including the browser
start) and the steady-state time per chart (median of --n), on the same bars; then memory as
the sum of PSS (/proc/<pid>/smaps_rollup) of this Python process and every browser process.
Goals (issue 3): steady state at most 1.2x matplotlib's, renderer memory at most 400 MB.
"""

from __future__ import annotations

import argparse
import gc
import io
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "trading_site.settings")

import django  # noqa: E402

django.setup()

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from brokers.marketdata.bars import BundledSource  # noqa: E402
from strategies import charts  # noqa: E402

OVERLAYS = ["sma_20", "sma_50", "sma_200", "bollinger", "supertrend"]
PANELS = ["volume", "macd", "rsi"]


def with_indicators(df: pd.DataFrame) -> pd.DataFrame:
    from strategies.charts.steps import _with_indicators

    try:
        return _with_indicators(df, [*OVERLAYS, *PANELS])
    except ImportError:
        from strategies.tests.test_charts import add_indicators

        return add_indicators(df)


def pss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        for task in Path(f"/proc/{current}/task").glob("*"):
            try:
                children = [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                continue
            found.extend(children)
            todo.extend(children)
    return found


def memory(label: str) -> tuple[float, float, int]:
    """(python MB, browser MB, browser processes), every descendant of this process counted."""
    children = descendants(os.getpid())
    python = pss_kb(os.getpid()) / 1024
    browser = sum(pss_kb(p) for p in children) / 1024
    print(
        f"  memory {label}: python {python:.0f} MB + browser {browser:.0f} MB in {len(children)} processes "
        f"= {python + browser:.0f} MB (PSS)"
    )
    return python, browser, len(children)


def timed(fn, n: int) -> tuple[float, float, list[float]]:
    start = time.perf_counter()
    first = fn()
    cold = time.perf_counter() - start
    times = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    assert first[:8] == b"\x89PNG\r\n\x1a\n"
    return cold, statistics.median(times), times


def matplotlib_png(df: pd.DataFrame, width: int, height: int) -> bytes:
    """A minimal candles + volume chart with matplotlib (Agg): the baseline."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dpi = 100
    fig, (ax, axv) = plt.subplots(
        2, 1, figsize=(width / dpi, height / dpi), dpi=dpi, sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    x = np.arange(len(df))
    up = (df["close"] >= df["open"]).to_numpy()
    colors = np.where(up, charts.UP, charts.DOWN)
    ax.vlines(x, df["low"], df["high"], colors=colors, linewidth=1)
    ax.vlines(x, df["open"], df["close"], colors=colors, linewidth=3)  # bodies: one collection, no patches
    axv.vlines(x, 0, df["volume"], colors=colors, linewidth=3)
    ax.yaxis.tick_right()
    axv.yaxis.tick_right()
    ax.set_title(f"{df.attrs.get('symbol', '')} last bar {df.index[-1]:%Y-%m-%d}", loc="left")
    ticks = x[:: max(1, len(x) // 8)]
    axv.set_xticks(ticks, [f"{df.index[i]:%Y-%m-%d}" for i in ticks])
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbol", default="AAPL")
    parser.add_argument("--bar", default="1d", choices=["1d", "1w"])
    parser.add_argument("--bars", type=int, default=250)
    parser.add_argument("--n", type=int, default=20)
    parser.add_argument("--width", type=int, default=charts.DEFAULT_WIDTH)
    parser.add_argument("--height", type=int, default=charts.DEFAULT_HEIGHT)
    parser.add_argument("--no-kaleido", action="store_true", help="skip kaleido's persistent server")
    args = parser.parse_args()

    df = with_indicators(BundledSource().bars(symbol=args.symbol, bar=args.bar, period="max")).iloc[-args.bars :]
    df.attrs["symbol"] = args.symbol
    fig = charts.figure(df, symbol=args.symbol, bar=args.bar, overlays=OVERLAYS, panels=PANELS)
    size = {"width": args.width, "height": args.height}
    print(
        f"{args.symbol} {args.bar}: {len(df)} bars, {args.width}x{args.height}, "
        f"overlays {', '.join(OVERLAYS)}, panels {', '.join(PANELS)}; steady state = median of {args.n}"
    )
    start = time.perf_counter()
    for _ in range(20):
        charts.figure(df, symbol=args.symbol, bar=args.bar, overlays=OVERLAYS, panels=PANELS)
    print(
        f"figure dict: {(time.perf_counter() - start) / 20 * 1000:.1f} ms, "
        f"JSON {len(charts.figure_json(fig)) / 1024:.0f} kB"
    )
    memory("at start")

    results = {}
    cold, steady, _ = timed(lambda: matplotlib_png(df, **size), args.n)
    results["matplotlib (Agg, candles + volume)"] = (cold, steady)
    print(f"matplotlib: cold {cold:.3f} s, steady {steady:.3f} s")
    memory("after matplotlib")

    renderer = charts.ChromiumRenderer()
    cold, steady, times = timed(lambda: renderer.render(fig, **size), args.n)
    results["chromium page (CDP pipe, Plotly.toImage)"] = (cold, steady)
    print(f"chromium page: cold {cold:.3f} s, steady {steady:.3f} s (min {min(times):.3f}, max {max(times):.3f})")
    _, ours_browser, ours_procs = memory("with the chromium page renderer")
    ours_python = pss_kb(os.getpid()) / 1024
    renderer.close()
    gc.collect()

    kaleido_numbers = None
    if not args.no_kaleido:
        import logging

        import kaleido

        for name in ("kaleido", "choreographer", "logistro"):
            logging.getLogger(name).setLevel(logging.WARNING)
        kaleido.start_sync_server(path=charts.browser_path(), mathjax=False, silence_warnings=True)
        try:
            opts = {"format": "png", **size}
            cold, steady, times = timed(lambda: kaleido.calc_fig_sync(fig, opts=opts), args.n)
            results["kaleido 1.x persistent server"] = (cold, steady)
            print(f"kaleido: cold {cold:.3f} s, steady {steady:.3f} s (min {min(times):.3f}, max {max(times):.3f})")
            kaleido_numbers = memory("with kaleido's server")
        finally:
            kaleido.stop_sync_server(silence_warnings=True)

    baseline = results["matplotlib (Agg, candles + volume)"][1]
    print("\nrenderer                                   cold s   steady s   x matplotlib")
    for name, (cold, steady) in results.items():
        print(f"{name:<42} {cold:7.3f}   {steady:8.3f}   {steady / baseline:6.2f}")
    total = ours_python + ours_browser
    print(
        f"\nchromium page renderer memory: python {ours_python:.0f} MB + browser {ours_browser:.0f} MB "
        f"({ours_procs} processes) = {total:.0f} MB PSS"
    )
    if kaleido_numbers:
        py, br, n = kaleido_numbers
        print(
            f"kaleido renderer memory:       python {py:.0f} MB + browser {br:.0f} MB ({n} processes) "
            f"= {py + br:.0f} MB PSS"
        )
    ratio = results["chromium page (CDP pipe, Plotly.toImage)"][1] / baseline
    print(
        f"\ngoal steady <= 1.2x matplotlib: {'met' if ratio <= 1.2 else 'NOT met'} ({ratio:.2f}x); "
        f"goal memory <= 400 MB: {'met' if total <= 400 else 'NOT met'} ({total:.0f} MB)"
    )


if __name__ == "__main__":
    main()
