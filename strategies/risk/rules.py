"""Reward/risk check and position sizing of a trading decision: pure functions, no models, no DB.

A decision's levels are an untrusted proposal (DESIGN.md section 7, rule 3): everything here is
computed from the entry, stop and target and from the latest fetched price; a model's own R is
never read.

Reward/risk check (`risk_check`)
--------------------------------
- action: "BUY" is a long, "SELL" a short (compared after strip() and upper(), as the Decision
  schema does). "HOLD" fails with "The decision is HOLD: no trade"; any other action fails naming
  it. Without a side no other rule applies, so a HOLD reports only that reason.
- entry, stop, target, last_price: each must be a finite number > 0 (int, float, numpy number or
  Decimal; None, NaN, infinities, zero, negatives, bools and strings fail, naming the field).
- Sides: a long needs stop < entry < target, a short needs target < entry < stop. stop == entry
  fails as "stop equals entry: the risk is zero, R is undefined"; a stop or target on the wrong
  side (a target equal to the entry included: it has no reward) fails naming both prices.
- risk = |entry - stop|, reward = |target - entry|, so
      long:  R = (target - entry) / (entry - stop)
      short: R = (entry - target) / (stop - entry)
  and R fails when R < min_r. R is computed only when stop and target are both on the right side.
- profit margin = |target - entry| / entry, computed when the target is on the right side; it
  fails when it is < min_profit.
- entry band: distance = |entry - last_price| / last_price (a fraction of the last price); it
  fails when distance > entry_band.
- last price: it must lie between the stop and the target (a long: stop < last_price < target);
  a last price already at or beyond the stop or the target would trigger that leg at once.
- Every rule that applies is checked and every failure is reported (`reasons`); a pass has one
  summary sentence instead.

Thresholds are inclusive: R == min_r, margin == min_profit and distance == entry_band pass. The
arithmetic is decimal on each float's shortest repr (the price as written, "1.1" is 1.1), and the
comparisons are multiplied out (reward >= min_r * risk, reward >= min_profit * entry,
|entry - last_price| <= entry_band * last_price), which is exact for any realistic prices. So a
level set whose R is exactly 1 in decimal passes: in binary floats 1.1 / 1.0 / 1.2 give
(1.2 - 1.1) / (1.1 - 1.0) = 0.9999999999999978 and would fail an R >= 1 check by rounding alone.
No tolerance is added on top: a value below a threshold in decimal fails. The reported `r`,
`profit_margin` and `risk_per_share` are the decimal results rounded to float.

Position sizing (`position_size`)
---------------------------------
    risk_per_share = |entry - stop|
    by risk             = equity * risk_pct / risk_per_share
    by max_position_pct = equity * max_position_pct / entry
    by max_notional     = max_notional / entry
    quantity = floor(min(the three)), whole shares; 0 means no trade
    notional = quantity * entry, risk_amount = quantity * risk_per_share
`limited_by` names the smallest of the three (the first in that order on a tie), also when the
floor makes the quantity 0. Invalid inputs (equity <= 0, a price that is not a finite number
> 0, entry == stop) give quantity 0, `limited_by` "" and a reason, never an exception: not
trading is always a safe answer. Sizing is decimal in the same way, so a risk budget of 1.00 over
1.1 - 1.0 is 10 shares, not floor(9.999999999999991) = 9. The side is not checked here;
`risk_check` does that.

Limits and rules are validated when built (ValueError): 0 < min_r, 0 <= min_profit < 1,
0 < entry_band <= 1; 0 < risk_pct <= 1, 0 < max_position_pct <= 1 (no leverage), 0 < max_notional,
each a finite number.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_FLOOR, Context, Decimal
from typing import Any, Literal

Side = Literal["long", "short"]
LimitedBy = Literal["risk", "max_position_pct", "max_notional", ""]

# Enough digits that no realistic price or equity is rounded; results are rounded once, to float.
_CTX = Context(prec=34)

_SIDES: dict[str, Side] = {"BUY": "long", "SELL": "short"}


# ---------------------------------------------------------------------------------------------
# Numbers and wording


def _decimal(value: Any) -> Decimal | None:
    """The value as an exact Decimal of its written form, or None if it is not a finite real number."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real | Decimal):
        return None
    if isinstance(value, Decimal):
        return value if value.is_finite() else None
    number = float(value)
    if not math.isfinite(number):
        return None
    # repr is the shortest string that round-trips: the price as it was written.
    return Decimal(repr(number))


def _positive(name: str, value: Any) -> tuple[Decimal | None, str | None]:
    number = _decimal(value)
    if number is None or number <= 0:
        return None, f"{name} must be a finite number greater than 0, got {_show(value)}"
    return number, None


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _num(value: Decimal | float) -> str:
    """A price or amount with every digit it has (up to 10 decimals), at least 2: 4.00, 0.0125, 25,000.00.

    Magnitudes no market has (below 1e-6, from 1e15) are shown in exponent form rather than as a
    row of zeros.
    """
    number = value if isinstance(value, Decimal) else Decimal(repr(float(value)))
    if number and not Decimal("1e-6") <= abs(number) < Decimal("1e15"):
        return f"{float(number):.6g}"
    decimals = min(max(2, -int(number.normalize().as_tuple().exponent)), 10)
    return f"{number:,.{decimals}f}"


def _shares(value: Decimal) -> str:
    """Fractional shares truncated to 2 decimals, so 99.999 reads 99.99 and never "100.00 rounded down" to 99."""
    if value >= Decimal("1e15"):
        return f"{float(value):.6g}"
    return f"{value.quantize(Decimal('0.01'), rounding=ROUND_DOWN, context=_CTX):,}"


def _ratio(value: Decimal | float, decimals: int = 2) -> str:
    return f"{float(value):,.{decimals}f}"


def _pct(fraction: Decimal | float, decimals: int = 2) -> str:
    return f"{float(fraction) * 100:,.{decimals}f}%"


def _versus(fmt: Callable[[Decimal | float, int], str], value: Decimal | float, limit: float) -> tuple[str, str]:
    """value and limit in `fmt`, with more decimals where 2 would show a failing value equal to its limit."""
    decimals = 2
    while decimals < 12 and fmt(value, decimals) == fmt(limit, decimals):
        decimals += 1
    return fmt(value, decimals), fmt(limit, decimals)


def _check_limit(name: str, value: Any, *, low: float, high: float, closed: Literal["", "low", "high", "both"]) -> None:
    """ValueError unless value is a finite number in the interval (low, high), closed at the named ends."""
    number = _decimal(value)
    above = number is not None and (number >= low if closed in ("low", "both") else number > low)
    below = number is not None and (number <= high if closed in ("high", "both") else number < high)
    if not (above and below):
        opening, closing = "[" if closed in ("low", "both") else "(", "]" if closed in ("high", "both") else ")"
        interval = f"{opening}{low:g}, {high:g}{closing}"
        raise ValueError(f"{name} must be a finite number in {interval}, got {_show(value)}")


# ---------------------------------------------------------------------------------------------
# Reward/risk


@dataclass(frozen=True)
class RiskLimits:
    min_r: float = 1.0  # R must be >= this
    min_profit: float = 0.05  # |target - entry| / entry must be >= this
    entry_band: float = 0.03  # |entry - last_price| / last_price must be <= this

    def __post_init__(self) -> None:
        _check_limit("min_r", self.min_r, low=0, high=math.inf, closed="")
        _check_limit("min_profit", self.min_profit, low=0, high=1, closed="low")
        _check_limit("entry_band", self.entry_band, low=0, high=1, closed="high")


@dataclass(frozen=True)
class RiskCheck:
    passed: bool
    # Every failed rule as a sentence naming the numbers; for a pass, one summary sentence.
    reasons: list[str]
    side: Literal["long", "short", ""]
    entry: float | None
    stop: float | None
    target: float | None
    last_price: float | None
    r: float | None
    profit_margin: float | None
    risk_per_share: float | None


def _side(side: Any) -> Side:
    if side not in ("long", "short"):
        raise ValueError(f"side must be 'long' or 'short', got {_show(side)}")
    return side


def _stop_problem(side: Side, entry: Decimal, stop: Decimal) -> str | None:
    if stop == entry:
        return f"stop equals entry: the risk is zero, R is undefined (entry and stop {_num(entry)})"
    if side == "long" and stop > entry:
        return f"stop {_num(stop)} is above the entry {_num(entry)}: a long's stop must be below its entry"
    if side == "short" and stop < entry:
        return f"stop {_num(stop)} is below the entry {_num(entry)}: a short's stop must be above its entry"
    return None


def _target_problem(side: Side, entry: Decimal, target: Decimal) -> str | None:
    if target == entry:
        return f"target equals entry: the reward is zero (entry and target {_num(entry)})"
    if side == "long" and target < entry:
        return f"target {_num(target)} is below the entry {_num(entry)}: a long's target must be above its entry"
    if side == "short" and target > entry:
        return f"target {_num(target)} is above the entry {_num(entry)}: a short's target must be below its entry"
    return None


def _r(entry: Decimal, stop: Decimal, target: Decimal) -> Decimal:
    """THE R formula: |target - entry| / |entry - stop|, for levels already known to be on the right sides."""
    return _CTX.divide(abs(_CTX.subtract(target, entry)), abs(_CTX.subtract(entry, stop)))


def _margin(entry: Decimal, target: Decimal) -> Decimal:
    """THE profit margin formula: |target - entry| / entry."""
    return _CTX.divide(abs(_CTX.subtract(target, entry)), entry)


def r_coefficient(side: Side, entry: float, stop: float, target: float) -> float:
    """R of a long ((target - entry) / (entry - stop)) or a short ((entry - target) / (stop - entry)).

    Raises ValueError, with the reason risk_check would give, when a level is not a finite number
    > 0, stop == entry (R undefined), or the stop or target is not on its side of the entry.
    """
    return reward_risk(side, entry, stop, target)[0]


def reward_risk(side: Side, entry: float, stop: float, target: float) -> tuple[float, float]:
    """(R, profit margin) of a trade's levels, or ValueError with the reason risk_check would give.

    The one place outside risk_check that turns levels into R (agent tools, notifications)."""
    side = _side(side)
    levels: dict[str, Decimal] = {}
    for name, value in (("entry", entry), ("stop", stop), ("target", target)):
        number, problem = _positive(name, value)
        if problem:
            raise ValueError(problem)
        levels[name] = number
    problem = _stop_problem(side, levels["entry"], levels["stop"]) or _target_problem(
        side, levels["entry"], levels["target"]
    )
    if problem:
        raise ValueError(problem)
    return float(_r(levels["entry"], levels["stop"], levels["target"])), float(
        _margin(levels["entry"], levels["target"])
    )


def risk_check(*, action: str, entry: Any, stop: Any, target: Any, last_price: Any, limits: RiskLimits) -> RiskCheck:
    """Check a decision's levels against the limits; see the module docstring for every rule."""
    reasons: list[str] = []
    values: dict[str, Decimal | None] = {}
    for name, value in (("entry", entry), ("stop", stop), ("target", target), ("last_price", last_price)):
        number, problem = _positive(name, value)
        values[name] = number
        if problem:
            reasons.append(problem)

    def result(passed: bool, side: Literal["long", "short", ""], **computed: Decimal | None) -> RiskCheck:
        return RiskCheck(
            passed=passed,
            reasons=reasons,
            side=side,
            **{name: None if v is None else float(v) for name, v in values.items()},
            **{name: None if v is None else float(v) for name, v in computed.items()},
        )

    normalized = action.strip().upper() if isinstance(action, str) else None
    if normalized not in _SIDES:
        # No side, no trade: the level checks would only add noise (a HOLD has no levels).
        if normalized == "HOLD":
            reasons[:] = ["The decision is HOLD: no trade"]
        else:
            reasons[:] = [f"The action {_show(action)} is not BUY or SELL: no trade"]
        return result(False, "", r=None, profit_margin=None, risk_per_share=None)

    side = _SIDES[normalized]
    e, s, t, last = values["entry"], values["stop"], values["target"], values["last_price"]
    stop_ok = target_ok = False
    if e is not None and s is not None:
        problem = _stop_problem(side, e, s)
        stop_ok = problem is None
        if problem:
            reasons.append(problem)
    if e is not None and t is not None:
        problem = _target_problem(side, e, t)
        target_ok = problem is None
        if problem:
            reasons.append(problem)

    distance = None
    if e is not None and last is not None:
        gap = abs(_CTX.subtract(e, last))
        distance = _CTX.divide(gap, last)
        # Compared multiplied out (gap > band * last, likewise below), where the decimal product is exact.
        if gap > _CTX.multiply(Decimal(repr(limits.entry_band)), last):
            shown, band = _versus(_pct, distance, limits.entry_band)
            reasons.append(f"entry {_num(e)} is {shown} from the last price {_num(last)}, farther than the {band} band")

    # A last price already beyond the stop (or the target) would trigger that leg at once.
    if last is not None and s is not None and stop_ok and (last <= s if side == "long" else last >= s):
        reasons.append(f"the last price {_num(last)} is already at or beyond the stop {_num(s)}")
    if last is not None and t is not None and target_ok and (last >= t if side == "long" else last <= t):
        reasons.append(f"the last price {_num(last)} is already at or beyond the target {_num(t)}")

    r = reward = risk = margin = None
    if stop_ok:
        risk = abs(_CTX.subtract(e, s))
    if target_ok:
        reward = abs(_CTX.subtract(t, e))
    if stop_ok and target_ok:
        r = _r(e, s, t)
        if reward < _CTX.multiply(Decimal(repr(limits.min_r)), risk):
            shown, minimum = _versus(_ratio, r, limits.min_r)
            reasons.append(f"R {shown} is below the minimum {minimum} (reward {_num(reward)} / risk {_num(risk)})")
    if target_ok:
        margin = _margin(e, t)
        if reward < _CTX.multiply(Decimal(repr(limits.min_profit)), e):
            shown, minimum = _versus(_pct, margin, limits.min_profit)
            reasons.append(
                f"profit margin {shown} is below the minimum {minimum} (reward {_num(reward)} / entry {_num(e)})"
            )

    if reasons:
        return result(False, side, r=r, profit_margin=margin, risk_per_share=risk)
    reasons.append(
        f"{normalized} passes: R {_ratio(r)} >= {_ratio(limits.min_r)} (reward {_num(reward)} / risk {_num(risk)}), "
        f"profit margin {_pct(margin)} >= {_pct(limits.min_profit)}, entry {_num(e)} is {_pct(distance)} "
        f"from the last price {_num(last)} (band {_pct(limits.entry_band)})"
    )
    return result(True, side, r=r, profit_margin=margin, risk_per_share=risk)


# ---------------------------------------------------------------------------------------------
# Position sizing


@dataclass(frozen=True)
class SizingRules:
    risk_pct: float = 0.01  # risk this fraction of equity per trade
    max_position_pct: float = 0.10  # position notional at most this fraction of equity
    max_notional: float = 25_000.0  # and at most this many currency units

    def __post_init__(self) -> None:
        _check_limit("risk_pct", self.risk_pct, low=0, high=1, closed="high")
        _check_limit("max_position_pct", self.max_position_pct, low=0, high=1, closed="high")
        _check_limit("max_notional", self.max_notional, low=0, high=math.inf, closed="")


@dataclass(frozen=True)
class Sizing:
    quantity: int  # whole shares, rounded down; 0 means no trade
    notional: float
    risk_amount: float  # quantity * risk_per_share
    limited_by: LimitedBy  # "" when the inputs were invalid
    reasons: list[str]  # sentences explaining the numbers; for quantity 0, why


def position_size(*, equity: Any, entry: Any, stop: Any, rules: SizingRules) -> Sizing:
    """Whole shares to trade; see the module docstring for the formula. Never raises on bad inputs."""
    problems: list[str] = []
    parsed: dict[str, Decimal | None] = {}
    for name, value in (("equity", equity), ("entry", entry), ("stop", stop)):
        number, problem = _positive(name, value)
        parsed[name] = number
        if problem:
            problems.append(problem)
    eq, e, s = parsed["equity"], parsed["entry"], parsed["stop"]
    if e is not None and s is not None and e == s:
        problems.append(f"stop equals entry ({_num(e)}): the risk per share is zero, so no size is defined")
    if problems:
        return Sizing(
            quantity=0, notional=0.0, risk_amount=0.0, limited_by="", reasons=[*problems, "Quantity 0: no trade"]
        )

    risk_per_share = abs(_CTX.subtract(e, s))
    risk_budget = _CTX.multiply(eq, Decimal(repr(rules.risk_pct)))
    position_cap = _CTX.multiply(eq, Decimal(repr(rules.max_position_pct)))
    notional_cap = Decimal(repr(rules.max_notional))
    caps: list[tuple[LimitedBy, Decimal, str]] = [
        (
            "risk",
            _CTX.divide(risk_budget, risk_per_share),
            f"risk budget {_num(risk_budget)} ({_pct(rules.risk_pct)} of equity {_num(eq)}) "
            f"/ risk per share {_num(risk_per_share)}",
        ),
        (
            "max_position_pct",
            _CTX.divide(position_cap, e),
            f"position cap {_num(position_cap)} ({_pct(rules.max_position_pct)} of equity {_num(eq)}) "
            f"/ entry {_num(e)}",
        ),
        ("max_notional", _CTX.divide(notional_cap, e), f"notional cap {_num(notional_cap)} / entry {_num(e)}"),
    ]
    # min() keeps the first of equal values: risk, then max_position_pct, then max_notional.
    limited_by, shares, _ = min(caps, key=lambda cap: cap[1])
    quantity = int(shares.to_integral_value(rounding=ROUND_FLOOR))
    notional = _CTX.multiply(Decimal(quantity), e)
    risk_amount = _CTX.multiply(Decimal(quantity), risk_per_share)

    reasons = [f"By {name}: {text} = {_shares(value)} shares." for name, value, text in caps]
    if quantity == 0:
        why = {
            "risk": f"one share risks {_num(risk_per_share)}, more than the risk budget {_num(risk_budget)}",
            "max_position_pct": f"one share at {_num(e)} costs more than the position cap {_num(position_cap)}",
            "max_notional": f"one share at {_num(e)} costs more than the notional cap {_num(notional_cap)}",
        }[limited_by]
        reasons.append(f"Quantity 0, limited by {limited_by}: {why}; no trade.")
    else:
        reasons.append(
            f"Quantity {quantity:,} ({_shares(shares)} rounded down, limited by {limited_by}): "
            f"notional {_num(notional)}, risk {_num(risk_amount)}."
        )
    return Sizing(
        quantity=quantity,
        notional=float(notional),
        risk_amount=float(risk_amount),
        limited_by=limited_by,
        reasons=reasons,
    )
