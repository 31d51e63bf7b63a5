"""The reward/risk check and position sizing of strategies/risk/rules.py, against hand-worked numbers.

Pure functions: no database. Thresholds are inclusive ("at" the minimum passes), and the maths is
decimal on the prices as written, so levels whose R is exactly 1 in decimal pass even where binary
float arithmetic gives 0.9999999999999978 (the float-trap cases below would fail a naive check).
"""

import inspect
import math
from decimal import Decimal

import numpy as np
import pytest

from strategies.risk.rules import (
    RiskCheck,
    RiskLimits,
    Sizing,
    SizingRules,
    position_size,
    r_coefficient,
    risk_check,
)

LIMITS = RiskLimits()  # min_r 1.0, min_profit 5%, entry band 3%
RULES = SizingRules()  # risk 1% of equity, position <= 10% of equity, notional <= 25,000


def check(action: str = "BUY", *, entry=100, stop=95, target=110, last_price=100, limits=LIMITS) -> RiskCheck:
    return risk_check(action=action, entry=entry, stop=stop, target=target, last_price=last_price, limits=limits)


# ---------------------------------------------------------------------------------------------
# R by hand


@pytest.mark.parametrize(
    ("side", "entry", "stop", "target", "expected"),
    [
        # long: (110 - 100) / (100 - 95) = 10 / 5 = 2
        ("long", 100, 95, 110, 2.0),
        # long: (53 - 50) / (50 - 48) = 3 / 2 = 1.5
        ("long", 50, 48, 53, 1.5),
        # long: (104 - 100) / (100 - 95) = 4 / 5 = 0.8 (defined, just too low for the limits)
        ("long", 100, 95, 104, 0.8),
        # short: (100 - 90) / (104 - 100) = 10 / 4 = 2.5
        ("short", 100, 104, 90, 2.5),
        # short: (20 - 18.5) / (21 - 20) = 1.5 / 1 = 1.5
        ("short", 20, 21, 18.5, 1.5),
        # long: (1.2 - 1.1) / (1.1 - 1.0) = 0.1 / 0.1 = 1 exactly; binary floats give 0.9999999999999978
        ("long", 1.1, 1.0, 1.2, 1.0),
    ],
)
def test_r_coefficient_by_hand(side, entry, stop, target, expected):
    assert r_coefficient(side, entry, stop, target) == expected


@pytest.mark.parametrize(
    ("side", "entry", "stop", "target", "message"),
    [
        ("long", 100, 100, 110, "stop equals entry: the risk is zero, R is undefined"),
        ("short", 100, 100, 90, "stop equals entry: the risk is zero, R is undefined"),
        ("long", 100, 105, 110, "stop 105.00 is above the entry 100.00"),
        ("short", 100, 95, 90, "stop 95.00 is below the entry 100.00"),
        ("long", 100, 95, 90, "target 90.00 is below the entry 100.00"),
        ("short", 100, 105, 110, "target 110.00 is above the entry 100.00"),
        ("long", 100, 95, 100, "target equals entry: the reward is zero"),
        ("long", math.nan, 95, 110, "entry must be a finite number greater than 0, got nan"),
        ("long", 100, None, 110, "stop must be a finite number greater than 0, got None"),
        ("short", 100, 105, -1, "target must be a finite number greater than 0, got -1"),
        ("BUY", 100, 95, 110, "side must be 'long' or 'short', got 'BUY'"),
    ],
)
def test_r_coefficient_rejects(side, entry, stop, target, message):
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        r_coefficient(side, entry, stop, target)


# ---------------------------------------------------------------------------------------------
# Passing checks


@pytest.mark.parametrize(
    ("action", "entry", "stop", "target", "last_price", "side", "r", "margin", "risk"),
    [
        # long: R 10 / 5 = 2; margin 10 / 100 = 10%; risk 100 - 95 = 5; |100 - 100.5| / 100.5 = 0.4975%
        ("BUY", 100, 95, 110, 100.5, "long", 2.0, 0.10, 5.0),
        # short: R (100 - 90) / (104 - 100) = 2.5; margin 10 / 100 = 10%; risk 4
        ("SELL", 100, 104, 90, 99, "short", 2.5, 0.10, 4.0),
        # short: R (20 - 18.5) / (21 - 20) = 1.5; margin 1.5 / 20 = 7.5%; risk 1
        ("SELL", 20, 21, 18.5, 20.2, "short", 1.5, 0.075, 1.0),
        # long: R 3 / 2 = 1.5; margin 3 / 50 = 6%; risk 2
        ("BUY", 50, 48, 53, 50, "long", 1.5, 0.06, 2.0),
    ],
)
def test_pass_computes_r_margin_and_risk(action, entry, stop, target, last_price, side, r, margin, risk):
    result = check(action, entry=entry, stop=stop, target=target, last_price=last_price)
    assert result.passed, result.reasons
    assert (result.side, result.r, result.profit_margin, result.risk_per_share) == (side, r, margin, risk)
    assert (result.entry, result.stop, result.target, result.last_price) == (entry, stop, target, last_price)
    assert len(result.reasons) == 1
    assert result.reasons[0].startswith(f"{action} passes: R {r:.2f} >= 1.00")


def test_pass_summary_names_every_number():
    result = check("BUY", entry=100, stop=95, target=110, last_price=100.5)
    assert result.reasons == [
        "BUY passes: R 2.00 >= 1.00 (reward 10.00 / risk 5.00), profit margin 10.00% >= 5.00%, "
        "entry 100.00 is 0.50% from the last price 100.50 (band 3.00%)"
    ]


@pytest.mark.parametrize(
    ("action", "entry", "stop", "target", "last_price"),
    [
        # long: R (105 - 100) / (100 - 95) = 1; margin 5 / 100 = 5%; entry 3 / 103 = 2.9% from the last price
        ("BUY", 100, 95, 105, 103),
        # short: R (100 - 95) / (105 - 100) = 1; margin 5%
        ("SELL", 100, 105, 95, 97.5),
        # Float traps: R 1 and margin 5% in decimal, but binary floats give R 0.9999999999999978 and margin
        # 0.04999999999999993 (long: (1.071 - 1.02) / (1.02 - 0.969), 0.051 / 1.02) ...
        ("BUY", 1.02, 0.969, 1.071, 1.02),
        # ... and R 0.9999999999999961 (short: (1.14 - 1.083) / (1.197 - 1.14), 0.057 / 1.14 = 5%).
        ("SELL", 1.14, 1.197, 1.083, 1.14),
        # Entry band: |1.03 - 1.00| / 1.00 = 3% exactly (float: 0.030000000000000027); R 0.06 / 0.05 = 1.2,
        # margin 0.06 / 1.03 = 5.8%.
        ("BUY", 1.03, 0.98, 1.09, 1.0),
    ],
)
def test_exactly_at_the_thresholds_passes(action, entry, stop, target, last_price):
    result = check(action, entry=entry, stop=stop, target=target, last_price=last_price)
    assert result.passed, result.reasons


def test_at_thresholds_reports_exact_values():
    result = check("BUY", entry=1.02, stop=0.969, target=1.071, last_price=1.02)
    assert (result.r, result.profit_margin) == (1.0, 0.05)
    # Documents the trap the decimal maths avoids.
    assert (1.071 - 1.02) / (1.02 - 0.969) < 1.0
    assert (1.071 - 1.02) / 1.02 < 0.05


@pytest.mark.parametrize(
    "value",
    [100, 100.0, np.float64(100.0), np.int64(100), Decimal("100.00")],
    ids=["int", "float", "np.float64", "np.int64", "Decimal"],
)
def test_numeric_types_accepted(value):
    result = check("BUY", entry=value, stop=95, target=110, last_price=100)
    assert result.passed, result.reasons
    assert result.entry == 100.0
    assert isinstance(result.entry, float)


@pytest.mark.parametrize("action", ["buy", " Buy ", "BUY"])
def test_action_is_compared_like_the_decision_schema(action):
    assert check(action).passed


def test_the_model_r_cannot_be_passed_in():
    # Rule 3: R comes from the levels only; there is nowhere to hand over a model's own R.
    assert set(inspect.signature(risk_check).parameters) == {
        "action",
        "entry",
        "stop",
        "target",
        "last_price",
        "limits",
    }


# ---------------------------------------------------------------------------------------------
# Failures, each named


@pytest.mark.parametrize("action", ["HOLD", "hold"])
def test_hold_is_no_trade(action):
    # Levels of a HOLD are usually null; they are not reported, the HOLD is the only reason.
    result = check(action, entry=None, stop=None, target=None, last_price=100)
    assert not result.passed
    assert result.reasons == ["The decision is HOLD: no trade"]
    assert result.side == ""
    assert (result.r, result.profit_margin, result.risk_per_share) == (None, None, None)


def test_hold_with_levels_is_still_no_trade():
    result = check("HOLD")
    assert not result.passed
    assert result.reasons == ["The decision is HOLD: no trade"]
    assert result.r is None


@pytest.mark.parametrize(("action", "shown"), [("SHORT", "'SHORT'"), ("", "''"), (None, "None"), (1, "1")])
def test_unknown_action_is_named(action, shown):
    result = check(action)
    assert not result.passed
    assert result.reasons == [f"The action {shown} is not BUY or SELL: no trade"]
    assert result.side == ""


@pytest.mark.parametrize("action", ["BUY", "SELL"])
def test_stop_equal_to_entry(action):
    target = 110 if action == "BUY" else 90
    result = check(action, entry=100, stop=100, target=target)
    assert not result.passed
    assert result.reasons == ["stop equals entry: the risk is zero, R is undefined (entry and stop 100.00)"]
    assert result.r is None
    assert result.risk_per_share is None
    assert result.profit_margin == 0.10  # the target side is right, so its margin is still worked out


@pytest.mark.parametrize(
    ("action", "stop", "target", "message"),
    [
        ("BUY", 101, 110, "stop 101.00 is above the entry 100.00: a long's stop must be below its entry"),
        ("SELL", 99, 90, "stop 99.00 is below the entry 100.00: a short's stop must be above its entry"),
    ],
)
def test_stop_on_the_wrong_side(action, stop, target, message):
    result = check(action, entry=100, stop=stop, target=target)
    assert not result.passed
    assert result.reasons == [message]
    assert result.r is None


@pytest.mark.parametrize(
    ("action", "stop", "target", "message"),
    [
        ("BUY", 95, 90, "target 90.00 is below the entry 100.00: a long's target must be above its entry"),
        ("SELL", 105, 110, "target 110.00 is above the entry 100.00: a short's target must be below its entry"),
        ("BUY", 95, 100, "target equals entry: the reward is zero (entry and target 100.00)"),
    ],
)
def test_target_on_the_wrong_side(action, stop, target, message):
    result = check(action, entry=100, stop=stop, target=target)
    assert not result.passed
    assert result.reasons == [message]
    assert (result.r, result.profit_margin) == (None, None)
    assert result.risk_per_share == 5.0  # the stop side is right


@pytest.mark.parametrize(
    ("entry", "last_price", "message"),
    [
        # |100 - 110| / 110 = 9.09%
        (100, 110, "entry 100.00 is 9.09% from the last price 110.00, farther than the 3.00% band"),
        # |100 - 96| / 96 = 4.17%
        (100, 96, "entry 100.00 is 4.17% from the last price 96.00, farther than the 3.00% band"),
        # |103.1 - 100| / 100 = 3.1%
        (103.1, 100, "entry 103.10 is 3.10% from the last price 100.00, farther than the 3.00% band"),
        # |100.0031 - 97.09| / 97.09 = 3.0004%: more decimals, so the number is not shown as 3.00%
        (100.0031, 97.09, "entry 100.0031 is 3.0004% from the last price 97.09, farther than the 3.0000% band"),
    ],
)
def test_entry_far_from_the_last_price(entry, last_price, message):
    result = check("BUY", entry=entry, stop=entry - 5, target=entry + 15, last_price=last_price)
    assert not result.passed
    assert result.reasons == [message]


def test_r_below_the_minimum():
    # (104 - 100) / (100 - 95) = 4 / 5 = 0.8; margin 4 / 100 = 4% (also below)
    result = check("BUY", entry=100, stop=95, target=104, limits=RiskLimits(min_profit=0.01))
    assert not result.passed
    assert result.reasons == ["R 0.80 is below the minimum 1.00 (reward 4.00 / risk 5.00)"]
    assert result.r == 0.8


def test_profit_margin_below_the_minimum():
    # (102 - 100) / (100 - 99) = R 2; margin 2 / 100 = 2%
    result = check("BUY", entry=100, stop=99, target=102)
    assert not result.passed
    assert result.reasons == ["profit margin 2.00% is below the minimum 5.00% (reward 2.00 / entry 100.00)"]
    assert (result.r, result.profit_margin) == (2.0, 0.02)


def test_just_below_the_thresholds_fails_with_distinguishable_numbers():
    # R (104.999 - 100) / 5 = 0.9998; margin 4.999 / 100 = 4.999%: more decimals than 2 so that the
    # message never reads "R 1.00 is below the minimum 1.00".
    result = check("BUY", entry=100, stop=95, target=104.999)
    assert result.reasons == [
        "R 0.9998 is below the minimum 1.0000 (reward 4.999 / risk 5.00)",
        "profit margin 4.999% is below the minimum 5.000% (reward 4.999 / entry 100.00)",
    ]


def test_custom_limits():
    # R 2, margin 10%, 0.5% from the last price: fails min_r 2.5, min_profit 12%, band 0.25%
    limits = RiskLimits(min_r=2.5, min_profit=0.12, entry_band=0.0025)
    result = check("BUY", entry=100, stop=95, target=110, last_price=100.5, limits=limits)
    assert result.reasons == [
        "entry 100.00 is 0.50% from the last price 100.50, farther than the 0.25% band",
        "R 2.00 is below the minimum 2.50 (reward 10.00 / risk 5.00)",
        "profit margin 10.00% is below the minimum 12.00% (reward 10.00 / entry 100.00)",
    ]


BAD_VALUES = [None, math.nan, math.inf, -math.inf, 0, 0.0, -5, True, False, "100", Decimal("NaN"), [100]]


@pytest.mark.parametrize("field", ["entry", "stop", "target", "last_price"])
@pytest.mark.parametrize("value", BAD_VALUES, ids=repr)
def test_invalid_numbers_are_named(field, value):
    levels = {"entry": 100, "stop": 95, "target": 110, "last_price": 100, field: value}
    result = check("BUY", **levels)
    assert not result.passed
    assert f"{field} must be a finite number greater than 0, got {value!r}" in result.reasons
    assert getattr(result, field) is None
    # R needs entry, stop and target only: a bad last price still has its R worked out (2).
    assert result.r == (2.0 if field == "last_price" else None)


def test_invalid_entry_skips_everything_that_needs_it():
    result = check("BUY", entry=math.nan, stop=95, target=110, last_price=100)
    assert result.reasons == ["entry must be a finite number greater than 0, got nan"]
    assert (result.r, result.profit_margin, result.risk_per_share) == (None, None, None)


def test_several_failures_reported_together():
    # BUY with the stop above and the target below the entry, 100 vs 110 = 9.09% away: three reasons,
    # and no R since the sides are wrong.
    result = check("BUY", entry=100, stop=101, target=99, last_price=110)
    assert not result.passed
    assert result.reasons == [
        "stop 101.00 is above the entry 100.00: a long's stop must be below its entry",
        "target 99.00 is below the entry 100.00: a long's target must be above its entry",
        "entry 100.00 is 9.09% from the last price 110.00, farther than the 3.00% band",
    ]
    assert (result.r, result.profit_margin, result.risk_per_share) == (None, None, None)


def test_band_r_and_margin_failures_reported_together():
    # (104 - 100) / (100 - 90) = R 0.4; margin 4 / 100 = 4%; |100 - 96| / 96 = 4.17%
    result = check("BUY", entry=100, stop=90, target=104, last_price=96)
    assert result.reasons == [
        "entry 100.00 is 4.17% from the last price 96.00, farther than the 3.00% band",
        "R 0.40 is below the minimum 1.00 (reward 4.00 / risk 10.00)",
        "profit margin 4.00% is below the minimum 5.00% (reward 4.00 / entry 100.00)",
    ]
    assert (result.r, result.profit_margin, result.risk_per_share) == (0.4, 0.04, 10.0)


def test_invalid_number_and_wrong_side_reported_together():
    result = check("SELL", entry=100, stop=95, target=None, last_price=math.inf)
    assert result.reasons == [
        "target must be a finite number greater than 0, got None",
        "last_price must be a finite number greater than 0, got inf",
        "stop 95.00 is below the entry 100.00: a short's stop must be above its entry",
    ]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_r": 0}, "min_r must be a finite number in (0, inf), got 0"),
        ({"min_r": -1.0}, "min_r must be a finite number in (0, inf), got -1.0"),
        ({"min_r": math.nan}, "min_r must be a finite number in (0, inf), got nan"),
        ({"min_r": math.inf}, "min_r must be a finite number in (0, inf), got inf"),
        ({"min_profit": -0.01}, "min_profit must be a finite number in [0, 1), got -0.01"),
        ({"min_profit": 1}, "min_profit must be a finite number in [0, 1), got 1"),
        ({"entry_band": 0}, "entry_band must be a finite number in (0, 1], got 0"),
        ({"entry_band": 1.5}, "entry_band must be a finite number in (0, 1], got 1.5"),
        ({"entry_band": "0.03"}, "entry_band must be a finite number in (0, 1], got '0.03'"),
        ({"min_r": True}, "min_r must be a finite number in (0, inf), got True"),
    ],
)
def test_limits_are_validated(kwargs, message):
    with pytest.raises(ValueError) as excinfo:
        RiskLimits(**kwargs)
    assert str(excinfo.value) == message


@pytest.mark.parametrize(("entry", "stop", "target"), [(1e-300, 5e-301, 3e-300), (1e300, 5e299, 3e300)])
def test_extreme_magnitudes_do_not_raise(entry, stop, target):
    # R (3 - 1) / (1 - 0.5) = 4 at any scale; the message shows such numbers in exponent form.
    result = check("BUY", entry=entry, stop=stop, target=target, last_price=entry)
    assert (result.passed, result.r) == (True, 4.0)
    assert f"entry {entry:g} is 0.00%" in result.reasons[0]


def test_limits_at_their_bounds_are_valid():
    limits = RiskLimits(min_r=0.01, min_profit=0, entry_band=1)
    # R (101 - 100) / (100 - 50) = 0.02 >= 0.01; margin 1% >= 0; 100% from the last price 50.5 <= 100%
    assert check("BUY", entry=100, stop=50, target=101, last_price=50.5, limits=limits).passed


# ---------------------------------------------------------------------------------------------
# Position sizing


def size(equity=100_000, entry=50, stop=45, rules=RULES) -> Sizing:
    return position_size(equity=equity, entry=entry, stop=stop, rules=rules)


@pytest.mark.parametrize(
    ("equity", "entry", "stop", "quantity", "notional", "risk_amount", "limited_by"),
    [
        # by risk 1,000 / (20 - 15) = 200; by position 10,000 / 20 = 500; by notional 25,000 / 20 = 1,250
        (100_000, 20, 15, 200, 4_000.0, 1_000.0, "risk"),
        # by risk 1,000 / (50 - 49) = 1,000; by position 10,000 / 50 = 200; by notional 500
        (100_000, 50, 49, 200, 10_000.0, 200.0, "max_position_pct"),
        # by risk 10,000 / (100 - 99) = 10,000; by position 100,000 / 100 = 1,000; by notional 250
        (1_000_000, 100, 99, 250, 25_000.0, 250.0, "max_notional"),
        # a short's stop is above its entry: risk |40 - 42| = 2, 1,000 / 2 = 500; position 10,000 / 40 = 250
        (100_000, 40, 42, 250, 10_000.0, 500.0, "max_position_pct"),
        # tie, by risk 1,000 / 5 = 200 and by position 10,000 / 50 = 200: the first cap is named
        (100_000, 50, 45, 200, 10_000.0, 1_000.0, "risk"),
    ],
)
def test_sizing_limited_by_each_cap(equity, entry, stop, quantity, notional, risk_amount, limited_by):
    result = size(equity=equity, entry=entry, stop=stop)
    assert (result.quantity, result.notional, result.risk_amount, result.limited_by) == (
        quantity,
        notional,
        risk_amount,
        limited_by,
    )
    assert result.reasons[-1].startswith(f"Quantity {quantity} (")
    assert f"limited by {limited_by}" in result.reasons[-1]


def test_sizing_reasons_explain_the_numbers():
    result = size(equity=100_000, entry=50, stop=49)
    assert result.reasons == [
        "By risk: risk budget 1,000.00 (1.00% of equity 100,000.00) / risk per share 1.00 = 1,000.00 shares.",
        "By max_position_pct: position cap 10,000.00 (10.00% of equity 100,000.00) / entry 50.00 = 200.00 shares.",
        "By max_notional: notional cap 25,000.00 / entry 50.00 = 500.00 shares.",
        "Quantity 200 (200.00 rounded down, limited by max_position_pct): notional 10,000.00, risk 200.00.",
    ]


def test_sizing_rounds_down():
    # by risk 100 / (10 - 7) = 33.33 -> 33; by position 1,000 / 10 = 100; by notional 2,500
    result = size(equity=10_000, entry=10, stop=7)
    assert (result.quantity, result.notional, result.risk_amount, result.limited_by) == (33, 330.0, 99.0, "risk")
    assert result.reasons[-1] == "Quantity 33 (33.33 rounded down, limited by risk): notional 330.00, risk 99.00."


def test_sizing_rounds_down_without_float_error():
    # by risk 100 * 1% / (1.1 - 1.0) = 1 / 0.1 = 10 exactly; binary floats give 9.999999999999991 -> 9
    rules = SizingRules(max_position_pct=1.0)
    result = size(equity=100, entry=1.1, stop=1.0, rules=rules)
    assert 100 * 0.01 / (1.1 - 1.0) < 10  # the trap
    assert (result.quantity, result.notional, result.risk_amount, result.limited_by) == (10, 11.0, 1.0, "risk")


def test_sizing_reason_truncates_fractional_shares():
    # by position 10,000 / 100.0001 = 99.9999: shown as 99.99, not "100.00 rounded down" to 99
    result = size(equity=100_000, entry=100.0001, stop=99)
    assert (result.quantity, result.limited_by) == (99, "max_position_pct")
    assert result.reasons[-1].startswith("Quantity 99 (99.99 rounded down, limited by max_position_pct)")


@pytest.mark.parametrize("equity", [1_000, 25_000, 100_000, 1_234_567.89])
@pytest.mark.parametrize(("entry", "stop"), [(0.3, 0.1), (1.1, 1.0), (19.99, 18.75), (101.37, 104.2), (2_500, 2_400)])
def test_sizing_respects_every_cap_and_is_the_largest(equity, entry, stop):
    rules = SizingRules(risk_pct=0.02, max_position_pct=0.25, max_notional=10_000)
    result = size(equity=equity, entry=entry, stop=stop, rules=rules)
    e, s, eq = Decimal(repr(entry)), Decimal(repr(stop)), Decimal(repr(equity))

    def fits(quantity: int) -> bool:
        return (
            quantity * abs(e - s) <= eq * Decimal("0.02")
            and quantity * e <= eq * Decimal("0.25")
            and quantity * e <= Decimal(10_000)
        )

    assert fits(result.quantity)
    assert not fits(result.quantity + 1)
    assert result.notional == float(result.quantity * e)
    assert result.risk_amount == float(result.quantity * abs(e - s))


@pytest.mark.parametrize(("equity", "entry", "stop"), [(1e300, 50, 45), (1e6, 1e300, 1e299), (1e15, 1e-9, 5e-10)])
def test_sizing_extreme_magnitudes_do_not_raise(equity, entry, stop):
    result = size(equity=equity, entry=entry, stop=stop)
    assert result.notional <= RULES.max_notional
    assert result.reasons


@pytest.mark.parametrize(
    ("equity", "entry", "stop", "limited_by", "why"),
    [
        # by risk 100 / (500 - 300) = 0.5
        (10_000, 500, 300, "risk", "one share risks 200.00, more than the risk budget 100.00"),
        # by position 100 / 150 = 0.67 (by risk 10 / 1 = 10)
        (1_000, 150, 149, "max_position_pct", "one share at 150.00 costs more than the position cap 100.00"),
        # by notional 25,000 / 30,000 = 0.83 (by risk 10,000 / 1,000 = 10, by position 100,000 / 30,000 = 3.3)
        (
            1_000_000,
            30_000,
            29_000,
            "max_notional",
            "one share at 30,000.00 costs more than the notional cap 25,000.00",
        ),
    ],
)
def test_sizing_zero_when_one_share_does_not_fit(equity, entry, stop, limited_by, why):
    result = size(equity=equity, entry=entry, stop=stop)
    assert (result.quantity, result.notional, result.risk_amount, result.limited_by) == (0, 0.0, 0.0, limited_by)
    assert result.reasons[-1] == f"Quantity 0, limited by {limited_by}: {why}; no trade."


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"equity": 0}, "equity must be a finite number greater than 0, got 0"),
        ({"equity": -5_000.0}, "equity must be a finite number greater than 0, got -5000.0"),
        ({"equity": math.nan}, "equity must be a finite number greater than 0, got nan"),
        ({"equity": math.inf}, "equity must be a finite number greater than 0, got inf"),
        ({"equity": None}, "equity must be a finite number greater than 0, got None"),
        ({"equity": True}, "equity must be a finite number greater than 0, got True"),
        ({"entry": math.nan}, "entry must be a finite number greater than 0, got nan"),
        ({"entry": -50}, "entry must be a finite number greater than 0, got -50"),
        ({"stop": math.inf}, "stop must be a finite number greater than 0, got inf"),
        ({"stop": "45"}, "stop must be a finite number greater than 0, got '45'"),
        ({"entry": 50, "stop": 50}, "stop equals entry (50.00): the risk per share is zero, so no size is defined"),
    ],
)
def test_sizing_zero_for_invalid_inputs(kwargs, message):
    result = size(**kwargs)
    assert (result.quantity, result.notional, result.risk_amount, result.limited_by) == (0, 0.0, 0.0, "")
    assert result.reasons == [message, "Quantity 0: no trade"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"risk_pct": 0}, "risk_pct must be a finite number in (0, 1], got 0"),
        ({"risk_pct": 1.01}, "risk_pct must be a finite number in (0, 1], got 1.01"),
        ({"max_position_pct": 2}, "max_position_pct must be a finite number in (0, 1], got 2"),
        ({"max_position_pct": math.nan}, "max_position_pct must be a finite number in (0, 1], got nan"),
        ({"max_notional": 0}, "max_notional must be a finite number in (0, inf), got 0"),
        ({"max_notional": math.inf}, "max_notional must be a finite number in (0, inf), got inf"),
    ],
)
def test_sizing_rules_are_validated(kwargs, message):
    with pytest.raises(ValueError) as excinfo:
        SizingRules(**kwargs)
    assert str(excinfo.value) == message


@pytest.mark.parametrize(
    ("action", "entry", "stop", "target", "last", "expected"),
    [
        # A BUY at 100 with its stop at 99 while the price is already 98.5: the stop would fire at once.
        ("BUY", 100, 99, 120, 98.5, "the last price 98.50 is already at or beyond the stop 99.00"),
        ("BUY", 100, 90, 102, 102, "the last price 102.00 is already at or beyond the target 102.00"),
        ("SELL", 100, 101, 80, 101.5, "the last price 101.50 is already at or beyond the stop 101.00"),
        ("SELL", 100, 110, 99, 98.9, "the last price 98.90 is already at or beyond the target 99.00"),
    ],
)
def test_a_last_price_beyond_a_leg_fails(action, entry, stop, target, last, expected):
    check = risk_check(
        action=action, entry=entry, stop=stop, target=target, last_price=last, limits=RiskLimits(min_profit=0.0)
    )
    assert not check.passed
    assert expected in check.reasons
