"""The paper fill simulator against the real bundled bars (brokers/data/market, see SOURCES.md there).

Every expected fill is worked out by hand from the OHLC rows quoted next to it, never with the code
under test. Costs are the defaults: commission max(1.00, 0.005 * shares), 5 bps slippage on stops.
Daily AAPL rows come from AAPL-1d-2019-2024.csv; the 2016 daily bars are the 1-minute files
aggregated per session (there is no daily file for 2016).
"""

import pandas as pd
import pytest

from brokers.adapters.base import BracketOrder
from brokers.adapters.paper.fills import PaperCosts, SimResult, simulate_bracket
from brokers.marketdata.bars import NEW_YORK, market_source, resample


def order(side: str, *, entry: float, stop: float, target: float, quantity: int = 100) -> BracketOrder:
    return BracketOrder(
        key="run-1:order", symbol="AAPL", side=side, quantity=quantity, entry=entry, take_profit=target, stop_loss=stop
    )


def aapl_daily(first: str, last: str) -> pd.DataFrame:
    return market_source("bundled").bars(symbol="AAPL", bar="1d", period="max").loc[first:last]


def minutes(symbol: str, first: str, last: str) -> pd.DataFrame:
    bars = market_source("bundled").bars(symbol=symbol, bar="1m", period="max")
    return bars.loc[first:last]


def daily_of(minute_bars: pd.DataFrame) -> pd.DataFrame:
    return resample(minute_bars, source_bar="1m", to="1d")


def day(text: str) -> pd.Timestamp:
    return pd.Timestamp(text)


def minute(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz=NEW_YORK)


def fills_of(result: SimResult) -> list[tuple]:
    return [(f.leg, f.time, pytest.approx(f.price), f.quantity, pytest.approx(f.commission)) for f in result.fills]


def test_long_fills_then_hits_the_target():
    # 2019-01-04 O 36.13 H 37.14 L 35.95: L <= 36.00 < O, entry at 36.00; L 35.95 > stop 35.00.
    # 01-07 H 37.21 L 36.47; 01-08 H 37.96 L 37.13: neither 38.00 nor 35.00 reached.
    # 01-09 O 37.82 H 38.63 L 37.41: H >= 38.00, target at max(37.82, 38.00) = 38.00.
    result = simulate_bracket(
        order("BUY", entry=36.0, stop=35.0, target=38.0, quantity=300), aapl_daily("2019-01-04", "2019-01-15")
    )

    # Commission 300 * 0.005 = 1.50 per fill (above the 1.00 minimum).
    assert fills_of(result) == [
        ("entry", day("2019-01-04"), 36.0, 300, 1.5),
        ("take_profit", day("2019-01-09"), 38.0, 300, 1.5),
    ]
    assert (result.status, result.exit_reason, result.last_bar) == ("closed", "take_profit", day("2019-01-09"))
    # (38.00 - 36.00) * 300 - 1.50 - 1.50 = 597.00
    assert result.realized_pnl == pytest.approx(597.0)
    assert result.fills[0].note == "limit 36 touched (low 35.95)"
    assert result.fills[1].note == "target 38 touched (high 38.63)"


def test_long_stopped_out_with_slippage():
    # 2020-02-20 O 80.66 H 81.16 L 79.55: entry at 80.00; L 79.55 > stop 78.00.
    # 02-21 O 79.65 H 80.11 L 77.62: L <= 78.00 < O, stop at 78.00 less 5 bps: 78.00 * 0.9995 = 77.961.
    result = simulate_bracket(order("BUY", entry=80.0, stop=78.0, target=82.0), aapl_daily("2020-02-20", "2020-02-28"))

    assert fills_of(result) == [
        ("entry", day("2020-02-20"), 80.0, 100, 1.0),
        ("stop_loss", day("2020-02-21"), 77.961, 100, 1.0),
    ]
    assert (result.status, result.exit_reason, result.last_bar) == ("closed", "stop_loss", day("2020-02-21"))
    # (77.961 - 80.00) * 100 - 1.00 - 1.00 = -203.90 - 2.00 = -205.90
    assert result.realized_pnl == pytest.approx(-205.9)
    assert result.fills[1].note == "stop 78 touched (low 77.62); 5 bps slippage: 77.961"


def test_without_slippage_the_stop_fills_at_its_price():
    costs = PaperCosts(slippage_bps=0, commission_min=0.0, commission_per_share=0.01)
    result = simulate_bracket(
        order("BUY", entry=80.0, stop=78.0, target=82.0), aapl_daily("2020-02-20", "2020-02-28"), costs=costs
    )
    # Same bars as above; commission 100 * 0.01 = 1.00; (78.00 - 80.00) * 100 - 2.00 = -202.00
    assert [f.price for f in result.fills] == [80.0, 78.0]
    assert result.realized_pnl == pytest.approx(-202.0)


def test_gap_through_the_stop_fills_at_the_open_with_slippage():
    # 2019-01-02 O 38.72 H 39.71 L 38.56: entry at 38.70; L 38.56 > stop 38.00.
    # 01-03 O 35.99 (H 36.43 L 35.50): opens below the stop, fills at the open less 5 bps:
    # 35.99 * 0.9995 = 35.972005.
    result = simulate_bracket(order("BUY", entry=38.7, stop=38.0, target=40.0), aapl_daily("2019-01-02", "2019-01-10"))

    assert fills_of(result) == [
        ("entry", day("2019-01-02"), 38.7, 100, 1.0),
        ("stop_loss", day("2019-01-03"), 35.972005, 100, 1.0),
    ]
    # (35.972005 - 38.70) * 100 - 2.00 = -272.7995 - 2.00 = -274.7995
    assert result.realized_pnl == pytest.approx(-274.7995)
    assert result.fills[1].note == "gap through the stop 38: filled at the open 35.99; 5 bps slippage: 35.972"


def test_short_mirrored_target_gapped_through_at_the_open():
    # 2024-08-02 O 219.15 H 225.60 L 217.71: H >= 222.00 > O, short entry at max(219.15, 222.00) = 222.00;
    # H 225.60 < stop 226.00.
    # 08-05 O 199.09 H 213.50 L 196.00: opens below the target 215.00, which fills at the open 199.09 (better);
    # H 213.50 < 226.00, so no stop.
    result = simulate_bracket(
        order("SELL", entry=222.0, stop=226.0, target=215.0), aapl_daily("2024-08-02", "2024-08-09")
    )

    assert fills_of(result) == [
        ("entry", day("2024-08-02"), 222.0, 100, 1.0),
        ("take_profit", day("2024-08-05"), 199.09, 100, 1.0),
    ]
    # (222.00 - 199.09) * 100 - 2.00 = 2291.00 - 2.00 = 2289.00
    assert result.realized_pnl == pytest.approx(2289.0)
    assert result.fills[1].note == "gap through the target 215: filled at the open 199.09"


def test_short_stopped_out_slippage_raises_the_price():
    # 2019-01-04 O 36.13 H 37.14: H >= 36.50 > O, short entry at 36.50; H 37.14 < stop 37.20.
    # 01-07 O 37.17 H 37.21 L 36.47: H >= 37.20 > O, stop at 37.20 plus 5 bps: 37.20 * 1.0005 = 37.2186.
    result = simulate_bracket(order("SELL", entry=36.5, stop=37.2, target=35.0), aapl_daily("2019-01-04", "2019-01-15"))

    assert fills_of(result) == [
        ("entry", day("2019-01-04"), 36.5, 100, 1.0),
        ("stop_loss", day("2019-01-07"), 37.2186, 100, 1.0),
    ]
    # (36.50 - 37.2186) * 100 - 2.00 = -71.86 - 2.00 = -73.86
    assert result.realized_pnl == pytest.approx(-73.86)


def test_entry_never_touched_stays_working():
    # Lows 2019-01-04..01-15: 35.95, 36.47, 37.13, 37.41, 37.72, 37.88, 37.31, 37.51; none <= 35.00.
    result = simulate_bracket(order("BUY", entry=35.0, stop=34.0, target=37.0), aapl_daily("2019-01-04", "2019-01-15"))

    assert result == SimResult(status="working", fills=[], exit_reason="", realized_pnl=0.0, last_bar=day("2019-01-15"))


def test_no_bars_yet():
    result = simulate_bracket(order("BUY", entry=35.0, stop=34.0, target=37.0), aapl_daily("2019-01-04", "2019-01-03"))
    assert (result.status, result.fills, result.last_bar) == ("working", [], None)


def test_entry_bar_does_not_take_the_target():
    # 2019-01-02 O 38.72 H 39.71 L 38.56: entry at 38.70; H 39.71 >= target 39.50, but the high may have
    # come before the entry, so the position stays open.
    result = simulate_bracket(order("BUY", entry=38.7, stop=37.0, target=39.5), aapl_daily("2019-01-02", "2019-01-02"))

    assert fills_of(result) == [("entry", day("2019-01-02"), 38.7, 100, 1.0)]
    assert (result.status, result.exit_reason, result.realized_pnl) == ("filled", "", 0.0)


def test_entry_bar_may_take_the_stop():
    # 2019-01-02 O 38.72 H 39.71 L 38.56: entry at 38.70, then L 38.56 <= stop 38.60 (the low can only come
    # after the price crossed 38.70 from the open): 38.60 * 0.9995 = 38.5807.
    result = simulate_bracket(order("BUY", entry=38.7, stop=38.6, target=40.0), aapl_daily("2019-01-02", "2019-01-10"))

    assert fills_of(result) == [
        ("entry", day("2019-01-02"), 38.7, 100, 1.0),
        ("stop_loss", day("2019-01-02"), 38.5807, 100, 1.0),
    ]
    # (38.5807 - 38.70) * 100 - 2.00 = -11.93 - 2.00 = -13.93
    assert result.realized_pnl == pytest.approx(-13.93)
    assert result.fills[1].note == "stop 38.6 touched (low 38.56) in the entry bar; 5 bps slippage: 38.5807"


def test_entry_at_the_open_lets_the_target_fill_in_the_same_bar():
    # 2019-01-04 O 36.13 H 37.14 L 35.95: opens below the limit 36.50, entry at the open 36.13 (better);
    # everything after the open follows the entry, and H 37.14 >= target 37.00 fills at 37.00.
    result = simulate_bracket(order("BUY", entry=36.5, stop=35.0, target=37.0), aapl_daily("2019-01-04", "2019-01-15"))

    assert fills_of(result) == [
        ("entry", day("2019-01-04"), 36.13, 100, 1.0),
        ("take_profit", day("2019-01-04"), 37.0, 100, 1.0),
    ]
    # (37.00 - 36.13) * 100 - 2.00 = 87.00 - 2.00 = 85.00
    assert result.realized_pnl == pytest.approx(85.0)
    assert result.fills[0].note == "gap through the limit 36.5: filled at the open 36.13"


def test_a_bar_opening_through_the_target_takes_it_although_it_also_reaches_the_stop():
    # 2024-07-31 O 221.44 H 223.82 L 220.63: entry at 221.00; neither 219.00 nor 224.00 reached.
    # 08-01 O 224.37 H 224.48 L 217.02: touches both, but the open is already above the target 224.00,
    # so the target came first, filled at the open 224.37.
    result = simulate_bracket(
        order("BUY", entry=221.0, stop=219.0, target=224.0), aapl_daily("2024-07-31", "2024-08-09")
    )

    assert fills_of(result)[1] == ("take_profit", day("2024-08-01"), 224.37, 100, 1.0)
    # (224.37 - 221.00) * 100 - 2.00 = 337.00 - 2.00 = 335.00
    assert result.realized_pnl == pytest.approx(335.0)


# MSFT 2016-05-11 (from 1-minute bars) O 51.13 H 51.78 L 51.00: long entry at 51.05; L 51.00 > stop 50.95
# and H 51.78 < target 51.80. 05-12 O 51.20 H 51.81 L 50.92 touches both. Its 1-minute bars: the first low
# <= 50.95 is 12:01 (O 51.01 L 50.95), the first high >= 51.80 is 14:49 (O 51.745 H 51.805): the stop first.
MSFT_LONG = {"entry": 51.05, "stop": 50.95, "target": 51.8, "quantity": 200}


def test_same_bar_stop_first_by_one_minute_bars():
    lower = minutes("MSFT", "2016-05-11", "2016-05-13")
    result = simulate_bracket(order("BUY", **MSFT_LONG), daily_of(lower), lower_bars=lower)

    # Stop at min(51.01, 50.95) = 50.95 less 5 bps: 50.95 * 0.9995 = 50.924525, at the 12:01 minute.
    # Commission 200 * 0.005 = 1.00 per fill.
    assert fills_of(result) == [
        ("entry", day("2016-05-11"), 51.05, 200, 1.0),
        ("stop_loss", minute("2016-05-12 12:01"), 50.924525, 200, 1.0),
    ]
    assert (result.status, result.exit_reason, result.last_bar) == ("closed", "stop_loss", day("2016-05-12"))
    # (50.924525 - 51.05) * 200 - 2.00 = -25.095 - 2.00 = -27.095
    assert result.realized_pnl == pytest.approx(-27.095)
    assert result.fills[1].note == (
        "stop and target in the same bar; 1-minute bars show the stop first: "
        "stop 50.95 touched (low 50.95); 5 bps slippage: 50.9245"
    )


# AAPL 2016-04-19 O 107.88 H 108.00 L 106.23: short entry at max(107.88, 107.95) = 107.95; H 108.00 < stop
# 108.05 and L 106.23 > target 106.10. 04-20 O 106.64 H 108.09 L 106.06 touches both. Its 1-minute bars: the
# first low <= 106.10 is 09:43 (O 106.31 L 106.06), the first high >= 108.05 is 12:45: the target first.
AAPL_SHORT = {"entry": 107.95, "stop": 108.05, "target": 106.1}


def test_same_bar_target_first_by_one_minute_bars():
    lower = minutes("AAPL", "2016-04-19", "2016-04-22")
    result = simulate_bracket(order("SELL", **AAPL_SHORT), daily_of(lower), lower_bars=lower)

    # Target at min(106.31, 106.10) = 106.10 in the 09:43 minute.
    assert fills_of(result) == [
        ("entry", day("2016-04-19"), 107.95, 100, 1.0),
        ("take_profit", minute("2016-04-20 09:43"), 106.1, 100, 1.0),
    ]
    # (107.95 - 106.10) * 100 - 2.00 = 185.00 - 2.00 = 183.00
    assert result.realized_pnl == pytest.approx(183.0)
    assert result.fills[1].note.startswith("stop and target in the same bar; 1-minute bars show the target first")


def test_same_bar_without_lower_bars_assumes_the_stop():
    daily = daily_of(minutes("AAPL", "2016-04-19", "2016-04-22"))
    # No 1-minute bars for 04-20, so the stop 108.05 is assumed: max(106.64, 108.05) = 108.05 plus 5 bps
    # = 108.05 * 1.0005 = 108.104025.
    for lower in (None, minutes("AAPL", "2016-04-21", "2016-04-22")):
        result = simulate_bracket(order("SELL", **AAPL_SHORT), daily, lower_bars=lower)

        assert fills_of(result)[1] == ("stop_loss", day("2016-04-20"), 108.104025, 100, 1.0)
        # (107.95 - 108.104025) * 100 - 2.00 = -15.4025 - 2.00 = -17.4025
        assert result.realized_pnl == pytest.approx(-17.4025)
        assert result.fills[1].note.startswith(
            "stop and target in the same bar and no lower-timeframe bars: the stop is assumed"
        )


def test_entry_bar_resolved_by_one_minute_bars():
    # AAPL 2016-04-20 O 106.64 H 108.09 L 106.06, long entry 106.30, target 108.00, stop 105.50.
    lower = minutes("AAPL", "2016-04-20", "2016-04-20")
    bracket = order("BUY", entry=106.3, stop=105.5, target=108.0)

    # Daily bar alone: the entry at 106.30 and the target waits (entry-bar rule).
    alone = simulate_bracket(bracket, daily_of(lower))
    assert fills_of(alone) == [("entry", day("2016-04-20"), 106.3, 100, 1.0)]
    assert alone.status == "filled"

    # 1-minute bars: the first low <= 106.30 is 09:35 (O 106.36 L 106.23), entry at 106.30; the first high
    # >= 108.00 after it is 12:45 (O 107.9801 H 108.05), target at max(107.9801, 108.00) = 108.00. The day's
    # low 106.06 never reaches the stop.
    result = simulate_bracket(bracket, daily_of(lower), lower_bars=lower)
    assert fills_of(result) == [
        ("entry", minute("2016-04-20 09:35"), 106.3, 100, 1.0),
        ("take_profit", minute("2016-04-20 12:45"), 108.0, 100, 1.0),
    ]
    # (108.00 - 106.30) * 100 - 2.00 = 170.00 - 2.00 = 168.00
    assert result.realized_pnl == pytest.approx(168.0)


def test_same_input_gives_the_same_result():
    lower = minutes("MSFT", "2016-05-11", "2016-05-13")
    daily = daily_of(lower)
    before = (daily.copy(), lower.copy())

    first = simulate_bracket(order("BUY", **MSFT_LONG), daily, lower_bars=lower)
    second = simulate_bracket(order("BUY", **MSFT_LONG), daily, lower_bars=lower)

    assert first == second
    assert first.status == "closed"
    # The caller's frames are left as they were.
    pd.testing.assert_frame_equal(daily, before[0])
    pd.testing.assert_frame_equal(lower, before[1])


@pytest.mark.parametrize(("column", "value"), [("high", float("nan")), ("low", 0.0), ("close", -1.0)])
def test_bad_bar_raises_naming_it(column, value):
    bars = aapl_daily("2019-01-04", "2019-01-15").copy()
    bars.loc["2019-01-08", column] = value
    with pytest.raises(ValueError, match="The bar of 2019-01-08 has a missing or non-positive price"):
        simulate_bracket(order("BUY", entry=35.0, stop=34.0, target=37.0), bars)


def test_bad_lower_bar_raises_naming_it():
    lower = minutes("AAPL", "2016-04-20", "2016-04-20").copy()
    lower.loc[minute("2016-04-20 10:00"), "open"] = float("nan")
    with pytest.raises(ValueError, match=r"lower-timeframe bar of 2016-04-20T10:00:00-04:00"):
        simulate_bracket(order("BUY", entry=106.3, stop=105.5, target=108.0), daily_of(lower), lower_bars=lower)


def test_bars_out_of_order_raise():
    bars = aapl_daily("2019-01-04", "2019-01-15").iloc[::-1]
    with pytest.raises(ValueError, match="not in strict time order"):
        simulate_bracket(order("BUY", entry=35.0, stop=34.0, target=37.0), bars)
