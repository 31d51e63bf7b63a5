"""Keeping our Order rows and the account's equity curve current (beat: every ORDERS_SYNC_INTERVAL_S).

Paper orders are filled against bars that arrived since the last sync; those fed by IBKR data are
processed on the ibkr worker, which holds the one IBKR connection. IBKR orders are followed by
their status events; the ibkr worker's sync lets those events in and records the account.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from brokers.models import AccountSnapshot, Order, OrderStatus
from brokers.orders.selectors import orders_open

logger = logging.getLogger(__name__)


def orders_sync() -> dict[str, int]:
    from brokers.adapters.paper.broker import PaperBroker, paper_order_process
    from brokers.orders.services import kill_switch_sweep
    from brokers.tasks import process_paper_order_task, sync_ibkr_task

    counts = {"paper": 0, "dispatched": 0, "errors": 0, "cancelled": kill_switch_sweep()}
    for order in orders_open(broker="paper").filter(status__in=[OrderStatus.SUBMITTED, OrderStatus.FILLED]):
        if order.data_source == "ibkr":
            process_paper_order_task.apply_async(args=[order.id], queue="ibkr")
            counts["dispatched"] += 1
            continue
        try:
            paper_order_process(order_id=order.id)
            counts["paper"] += 1
        except Exception:  # one order's missing data must not stop the others
            logger.exception("paper order %s could not be processed", order.id)
            counts["errors"] += 1
    if Order.objects.filter(broker="paper").exists():
        _paper_snapshot(PaperBroker())
    if orders_open(broker="ibkr").exists():
        sync_ibkr_task.apply_async(queue="ibkr")
        counts["dispatched"] += 1
    return counts


# The equity curve gets a point when equity moved, and at least this often otherwise.
SNAPSHOT_EVERY = timedelta(minutes=15)


def _paper_snapshot(broker) -> None:
    last = AccountSnapshot.objects.filter(broker="paper").order_by("-taken_at", "-id").first()
    equity = Decimal(str(round(broker.account_summary().equity, 6)))
    if last is None or last.equity != equity or timezone.now() - last.taken_at >= SNAPSHOT_EVERY:
        broker.snapshot()


# The ibkr worker's last word on its connection, for the pages (the web process never connects).
CONNECTION_KEY = "ibkr-connection-status"


def _remember(**status) -> None:
    from django.core.cache import cache

    cache.set(CONNECTION_KEY, {**status, "broker": "ibkr", "checked_at": timezone.now()}, timeout=None)


def ibkr_sync() -> int:
    """On the ibkr worker: let IBKR's events update our orders, then record the account."""
    from brokers.adapters.base import BrokerUnavailable
    from brokers.orders.services import broker_get

    broker = broker_get("ibkr")
    try:
        # Reads IBKR's pending messages (reconnecting a dropped connection first): status and fill
        # events reach order_status_apply and order_execution_apply.
        delivered = broker.process_events(wait_s=1.0)
        summary = broker.account_summary()
    except BrokerUnavailable as exc:
        logger.warning("IBKR sync skipped: %s", exc)
        _remember(connected=False, detail=str(exc))
        return 0
    status = broker.connection_status()
    _remember(connected=status.connected, account=status.account, mode=status.mode, detail=status.detail)
    AccountSnapshot.objects.create(
        broker="ibkr",
        account=summary.account,
        mode=summary.mode,
        taken_at=timezone.now(),
        equity=Decimal(str(round(summary.equity, 6))),
        cash=Decimal(str(round(summary.cash, 6))),
        realized_pnl=Decimal(str(round(summary.realized_pnl, 6))),
        unrealized_pnl=Decimal(str(round(summary.unrealized_pnl, 6))),
    )
    return delivered
