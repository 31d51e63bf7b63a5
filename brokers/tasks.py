"""Celery tasks of orders: the sync (beat), paper fills, cancels, and the ibkr worker's sync."""

import logging

from celery import shared_task

from brokers.adapters.base import BrokerUnavailable

logger = logging.getLogger(__name__)


@shared_task(name="brokers.tasks.sync_orders")
def sync_orders_task() -> dict[str, int]:
    from brokers.orders.sync import orders_sync

    return orders_sync()


@shared_task(name="brokers.tasks.process_paper_order")
def process_paper_order_task(order_id: int) -> None:
    from brokers.adapters.paper.broker import paper_order_process

    paper_order_process(order_id=order_id)


# A cancel the kill switch asked for must not be lost to a dropped connection: retried for ~10 minutes
# (and the orders sync cancels again while the switch is on).
@shared_task(
    name="brokers.tasks.cancel_order",
    autoretry_for=(BrokerUnavailable,),
    retry_backoff=5,
    retry_backoff_max=120,
    max_retries=10,
)
def cancel_order_task(order_id: int, reason: str) -> None:
    from brokers.models import Order
    from brokers.orders.services import broker_get, order_cancel
    from workflows.errors import ApplicationError

    order = Order.objects.get(id=order_id)
    try:
        order_cancel(order=order, reason=reason, client=broker_get(order.broker))
    except ApplicationError as exc:  # filled or cancelled meanwhile: nothing left to cancel
        logger.info("order %s not cancelled: %s", order.key, exc.message)


@shared_task(name="brokers.tasks.sync_ibkr")
def sync_ibkr_task() -> int:
    from brokers.adapters.ibkr.sync import ibkr_sync

    return ibkr_sync()
