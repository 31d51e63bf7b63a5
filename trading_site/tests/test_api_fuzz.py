"""The REST API fuzzed from its own OpenAPI schema (schemathesis): no generated request is a 500.

Every operation of `/api/schema/` gets a bounded, derandomized set of generated requests, sent
through the WSGI app in this process as a logged-in staff user (so staff-only operations run too).
Operations on one object get the id of a real one made first (a workflow with versions, a run, a
strategy with a schedule, an order, a pending approval, a prompt, a template), so they reach their
validation and their writes instead of stopping at a 404. Only server errors fail the test: a 4xx
is the API refusing bad input, which is its job.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import hypothesis
import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.middleware.csrf import _get_new_csrf_string
from django.test import Client
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from schemathesis.checks import not_a_server_error

from brokers.tests.factories import make_order
from conftest import chain_graph, edge, node
from strategies.schedules.services import schedule_create
from strategies.services import prompts_seed
from strategies.tests.strategy_helpers import make_strategy
from trading_site.wsgi import application
from workflows import engine, services
from workflows.models import Approval, ApprovalStatus, RunStatus, StepStatus, Template

# Generated requests per operation (plus the schema's examples): 56 operations x 10 is about a
# minute of CPU on a slow 2-core machine, mostly hypothesis generating the bodies.
MAX_EXAMPLES = 10


def _api_schema() -> dict[str, Any]:
    """What `/api/schema/` serves (to logged-in users only, so it is made here, as
    `manage.py spectacular` does)."""
    generated = SchemaGenerator().get_schema(request=None, public=True)
    return json.loads(OpenApiJsonRenderer().render(generated))


schema = schemathesis.openapi.from_dict(_api_schema())
schema.app = application  # requests go through the WSGI app in this process
# The coverage phase sends every boundary and negative variant of every parameter: thousands of
# requests, minutes on a slow machine. Explicit examples and MAX_EXAMPLES generated ones keep it bounded.
schema.config.phases.coverage.enabled = False
# The queues answer takes no input to fuzz and waits about a second for workers to answer each
# time; workflows/tests/test_queue.py tests it.
schema = schema.exclude(path="/api/queues/")


def _approval_graph() -> dict[str, Any]:
    nodes = [node("src", "test.source"), node("ask", "flow.approval", message="Buy?"), node("after", "test.echo")]
    edges = [edge("src", "ask", target_port="item"), edge("ask", "after", source_port="item")]
    return {"schema": 1, "params": {}, "nodes": nodes, "edges": edges}


def _pending_approval(owner) -> Approval:
    """A run parked on a flow.approval step, its steps executed here (no worker, no dispatch)."""
    workflow = services.workflow_create(owner=owner, name="Approval", graph=_approval_graph())
    run = engine.run_start(workflow=workflow, user=owner, symbol="IBM")
    for node_id in ("src", "ask"):
        engine.step_run_execute(step_run_id=run.steps.get(node_id=node_id).id)
    approval = Approval.objects.get(run=run)
    assert approval.status == ApprovalStatus.PENDING and approval.step_run.status == StepStatus.WAITING
    approval.expires_at = timezone.now() + timedelta(days=1)
    approval.save(update_fields=["expires_at"])
    return approval


def _workflow_objects(owner) -> dict[str, Any]:
    workflow = make_strategy(owner).workflow
    first = workflow.versions.get(number=1)
    services.version_save(workflow=workflow, author=owner, graph=first.graph, message="second")
    return {"id": workflow.pk, "number": 1}


def _schedule_objects(owner) -> dict[str, Any]:
    strategy = make_strategy(owner)
    return {"strategy_pk": strategy.pk, "id": schedule_create(strategy=strategy, cron="30 10 * * 1-5").pk}


def _strategy_objects(owner) -> dict[str, Any]:
    strategy = make_strategy(owner)
    return {"id": strategy.pk, "strategy_pk": strategy.pk, "workflow": strategy.workflow_id}


def _run_objects(owner) -> dict[str, Any]:
    """A finished run (its one step executed here), so a rerun is allowed."""
    workflow = services.workflow_create(owner=owner, name="Run", graph=chain_graph())
    run = engine.run_start(workflow=workflow, user=owner, symbol="AAPL")
    engine.step_run_execute(step_run_id=run.steps.get().id)
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error
    return {"id": run.pk}


def _template_objects(owner) -> dict[str, Any]:
    graph = _approval_graph()
    return {"slug": Template.objects.create(slug="fuzz-template", name="Fuzz", description="d", graph=graph).slug}


# What each `/api/<kind>/...` path's parameters name, made on first use (most operations need none).
_MAKERS: dict[str, Callable[[Any], dict[str, Any]]] = {
    "workflows": _workflow_objects,
    "runs": _run_objects,
    "strategies": _strategy_objects,
    "schedules": _schedule_objects,
    "orders": lambda owner: {"id": make_order(owner).pk},
    "approvals": lambda owner: {"id": _pending_approval(owner).pk},
    "prompts": lambda owner: {"key": prompts_seed()[0].key},
    "templates": _template_objects,
}


@pytest.fixture
def api_objects(staff_user, no_dispatch) -> Callable[[str], dict[str, Any]]:
    """The path parameters of a real object of the kind a path names, owned by the fuzzing user;
    made once per operation, on its first example."""
    made: dict[str, dict[str, Any]] = {}

    def for_path(path: str) -> dict[str, Any]:
        kind = "schedules" if "/schedules/" in path else path.split("/")[2]
        if kind not in made:
            made[kind] = _MAKERS[kind](staff_user)
        return made[kind]

    return for_path


@pytest.fixture
def session(staff_user) -> Iterator[dict[str, Any]]:
    """A logged-in staff user's session cookie and a matching CSRF cookie and header (DRF's
    SessionAuthentication enforces CSRF on writes)."""
    client = Client()
    client.force_login(staff_user)
    csrf = _get_new_csrf_string()
    # The WSGI app runs in this thread on the test's connection, inside its transaction: Django
    # would close that connection at the end of each request (its test client disconnects this
    # handler too).
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield {
            "cookies": {"sessionid": client.cookies["sessionid"].value, "csrftoken": csrf},
            "headers": {"X-CSRFToken": csrf},
        }
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@schema.parametrize()
@hypothesis.settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,  # the same requests on every run: a failure is never a fluke of the seed
    database=None,
    deadline=None,
    suppress_health_check=list(hypothesis.HealthCheck),
)
def test_no_request_is_a_server_error(case, api_objects, session) -> None:
    if case.path_parameters:
        known = api_objects(case.path)
        case.path_parameters = {name: known.get(name, value) for name, value in case.path_parameters.items()}
    if (
        case.path.startswith("/api/strategies/")
        and isinstance(case.body, dict)
        and isinstance(case.body.get("workflow"), int)
    ):
        # A strategy names a workflow of its owner: a generated id is one the user cannot use.
        case.body = {**case.body, "workflow": api_objects("/api/strategies/")["workflow"]}
    response = case.call(headers=session["headers"], cookies=session["cookies"])
    case.validate_response(response, checks=[not_a_server_error])
