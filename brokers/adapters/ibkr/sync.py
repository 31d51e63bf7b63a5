"""On the ibkr worker: IBKR's order events let in, the account recorded, and the connection's state kept
for the pages (the web process never connects)."""

from __future__ import annotations

import logging
from decimal import Decimal

from django.utils import timezone

from brokers.models import AccountSnapshot

logger = logging.getLogger(__name__)

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
