"""Rows for the trading pages' and API's tests: a run, orders, fills, positions, decisions."""

import itertools
from decimal import Decimal

from django.utils import timezone

from brokers.models import Fill, Order, OrderStatus
from conftest import chain_graph
from strategies.models import AiRecord
from workflows import engine, services
from workflows.models import Run, StepRun

_keys = itertools.count(1)


def make_run(owner, *, symbol: str = "AAPL") -> Run:
    """A run of a one-step test workflow (no dispatch: use the no_dispatch fixture)."""
    workflow = services.workflow_create(owner=owner, name=f"wf {next(_keys)}", graph=chain_graph())
    return engine.run_start(workflow=workflow, user=owner, symbol=symbol)


def make_order(owner, *, status: str = OrderStatus.SUBMITTED, symbol: str = "AAPL", **fields) -> Order:
    values = {
        "key": f"test-order-{next(_keys)}",
        "owner": owner,
        "broker": "paper",
        "symbol": symbol,
        "side": "BUY",
        "quantity": 10,
        "entry_price": Decimal("100"),
        "take_profit": Decimal("110"),
        "stop_loss": Decimal("95"),
        "r_planned": 2.0,
        "status": status,
        **fields,
    }
    return Order.objects.create(**values)


def make_fill(order: Order, *, leg: str = "entry", price: str = "100", commission: str = "1") -> Fill:
    return Fill.objects.create(
        order=order,
        leg=leg,
        exec_id=f"{order.key}:{leg}",
        quantity=order.quantity,
        price=Decimal(price),
        commission=Decimal(commission),
        time=timezone.now(),
    )


def make_step(run: Run, *, node_id: str, step_type: str, outputs: dict, status: str = "succeeded") -> StepRun:
    return StepRun.objects.create(run=run, node_id=node_id, step_type=step_type, status=status, outputs=outputs)


def make_decision(run: Run, *, action: str = "BUY", analyst: str = "offline", **fields) -> AiRecord:
    values = {
        "run": run,
        "step_run": run.steps.order_by("id").first(),
        "node_id": "decide",
        "symbol": run.symbol,
        "kind": "decision",
        "analyst": analyst,
        "action": action,
        "result": {"action": action, "reasoning": f"Reasoning for {action} {run.symbol}", "confidence": "medium"},
        **fields,
    }
    return AiRecord.objects.create(**values)


def risk_outputs(*, passed: bool, r: float | None, reasons: list[str]) -> dict:
    return {
        "risk": {"checked_by": "risk.r_check", "passed": passed, "r": r, "reasons": reasons, "limits": {"min_r": 1.5}}
    }
