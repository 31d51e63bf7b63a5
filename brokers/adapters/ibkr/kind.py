"""Registers Interactive Brokers twice: as a broker (orders) and as a market-data source (bars).

Both go through the one ib_async connection of the `ibkr` worker process (DESIGN §5), so steps that
talk to IBKR are routed to the `ibkr` queue, and the web process never connects: it shows what that
worker last saw."""

from __future__ import annotations

from typing import Any

from brokers.adapters.registry import BrokerKind, SourceKind, register_broker, register_source

QUEUE = "ibkr"


@register_broker
class Ibkr(BrokerKind):
    name = "ibkr"
    label = "Interactive Brokers"
    queue = QUEUE

    def create(self):
        from brokers.adapters.ibkr.broker import IbkrBroker
        from brokers.orders.services import order_execution_apply, order_status_apply

        return IbkrBroker(on_status=order_status_apply, on_execution=order_execution_apply)

    def connection(self) -> dict[str, Any]:
        from django.core.cache import cache

        from brokers.adapters.ibkr.sync import CONNECTION_KEY

        remembered = cache.get(CONNECTION_KEY)
        if remembered:  # what the ibkr worker saw at its last sync
            return {"account": "", "mode": "", "detail": "", **remembered}
        return super().connection()

    def sync(self) -> dict[str, int]:
        """IBKR's events are read on the ibkr worker: send it a sync when orders are open there."""
        from brokers.orders.selectors import orders_open
        from brokers.tasks import sync_ibkr_task

        if not orders_open(broker=self.name).exists():
            return {}
        sync_ibkr_task.apply_async(queue=self.queue)
        return {"dispatched": 1}


@register_source
class IbkrBars(SourceKind):
    name = "ibkr"
    label = "Interactive Brokers"
    description = "Interactive Brokers"
    queue = QUEUE

    def create(self, *, owner_id: int | None = None):
        from brokers.adapters.ibkr.client import IbkrSource

        return IbkrSource()
