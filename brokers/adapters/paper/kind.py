"""Registers the paper broker (the default): bracket orders simulated against the bars that follow."""

from __future__ import annotations

import logging
from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from brokers.adapters.registry import BrokerKind, register_broker, source_queue

logger = logging.getLogger(__name__)

# The equity curve gets a point when equity moved, and at least this often otherwise.
SNAPSHOT_EVERY = timedelta(minutes=15)


@register_broker
class Paper(BrokerKind):
    name = "paper"
    label = "Paper (simulated)"
    simulated = True

    def create(self):
        from brokers.adapters.paper.broker import PaperBroker

        return PaperBroker()

    def sync(self) -> dict[str, int]:
        """Fill open paper orders against the bars that arrived since; a point on the equity curve."""
        from brokers.adapters.paper.broker import paper_order_process
        from brokers.models import Order, OrderStatus
        from brokers.orders.selectors import orders_open
        from brokers.tasks import process_paper_order_task

        counts = {"paper": 0, "dispatched": 0, "errors": 0}
        for order in orders_open(broker=self.name).filter(status__in=[OrderStatus.SUBMITTED, OrderStatus.FILLED]):
            queue = source_queue(order.data_source, "default")
            if queue != "default":
                # Bars from a source held by its own worker (IBKR's one connection) are read there.
                process_paper_order_task.apply_async(args=[order.id], queue=queue)
                counts["dispatched"] += 1
                continue
            try:
                paper_order_process(order_id=order.id)
                counts["paper"] += 1
            except Exception:  # one order's missing data must not stop the others
                logger.exception("paper order %s could not be processed", order.id)
                counts["errors"] += 1
        if Order.objects.filter(broker=self.name).exists():
            _snapshot(self.create())
        return counts


def _snapshot(broker) -> None:
    """The equity curve gets a point when equity moved, and at least every SNAPSHOT_EVERY otherwise."""
    from brokers.models import AccountSnapshot

    last = AccountSnapshot.objects.filter(broker=Paper.name).order_by("-taken_at", "-id").first()
    equity = Decimal(str(round(broker.account_summary().equity, 6)))
    if last is None or last.equity != equity or timezone.now() - last.taken_at >= SNAPSHOT_EVERY:
        broker.snapshot()
