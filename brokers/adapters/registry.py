"""The broker and market-data source registries: every integration is a kind, registered by name.

An integration is one folder under `brokers/adapters/<name>/` whose `kind.py` registers a
`BrokerKind` (orders go there), a `SourceKind` (bars come from there), or both (IBKR). The folders
are imported at start-up (`brokers/apps.py`); nothing else names them. Settings (BROKER,
MARKET_DATA_SOURCE), step forms and validation, queue routing and pages read these registries.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from django.conf import settings

from workflows.errors import ApplicationError
from workflows.registry import Registry

if TYPE_CHECKING:
    from brokers.adapters.base import Broker
    from brokers.marketdata.bars import MarketDataSource

# A step's broker or source parameter may say "default": the installation's setting.
DEFAULT = "default"


class BrokerKind:
    """Where orders go. Subclasses set `name`, `label`, and `create`; the rest has sensible defaults."""

    name: ClassVar[str]
    label: ClassVar[str]
    # The Celery queue of the steps that talk to this broker (IBKR: the one worker holding the connection).
    queue: ClassVar[str] = "default"
    # A simulation (no money at stake). What it waives in the trading gate: the global trading
    # switch and the broker's margin preview; its orders are always "paper" (never live), and it
    # fills its own orders. The kill switch and every limit still apply. False by default, so a new
    # broker starts behind the whole gate.
    simulated: ClassVar[bool] = False

    def create(self) -> Broker:
        raise NotImplementedError

    def shown(self) -> bool:
        """Whether the pages show this broker's connection: simulations always, others when configured."""
        return self.simulated or self.name == settings.BROKER

    def connection(self) -> dict[str, Any]:
        """The connection row the pages show. Never raises: a failure is shown, not a 500."""
        try:
            status = self.create().connection_status()
        except Exception as exc:  # an adapter's failure is shown on the page
            return {"broker": self.name, "connected": False, "detail": f"{type(exc).__name__}: {exc}"}
        return {
            "broker": status.broker or self.name,
            "connected": bool(status.connected),
            "account": status.account,
            "mode": status.mode,
            "detail": status.detail,
            "checked_at": status.checked_at,
        }

    def sync(self) -> dict[str, int]:
        """The orders sync's work for this broker (beat): counts of what it did, by name."""
        return {}


class SourceKind:
    """Where bars come from. Subclasses set `name`, `label`, `description` and `create`."""

    name: ClassVar[str]
    label: ClassVar[str]
    description: ClassVar[str] = ""
    # The Celery queue of the steps that read it (IBKR: the one worker holding the connection).
    queue: ClassVar[str] = "default"

    def create(self, *, owner_id: int | None = None) -> MarketDataSource:
        """The source; `owner_id` is whose private data (uploads) it may read."""
        raise NotImplementedError


broker_kinds: Registry[BrokerKind] = Registry("broker")
source_kinds: Registry[SourceKind] = Registry("market-data source")


def broker_mode(kind: BrokerKind) -> str:
    """paper or live, decided here and nowhere else (not by the plugin): a simulation is always paper;
    a real broker is what TRADING_MODE says, and the gate then asks for the live switches."""
    return "paper" if kind.simulated else settings.TRADING_MODE


def register_broker(kind: type[BrokerKind]) -> type[BrokerKind]:
    broker_kinds.register(kind())
    return kind


def register_source(kind: type[SourceKind]) -> type[SourceKind]:
    source_kinds.register(kind())
    return kind


def broker_name(name: str) -> str:
    """The broker a name means: "default" or empty is the BROKER setting."""
    return settings.BROKER if name in ("", DEFAULT) else name


def source_name(name: str) -> str:
    """The market-data source a name means: "default" or empty is the MARKET_DATA_SOURCE setting."""
    return settings.MARKET_DATA_SOURCE if name in ("", DEFAULT) else name


_NAME = {"BROKER": broker_name, "MARKET_DATA_SOURCE": source_name}


def _resolve(kinds: Registry, setting: str, name: str) -> Any:
    """The kind a name means, or None when nobody registered it."""
    return kinds.get(_NAME[setting](name))


def broker_kind(name: str) -> BrokerKind:
    """The broker by name ("default" or empty: the BROKER setting); ApplicationError if unknown."""
    kind = _resolve(broker_kinds, "BROKER", name)
    if kind is None:
        raise ApplicationError(broker_kinds.unknown(name))
    return kind


def source_kind(name: str) -> SourceKind:
    """The source by name ("default" or empty: the MARKET_DATA_SOURCE setting); ApplicationError if unknown."""
    kind = _resolve(source_kinds, "MARKET_DATA_SOURCE", name)
    if kind is None:
        raise ApplicationError(source_kinds.unknown(name))
    return kind


def broker_queue(name: str, fallback: str) -> str:
    """The queue of a step talking to this broker; an unknown name fails at validation, not here."""
    kind = _resolve(broker_kinds, "BROKER", name)
    return kind.queue if kind is not None and kind.queue != "default" else fallback


def source_queue(name: str, fallback: str) -> str:
    """The queue of a step reading this source."""
    kind = _resolve(source_kinds, "MARKET_DATA_SOURCE", name)
    return kind.queue if kind is not None and kind.queue != "default" else fallback


# Step parameters naming a broker or a source: validated against the registry, offered to the editor
# as a choice of the registered names (the JSON schema's enum is built when the schema is asked for).


def _choice(kinds: Registry) -> Callable[[str], str]:
    def check(value: str) -> str:
        if value != DEFAULT and kinds.get(value) is None:
            raise ValueError(kinds.unknown(value))
        return value

    return check


broker_choice = _choice(broker_kinds)
source_choice = _choice(source_kinds)


def brokers_listed() -> list[BrokerKind]:
    """The brokers in the order pages and forms show them: simulations (paper) first, then by name."""
    return sorted(broker_kinds.all(), key=lambda kind: (not kind.simulated, kind.name))


def broker_schema(schema: dict[str, Any]) -> None:
    schema["enum"] = [DEFAULT, *(kind.name for kind in brokers_listed())]


def source_schema(schema: dict[str, Any]) -> None:
    schema["enum"] = [DEFAULT, *source_kinds.names()]
    kinds = "; ".join(f"{k.name}: {k.description or k.label}" for k in source_kinds.all())
    schema["description"] = f"default: the installation's MARKET_DATA_SOURCE; {kinds}"
