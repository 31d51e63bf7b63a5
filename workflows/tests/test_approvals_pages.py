"""The Approvals page, its API and the nav badge: owner, other user, anonymous, staff.

A run is parked at its flow.approval step as the engine leaves it (step WAITING, run WAITING,
one PENDING Approval); deciding resumes the step through engine.step_resume."""

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from conftest import edge, node
from workflows import engine, services
from workflows.approvals.services import approval_request
from workflows.models import Approval, ApprovalStatus, Run, RunStatus, StepStatus

pytestmark = pytest.mark.usefixtures("no_dispatch")

GRAPH = {
    "schema": 1,
    "params": {},
    "nodes": [node("src", "test.source"), node("approve", "flow.approval", message="Buy it?")],
    "edges": [edge("src", "approve", "out", "item")],
}
PLAN = {
    "symbol": "AAPL",
    "side": "BUY",
    "entry": 100.0,
    "stop_loss": 95.0,
    "take_profit": 112.5,
    "r": 2.5,
    "quantity": 10,
    "notional": 1000.0,
    "passed": True,
}


def parked(owner) -> Approval:
    """A run waiting at its approval step, with its pending Approval."""
    workflow = services.workflow_create(owner=owner, name="Approve me", graph=GRAPH)
    run = engine.run_start(workflow=workflow, user=owner, symbol="AAPL")
    run.steps.filter(node_id="src").update(status=StepStatus.SUCCEEDED, outputs={"out": PLAN})
    step = run.steps.get(node_id="approve")
    step.status, step.inputs = StepStatus.WAITING, {"item": PLAN}
    step.save()
    Run.objects.filter(id=run.id).update(status=RunStatus.WAITING)
    summary = {k: PLAN[k] for k in ("symbol", "side", "entry", "stop_loss", "take_profit", "r", "quantity")}
    return approval_request(step_run_id=step.id, message="Buy it?", summary=summary, quantity=10, expires_after_min=60)


@pytest.fixture
def approval(user) -> Approval:
    return parked(user)


def body(response) -> str:
    return response.content.decode()


def test_page_shows_pending_with_summary_and_nav_badge(client, user, approval):
    client.force_login(user)
    text = body(client.get(reverse("approval-list")))
    assert reverse("approval-approve", args=[approval.pk]) in text
    assert reverse("approval-reject", args=[approval.pk]) in text
    assert reverse("run-detail", args=[approval.run_id]) in text
    for value in ("AAPL", "BUY", "100.0", "95.0", "112.5", "2.50", "Buy it?"):
        assert value in text, value
    assert 'class="nav-count"' in text and ">1</span>" in text
    # The badge is on every page.
    assert 'class="nav-count"' in body(client.get(reverse("run-list")))


def test_page_renders_empty_without_badge(client, user):
    client.force_login(user)
    text = body(client.get(reverse("approval-list")))
    assert "Nothing waits for an approval" in text and "No approvals decided yet" in text
    assert 'class="nav-count"' not in text


def test_approve_with_another_quantity_resumes_the_step(client, user, approval):
    client.force_login(user)
    response = client.post(
        reverse("approval-approve", args=[approval.pk]), {"quantity": "7", "comment": "half size"}, follow=True
    )
    assert response.status_code == 200
    assert "approved for 7 shares" in body(response)
    approval.refresh_from_db()
    assert (approval.status, approval.approved_quantity, approval.decided_by) == ("approved", 7, user)
    assert approval.comment == "half size"
    step = approval.step_run
    step.refresh_from_db()
    assert step.status == StepStatus.SUCCEEDED
    assert step.outputs["item"]["quantity"] == 7
    assert step.outputs["item"]["approval"]["by"] == user.username
    assert Run.objects.get(id=approval.run_id).status == RunStatus.SUCCEEDED
    # Decided: it moves to the recent list, and the badge goes.
    text = body(response)
    assert 'class="nav-count"' not in text and "half size" in text


def test_reject_resumes_the_step_without_approval(client, user, approval):
    client.force_login(user)
    assert client.post(reverse("approval-reject", args=[approval.pk]), {"comment": "no"}).status_code == 302
    approval.refresh_from_db()
    assert approval.status == ApprovalStatus.REJECTED and approval.approved_quantity is None
    approval.step_run.refresh_from_db()
    assert approval.step_run.status == StepStatus.SUCCEEDED
    assert approval.step_run.outputs["item"]["approval"]["approved"] is False


@pytest.mark.parametrize("quantity", ["abc", "-3", "1.5", "0"])
def test_bad_quantity_is_a_400_and_changes_nothing(client, user, approval, quantity):
    client.force_login(user)
    response = client.post(reverse("approval-approve", args=[approval.pk]), {"quantity": quantity})
    assert response.status_code == 400
    assert "Quantity must be a whole number" in body(response)
    approval.refresh_from_db()
    assert approval.status == ApprovalStatus.PENDING
    approval.step_run.refresh_from_db()
    assert approval.step_run.status == StepStatus.WAITING


def test_deciding_twice_is_a_400(client, user, approval):
    client.force_login(user)
    client.post(reverse("approval-reject", args=[approval.pk]))
    response = client.post(reverse("approval-approve", args=[approval.pk]))
    assert response.status_code == 400
    assert "already rejected" in body(response)


def test_other_user_gets_404_and_sees_nothing(client, other_user, approval):
    client.force_login(other_user)
    text = body(client.get(reverse("approval-list")))
    assert reverse("approval-approve", args=[approval.pk]) not in text
    assert 'class="nav-count"' not in text
    assert client.post(reverse("approval-approve", args=[approval.pk])).status_code == 404
    assert client.post(reverse("approval-reject", args=[approval.pk])).status_code == 404
    approval.refresh_from_db()
    assert approval.status == ApprovalStatus.PENDING


def test_staff_see_and_decide_others_approvals(client, staff_user, approval):
    client.force_login(staff_user)
    assert reverse("approval-approve", args=[approval.pk]) in body(client.get(reverse("approval-list")))
    assert client.post(reverse("approval-approve", args=[approval.pk])).status_code == 302
    approval.refresh_from_db()
    assert approval.status == ApprovalStatus.APPROVED and approval.approved_quantity == 10


def test_anonymous_is_sent_to_login(client, approval):
    for method, url in [
        ("get", reverse("approval-list")),
        ("post", reverse("approval-approve", args=[approval.pk])),
        ("post", reverse("approval-reject", args=[approval.pk])),
    ]:
        response = getattr(client, method)(url)
        assert response.status_code == 302 and response["Location"].startswith(reverse("login")), url
    approval.refresh_from_db()
    assert approval.status == ApprovalStatus.PENDING


# API


@pytest.fixture
def api():
    return APIClient()


def test_api_lists_pending_approvals(api, user, other_user, approval):
    decided = parked(user)
    api.force_authenticate(user)
    api.post(f"/api/approvals/{decided.pk}/reject/", {}, format="json")
    pending = api.get("/api/approvals/", {"status": "pending"}).json()
    assert [a["id"] for a in pending["results"]] == [approval.pk]
    assert pending["results"][0]["summary"]["r"] == 2.5 and pending["results"][0]["symbol"] == "AAPL"
    assert {a["id"] for a in api.get("/api/approvals/").json()["results"]} == {approval.pk, decided.pk}
    assert api.get("/api/approvals/", {"status": "bogus"}).status_code == 400
    api.force_authenticate(other_user)
    assert api.get("/api/approvals/", {"status": "pending"}).json()["count"] == 0


def test_api_approve_with_quantity_and_bad_quantity(api, user, approval):
    api.force_authenticate(user)
    url = f"/api/approvals/{approval.pk}/approve/"
    for bad in ("abc", 0, -1, True):
        response = api.post(url, {"quantity": bad}, format="json")
        assert response.status_code == 400, bad
        assert "quantity" in response.json(), response.json()
    approval.refresh_from_db()
    assert approval.status == ApprovalStatus.PENDING
    response = api.post(url, {"quantity": 4, "comment": "small"}, format="json")
    assert response.status_code == 200, response.content
    assert (response.json()["status"], response.json()["approved_quantity"]) == ("approved", 4)
    approval.step_run.refresh_from_db()
    assert approval.step_run.status == StepStatus.SUCCEEDED
    assert approval.step_run.outputs["item"]["quantity"] == 4
    again = api.post(url, {}, format="json")
    assert again.status_code == 400 and "already approved" in again.json()["detail"]


def test_api_reject(api, user, approval):
    api.force_authenticate(user)
    response = api.post(f"/api/approvals/{approval.pk}/reject/", {"comment": "too risky"}, format="json")
    assert response.status_code == 200
    assert (response.json()["status"], response.json()["comment"]) == ("rejected", "too risky")


def test_api_other_user_404_and_anonymous_403(api, other_user, approval):
    urls = [f"/api/approvals/{approval.pk}/approve/", f"/api/approvals/{approval.pk}/reject/"]
    for url in urls:
        assert api.post(url, {}, format="json").status_code == 403
    assert api.get("/api/approvals/").status_code == 403
    api.force_authenticate(other_user)
    for url in urls:
        assert api.post(url, {}, format="json").status_code == 404
    assert api.get(f"/api/approvals/{approval.pk}/").status_code == 404
    approval.refresh_from_db()
    assert approval.status == ApprovalStatus.PENDING
