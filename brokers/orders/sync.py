"""Keeping our Order rows and the account's equity curve current (beat: every ORDERS_SYNC_INTERVAL_S).

Each registered broker does its part (`BrokerKind.sync`): the paper broker fills its orders against the
bars that arrived since the last sync; IBKR's orders are followed by their status events, which the
ibkr worker's sync (brokers/adapters/ibkr/sync.py) lets in.
"""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)


def orders_sync() -> dict[str, int]:
    """The kill switch's sweep, then each registered broker's own sync; their counts added up."""
    from brokers.adapters.registry import broker_kinds
    from brokers.orders.services import kill_switch_sweep

    counts = {"paper": 0, "dispatched": 0, "errors": 0, "cancelled": kill_switch_sweep()}
    for kind in broker_kinds.all():
        try:
            done = kind.sync()
        except Exception:  # one broker's failure (its worker's queue unreachable) must not stop the others
            logger.exception("orders sync of broker %s failed", kind.name)
            done = {"errors": 1}
        for name, count in done.items():
            counts[name] = counts.get(name, 0) + count
    return counts
