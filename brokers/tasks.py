from celery import shared_task


@shared_task(name="brokers.tasks.sync_orders")
def sync_orders_task() -> dict[str, int]:
    from brokers.sync import orders_sync

    return orders_sync()


@shared_task(name="brokers.tasks.process_paper_order")
def process_paper_order_task(order_id: int) -> None:
    from brokers.paper import paper_order_process

    paper_order_process(order_id=order_id)


@shared_task(name="brokers.tasks.cancel_order")
def cancel_order_task(order_id: int, reason: str) -> None:
    from brokers.models import Order
    from brokers.services import broker_get, order_cancel

    order = Order.objects.get(id=order_id)
    order_cancel(order=order, reason=reason, client=broker_get(order.broker))


@shared_task(name="brokers.tasks.sync_ibkr")
def sync_ibkr_task() -> int:
    from brokers.sync import ibkr_sync

    return ibkr_sync()
