"""The broker interface: what the order step, the pages and the kill switch may ask of a broker.

Two implementations: the paper broker (`brokers.adapters.paper.broker`, the default: fills simulated against the
bars that follow) and Interactive Brokers (`brokers.adapters.ibkr.broker`, through ib_async). Both take
only bracket orders (limit entry, take-profit limit, stop-loss stop: DESIGN §7 rule 4), each
under an idempotency key that the broker refuses to send twice (IBKR: `orderRef` on every leg).

Nothing here checks the trading switches: `brokers.orders.services.order_place` does, right before it
calls `place_bracket`, so every broker is behind the same gate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from workflows.errors import StepError, TransientStepError

Side = Literal["BUY", "SELL"]
Leg = Literal["entry", "take_profit", "stop_loss"]
LEGS: tuple[Leg, ...] = ("entry", "take_profit", "stop_loss")


class BrokerError(StepError):
    """The broker refused or could not do what was asked; the message says why."""


class BrokerUnavailable(TransientStepError):
    """The broker cannot be reached right now (disconnected gateway); worth a retry."""


@dataclass(frozen=True)
class BracketOrder:
    """A limit entry with a take-profit limit and a stop-loss stop for the whole quantity."""

    key: str  # idempotency key, derived from (run, node): IBKR orderRef on every leg
    symbol: str
    side: Side
    quantity: int
    entry: float
    take_profit: float
    stop_loss: float
    tif: Literal["DAY", "GTC"] = "GTC"

    def __post_init__(self) -> None:
        problems = []
        if not self.key:
            problems.append("no idempotency key")
        if self.side not in ("BUY", "SELL"):
            problems.append(f"side {self.side!r} is not BUY or SELL")
        if not isinstance(self.quantity, int) or self.quantity <= 0:
            problems.append(f"quantity {self.quantity!r} is not a positive whole number")
        if min(self.entry, self.take_profit, self.stop_loss) <= 0:
            problems.append("prices must be positive")
        elif self.side == "BUY" and not self.stop_loss < self.entry < self.take_profit:
            problems.append(f"a BUY needs stop {self.stop_loss} < entry {self.entry} < target {self.take_profit}")
        elif self.side == "SELL" and not self.take_profit < self.entry < self.stop_loss:
            problems.append(f"a SELL needs target {self.take_profit} < entry {self.entry} < stop {self.stop_loss}")
        if problems:
            raise BrokerError("Invalid bracket order: " + "; ".join(problems))

    @property
    def exit_side(self) -> Side:
        return "SELL" if self.side == "BUY" else "BUY"

    @property
    def notional(self) -> float:
        return self.quantity * self.entry


@dataclass
class PlacedOrder:
    """What the broker did with a bracket: its ids per leg, and whether it was already there."""

    key: str
    status: str  # an OrderStatus value (brokers.models)
    broker_ids: dict[str, Any] = field(default_factory=dict)  # leg -> the broker's order id
    account: str = ""
    message: str = ""
    # True when the broker already had orders with this key (a redelivery): nothing was sent.
    reconciled: bool = False


@dataclass
class OpenOrder:
    key: str
    symbol: str
    side: Side
    quantity: float
    leg: Leg
    status: str
    broker_id: Any = None
    price: float | None = None


@dataclass
class BrokerPosition:
    symbol: str
    quantity: float  # negative for a short
    avg_cost: float
    market_price: float | None = None
    unrealized_pnl: float | None = None
    realized_pnl: float | None = None


@dataclass
class AccountSummary:
    account: str
    mode: Literal["paper", "live"]
    currency: str
    equity: float
    cash: float
    realized_pnl: float = 0.0
    unrealized_pnl: float = 0.0
    buying_power: float | None = None


@dataclass
class ConnectionStatus:
    broker: str
    connected: bool
    account: str = ""
    mode: str = ""
    detail: str = ""
    checked_at: datetime | None = None


@dataclass
class StatusEvent:
    """An order status change reported by the broker, applied to our Order rows by the services."""

    key: str
    leg: Leg
    status: str  # the broker's word: Submitted, Filled, Cancelled, Inactive, ...
    filled: float = 0.0
    avg_price: float | None = None
    broker_id: Any = None
    message: str = ""


@dataclass
class ExecutionEvent:
    """One fill reported by the broker."""

    key: str
    leg: Leg
    exec_id: str
    quantity: float
    price: float
    commission: float = 0.0
    time: datetime | None = None
    account: str = ""


class Broker(Protocol):
    name: str

    def place_bracket(self, order: BracketOrder) -> PlacedOrder:
        """Send the bracket, or find it already sent under its key (then `reconciled`): never twice."""
        ...

    def find(self, key: str) -> PlacedOrder | None:
        """The bracket the broker already has under this key (then `reconciled`), or None. Sends nothing."""
        ...

    def cancel(self, key: str) -> None:
        """Ask the broker to cancel every working leg of the bracket with this key."""
        ...

    def open_orders(self) -> list[OpenOrder]: ...

    def positions(self) -> list[BrokerPosition]: ...

    def account_summary(self) -> AccountSummary: ...

    def connection_status(self) -> ConnectionStatus: ...

    def what_if(self, order: BracketOrder) -> dict[str, Any]:
        """Margin and commission the broker expects for the entry, without sending anything."""
        ...
