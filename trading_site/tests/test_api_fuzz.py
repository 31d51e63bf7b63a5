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
from collections.abc import Iterator
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
from conftest import edge, node
from strategies.schedules.services import schedule_create
from strategies.services import prompts_seed
from strategies.tests.strategy_helpers import make_strategy
from trading_site.wsgi import application
from workflows import engine, services
from workflows.models import Approval, ApprovalStatus, StepStatus, Template

# Generated requests per operation: 57 operations x this stays around a minute on a slow 2-core machine.
MAX_EXAMPLES = 25


def _api_schema() -> dict[str, Any]:
    """What `/api/schema/` serves (to logged-in users only, so it is made here, as
    `manage.py spectacular` does)."""
    generated = SchemaGenerator().get_schema(request=None, public=True)
    return json.loads(OpenApiJsonRenderer().render(generated))


schema = schemathesis.openapi.from_dict(_api_schema())
schema.app = application  # requests go through the WSGI app in this process


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


@pytest.fixture
def api_objects(staff_user, no_dispatch) -> dict[str, Any]:
    """One real object of each kind the path parameters name, owned by the fuzzing user."""
    strategy = make_strategy(staff_user)
    workflow = strategy.workflow
    first = workflow.versions.get(number=1)
    services.version_save(workflow=workflow, author=staff_user, graph=first.graph, message="second")
    run = engine.run_start(workflow=workflow, user=staff_user, symbol="AAPL")
    schedule = schedule_create(strategy=strategy, cron="30 10 * * 1-5")
    prompt = prompts_seed()[0]
    template = Template.objects.create(slug="fuzz-template", name="Fuzz", description="d", graph=_approval_graph())
    return {
        "workflows": {"id": workflow.pk, "number": 1},
        "runs": {"id": run.pk},
        "strategies": {"id": strategy.pk, "strategy_pk": strategy.pk},
        "schedules": {"strategy_pk": strategy.pk, "id": schedule.pk},
        "orders": {"id": make_order(staff_user).pk},
        "approvals": {"id": _pending_approval(staff_user).pk},
        "prompts": {"key": prompt.key},
        "templates": {"slug": template.slug},
    }


def _fixture_parameters(path: str, objects: dict[str, Any]) -> dict[str, Any]:
    """The real ids for a path's parameters: `/api/<kind>/...`, schedules under their strategy."""
    kind = "schedules" if "/schedules/" in path else path.split("/")[2]
    return objects.get(kind, {})


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
    known = _fixture_parameters(case.path, api_objects)
    if case.path_parameters:
        case.path_parameters = {name: known.get(name, value) for name, value in case.path_parameters.items()}
    response = case.call(headers=session["headers"], cookies=session["cookies"])
    case.validate_response(response, checks=[not_a_server_error])
