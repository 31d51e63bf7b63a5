"""Workflows and strategies for the strategy and schedule tests."""

from __future__ import annotations

from typing import Any

from strategies import services as strategy_services
from strategies.models import Strategy
from workflows import services
from workflows.models import Workflow
from workflows.tests import step_types  # noqa: F401 - registers test.source

SYMBOLS = ["AAPL", "MSFT", "IBM"]


def fetch_graph(*, tag_node_param: str = "{{tag}}") -> dict[str, Any]:
    """Bars fetched over {{period_1}} (a real step with a schema) beside two test steps: one taking
    {{tag}}, one with a literal tag that no override may change (step params come first)."""
    return {
        "schema": 1,
        "params": {"period_1": "1y", "bar_1": "1d", "tag": "daily"},
        "nodes": [
            {
                "id": "fetch",
                "type": "market.fetch_bars",
                "params": {"symbol": "{{symbol}}", "period": "{{period_1}}", "bar": "{{bar_1}}"},
            },
            {"id": "tagged", "type": "test.source", "params": {"tag": tag_node_param}},
            {"id": "literal", "type": "test.source", "params": {"tag": "literal"}},
        ],
        "edges": [],
    }


def make_workflow(owner, *, name: str = "Fetch", graph: dict | None = None) -> Workflow:
    return services.workflow_create(owner=owner, name=name, graph=graph or fetch_graph())


def make_strategy(owner, *, workflow: Workflow | None = None, **fields: Any) -> Strategy:
    workflow = workflow or make_workflow(owner)
    values = {"name": "Three symbols", "symbols": SYMBOLS, "overrides": {"period_1": "2y"}, **fields}
    return strategy_services.strategy_create(owner=owner, workflow_id=workflow.pk, **values)
