"""How a bracket order fills against OHLC bars: the paper broker's simulator, pure and deterministic.

`simulate_bracket` recomputes the whole life of one bracket from its placement each time it is
called, from the bars that came after the placement (the caller filters them, and `lower_bars`
likewise); the caller records the fills it has not recorded yet. No database, no clock.

The rules, for a long (BUY entry). A short (SELL entry) mirrors every one of them: low and high
swap, "below" becomes "above", min becomes max, and slippage raises a stop's price instead.

1. Bars are walked in time order and need open, high, low and close. A bar with a missing (NaN)
   or non-positive price raises ValueError naming the bar, as do bars out of time order.
2. Entry (limit): fills in the first bar whose low <= entry, at min(open, entry); a bar that
   opens below the limit fills at the open, which is better.
3. Exits, once the entry has filled: the stop-loss triggers when low <= stop and fills at
   min(open, stop) (a gap through the stop fills at the open, which is worse) less slippage; the
   take-profit fills when high >= target, at max(open, target).
4. The entry bar: only the stop may trigger in it, since a bar does not tell whether its high came
   before or after the entry (its low, at or below the stop, can only come after the price
   crossed the entry). When the entry filled at the bar's open, the whole bar came after the
   entry and rule 5 applies to it as to any later bar.
5. One bar touching both the stop and the target: if it opened through one of them, that one came
   first and fills at the open. Otherwise the stop is assumed (the conservative choice).
6. Lower-timeframe bars: when the order of events inside a bar matters (an entry bar that also
   touches the target; a bar of rule 5 that did not open through either level) and `lower_bars`
   holds bars of that bar's New York session (for intraday `bars`: from the bar's start up to the
   next bar's), those lower bars are walked in order by rules 2-5 instead of the bar; one lower
   bar touching both levels is rule 5 again. When they show nothing of what the bar shows (they
   do not cover it), the bar's own rules apply.
7. Commission per fill: max(commission_min, quantity * commission_per_share). Slippage only on
   stop fills, since a triggered stop is a market order: the price moves against the trader by
   slippage_bps / 10_000 of itself. Limit fills are at the limit or better and get none.
8. Once closed, realized_pnl = (exit - entry) * quantity (a short: entry - exit) minus both
   commissions; 0 before. The walk stops at the exit; `last_bar` is the last bar looked at.
9. The time in force is not applied here: for a DAY order the caller passes only the bars of the
   session it lived in.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal, NamedTuple

import pandas as pd

from brokers.adapters.base import BracketOrder, Leg
from brokers.marketdata.bars import NEW_YORK, iso_date

PRICES = ["open", "high", "low", "close"]
Status = Literal["working", "filled", "closed"]
ExitReason = Literal["", "take_profit", "stop_loss"]
_NO_LOWER = "stop and target in the same bar and no lower-timeframe bars: the stop is assumed"


@dataclass(frozen=True)
class PaperCosts:
    commission_per_share: float = 0.005
    commission_min: float = 1.0
    slippage_bps: float = 5.0  # adverse, on stop-loss fills only


@dataclass(frozen=True)
class SimFill:
    leg: Leg
    time: pd.Timestamp  # the bar (or lower-timeframe bar) in which it filled
    price: float
    quantity: int
    commission: float
    note: str  # why it filled there, as a sentence for the order's page


@dataclass
class SimResult:
    status: Status  # working: entry not filled; filled: position open, exits working; closed
    fills: list[SimFill]
    exit_reason: ExitReason
    realized_pnl: float  # after commissions; 0 unless closed
    last_bar: pd.Timestamp | None


class _Bar(NamedTuple):
    time: pd.Timestamp
    open: float
    high: float
    low: float


class _Touch(NamedTuple):
    hit: bool
    price: float  # before slippage
    at_open: bool  # the bar opened at or through the level
    note: str


def _px(value: float) -> str:
    return f"{value:.4f}".rstrip("0").rstrip(".")


class _Walk:
    def __init__(self, order: BracketOrder, costs: PaperCosts) -> None:
        self.order = order
        self.costs = costs
        self.long = order.side == "BUY"
        self.fills: list[SimFill] = []

    @property
    def state(self) -> int:
        return len(self.fills)  # 0 working, 1 in the position, 2 closed

    def touch(self, leg: Leg, bar: _Bar) -> _Touch:
        # A long's entry and stop are reached from above, its target from below; a short mirrors.
        level, word, down = {
            "entry": (self.order.entry, "limit", self.long),
            "stop_loss": (self.order.stop_loss, "stop", self.long),
            "take_profit": (self.order.take_profit, "target", not self.long),
        }[leg]
        if down:
            hit, price, at_open, extreme = bar.low <= level, min(bar.open, level), bar.open <= level, "low"
        else:
            hit, price, at_open, extreme = bar.high >= level, max(bar.open, level), bar.open >= level, "high"
        if at_open and bar.open != level:
            note = f"gap through the {word} {_px(level)}: filled at the open {_px(bar.open)}"
        else:
            note = f"{word} {_px(level)} touched ({extreme} {_px(getattr(bar, extreme))})"
        return _Touch(hit, price, at_open, note)

    def fill(self, leg: Leg, bar: _Bar, touch: _Touch, note: str = "") -> None:
        price, note = touch.price, note or touch.note
        if leg == "stop_loss" and self.costs.slippage_bps:
            slip = self.costs.slippage_bps / 10_000
            price = price * (1 - slip) if self.long else price * (1 + slip)
            note += f"; {self.costs.slippage_bps:g} bps slippage: {_px(price)}"
        quantity = self.order.quantity
        commission = max(self.costs.commission_min, quantity * self.costs.commission_per_share)
        self.fills.append(SimFill(leg, bar.time, price, quantity, commission, note))

    def order_matters(self, bar: _Bar) -> bool:
        """Whether the outcome of this bar depends on the order of events inside it (rule 6)."""
        if self.state == 0:
            entry = self.touch("entry", bar)
            if not entry.hit:
                return False
            if not entry.at_open:
                return self.touch("take_profit", bar).hit
        stop, target = self.touch("stop_loss", bar), self.touch("take_profit", bar)
        return stop.hit and target.hit and not stop.at_open and not target.at_open

    def step(self, bar: _Bar, *, both: str) -> None:
        """Rules 2-5 on one bar; `both` explains a stop assumed when the bar touched both levels."""
        if self.state == 0:
            entry = self.touch("entry", bar)
            if not entry.hit:
                return
            self.fill("entry", bar, entry)
            if not entry.at_open:
                stop = self.touch("stop_loss", bar)
                if stop.hit:
                    self.fill("stop_loss", bar, stop, f"{stop.note} in the entry bar")
                return
        stop, target = self.touch("stop_loss", bar), self.touch("take_profit", bar)
        if target.hit and (not stop.hit or target.at_open):
            self.fill("take_profit", bar, target)
        elif stop.hit:
            self.fill("stop_loss", bar, stop, f"{both}; {stop.note}" if target.hit and not stop.at_open else "")

    def result(self, last_bar: pd.Timestamp | None) -> SimResult:
        if self.state < 2:
            status: Status = "working" if self.state == 0 else "filled"
            return SimResult(status, self.fills, "", 0.0, last_bar)
        entry, exit_ = self.fills
        gain = (exit_.price - entry.price) if self.long else (entry.price - exit_.price)
        pnl = gain * self.order.quantity - entry.commission - exit_.commission
        reason: ExitReason = "take_profit" if exit_.leg == "take_profit" else "stop_loss"
        return SimResult("closed", self.fills, reason, pnl, last_bar)


def _check(df: pd.DataFrame, what: str) -> None:
    if not isinstance(df.index, pd.DatetimeIndex):
        raise ValueError(f"The {what}s need a DatetimeIndex, not {type(df.index).__name__}")
    prices = df[PRICES]
    bad = (prices.isna() | (prices <= 0)).any(axis=1).to_numpy()
    if bad.any():
        row = prices.iloc[int(bad.argmax())]
        values = ", ".join(f"{column} {row[column]}" for column in PRICES)
        raise ValueError(f"The {what} of {iso_date(row.name)} has a missing or non-positive price ({values})")
    if not (df.index.is_monotonic_increasing and df.index.is_unique):
        raise ValueError(f"The {what}s are not in strict time order")


def _rows(df: pd.DataFrame) -> list[_Bar]:
    columns = (df["open"], df["high"], df["low"])
    return [_Bar(t, float(o), float(h), float(lo)) for t, o, h, lo in zip(df.index, *columns, strict=True)]


def _new_york_wall(index: pd.DatetimeIndex) -> pd.DatetimeIndex:
    # Daily bars are naive exchange dates, so both sides are compared as naive New York time.
    return index.tz_convert(NEW_YORK).tz_localize(None) if index.tz is not None else index


def _lower_by_bar(index: pd.DatetimeIndex, lower: pd.DataFrame) -> tuple[dict[int, list[_Bar]], str]:
    """The lower bars inside each bar (by position), and what they are called ("1-minute")."""
    _check(lower, "lower-timeframe bar")
    if lower.empty or len(index) == 0:
        return {}, ""
    starts, times = _new_york_wall(index), _new_york_wall(lower.index)
    positions = starts.searchsorted(times, side="right") - 1
    same_session = (positions >= 0) & (starts[positions.clip(0)].normalize() == times.normalize())
    groups: dict[int, list[_Bar]] = {}
    for position, inside, row in zip(positions, same_session, _rows(lower), strict=True):
        if inside:
            groups.setdefault(int(position), []).append(row)
    step = lower.index.to_series().diff().min()
    minutes = step / pd.Timedelta(minutes=1) if pd.notna(step) else 0.0
    return groups, f"{minutes:g}-minute" if minutes and float(minutes).is_integer() else "lower-timeframe"


def _explain(walk: _Walk, before: int, unit: str) -> None:
    """Say in each fill found in the lower bars why they were looked at."""
    for i in range(before, walk.state):
        fill = walk.fills[i]
        if before == 1:
            first = "stop" if fill.leg == "stop_loss" else "target"
            why = f"stop and target in the same bar; {unit} bars show the {first} first"
        else:
            why = f"target touched in the entry bar; {unit} bars walked"
        walk.fills[i] = replace(fill, note=f"{why}: {fill.note}")


def simulate_bracket(
    order: BracketOrder,
    bars: pd.DataFrame,
    *,
    lower_bars: pd.DataFrame | None = None,
    costs: PaperCosts = PaperCosts(),  # frozen, so one shared default is safe
) -> SimResult:
    """Fills of `order` over `bars` (only those after its placement), by the rules above."""
    _check(bars, "bar")
    lower, unit = _lower_by_bar(bars.index, lower_bars) if lower_bars is not None else ({}, "")
    walk = _Walk(order, costs)
    last_bar = None
    for position, bar in enumerate(_rows(bars)):
        last_bar = bar.time
        before = walk.state
        inside = lower.get(position)
        if inside and walk.order_matters(bar):
            for lower_bar in inside:
                walk.step(lower_bar, both=f"stop and target in the same {unit} bar: the stop is assumed")
                if walk.state == 2:
                    break
            if walk.state == before:
                walk.step(bar, both=f"stop and target in the same bar, not in the {unit} bars: the stop is assumed")
            else:
                _explain(walk, before, unit)
        else:
            walk.step(bar, both=_NO_LOWER)
        if walk.state == 2:
            break
    return walk.result(last_bar)
