"""Task names travel in queued messages and beat's schedule rows: a module may move, its tasks' names
may not (a message queued before a deploy must still be understood after it)."""

from trading_site.celery import app

WIRE_NAMES = {
    "workflows.tasks.execute_step",
    "workflows.tasks.sweep_steps",
    "workflows.tasks.expire_approvals",
    "workflows.alerts.run_finished",
    "workflows.alerts.alert",
    "brokers.tasks.sync_orders",
    "brokers.tasks.process_paper_order",
    "brokers.tasks.cancel_order",
    "brokers.tasks.sync_ibkr",
    "strategies.tasks.run_scheduled_strategy",
}


def test_every_task_keeps_its_name_on_the_wire():
    app.loader.import_default_modules()
    assert set(app.tasks) >= WIRE_NAMES, sorted(WIRE_NAMES - set(app.tasks))
