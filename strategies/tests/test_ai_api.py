"""Prompt templates through the API and the admin, and a run's AI records through the API."""

import pytest
from django.urls import reverse

from strategies.models import AiRecord, PromptTemplate
from strategies.services import prompt_save, prompts_seed
from workflows import engine, services
from workflows.errors import ApplicationError

pytestmark = pytest.mark.django_db


def test_prompts_list_needs_a_login_and_seeds_the_defaults(client, user):
    assert client.get(reverse("api-prompts")).status_code == 403
    client.force_login(user)
    body = client.get(reverse("api-prompts")).json()
    assert {p["key"] for p in body} == {"chart_daily", "chart_weekly", "consolidate", "decide"}
    chart = next(p for p in body if p["key"] == "chart_daily")
    assert chart["version"] == 1 and chart["kind"] == "chart" and "last_close" in chart["placeholders"]


def test_only_staff_save_prompt_versions(client, user, staff_user):
    prompts_seed()
    payload = {"title": "Daily", "system": "Be careful. {{symbol}}", "user": "Chart of {{symbol}} ({{bar}})"}
    url = reverse("api-prompt-versions", args=["chart_daily"])
    client.force_login(user)
    assert client.post(url, payload, content_type="application/json").status_code == 403
    client.force_login(staff_user)
    response = client.post(url, {**payload, "message": "Shorter"}, content_type="application/json")
    assert response.status_code == 201, response.content
    assert (response.json()["version"], response.json()["created_by"]) == (2, "carol")
    versions = client.get(url).json()
    assert [v["version"] for v in versions] == [2, 1]
    assert PromptTemplate.objects.get(key="chart_daily", version=1).system != payload["system"]  # kept as it was


def test_a_placeholder_the_kind_cannot_fill_is_a_clear_400(client, staff_user):
    prompts_seed()
    client.force_login(staff_user)
    url = reverse("api-prompt-versions", args=["decide"])
    response = client.post(
        url, {"title": "x", "system": "{{symbol}} {{charts}}", "user": "u"}, content_type="application/json"
    )
    assert response.status_code == 400
    assert "{{charts}}" in response.json()["detail"] and "decide prompt" in response.json()["detail"]
    assert PromptTemplate.objects.filter(key="decide").count() == 1


def test_a_new_key_needs_a_kind(client, staff_user):
    client.force_login(staff_user)
    url = reverse("api-prompt-versions", args=["my-swing"])
    body = {"title": "Swing", "system": "s {{symbol}}", "user": "u {{analysis}}"}
    assert client.post(url, body, content_type="application/json").status_code == 400
    response = client.post(url, {**body, "kind": "decide"}, content_type="application/json")
    assert response.status_code == 201 and response.json()["version"] == 1
    assert client.get(reverse("api-prompt-versions", args=["nope"])).status_code == 404


def test_prompt_kind_cannot_change_and_versions_are_immutable(user):
    prompts_seed()
    with pytest.raises(ApplicationError, match="is a chart prompt"):
        prompt_save(key="chart_daily", kind="decide", title="t", system="s", user="u", author=user)
    prompt = PromptTemplate.objects.get(key="chart_daily")
    prompt.system = "changed"
    with pytest.raises(TypeError):
        prompt.save()
    with pytest.raises(TypeError):
        PromptTemplate.objects.filter(key="chart_daily").update(system="changed")


def test_admin_edit_saves_the_next_version(client, django_user_model):
    admin = django_user_model.objects.create_superuser("root", password="pw-root-123")
    prompts_seed()
    v1 = PromptTemplate.objects.get(key="consolidate")
    client.force_login(admin)
    url = reverse("admin:strategies_prompttemplate_change", args=[v1.pk])
    form = {"title": v1.title, "system": v1.system + "\nWeekly first.", "user": v1.user, "message": "weekly first"}
    response = client.post(url, form)
    assert response.status_code == 302, response.content[:2000]
    assert list(PromptTemplate.objects.filter(key="consolidate").values_list("version", "message")) == [
        (2, "weekly first"),
        (1, "Built-in default"),
    ]
    assert PromptTemplate.objects.get(pk=v1.pk).system == v1.system
    bad = client.post(url, {**form, "system": "{{nope}}"})
    assert bad.status_code == 200 and "{{nope}}" in bad.content.decode()
    assert PromptTemplate.objects.filter(key="consolidate").count() == 2


def test_run_ai_records_visible_to_the_owner_only(client, user, other_user, no_dispatch):
    graph = {
        "schema": 1,
        "params": {},
        "nodes": [{"id": "f", "type": "market.fetch_bars", "params": {"symbol": "{{symbol}}"}}],
        "edges": [],
    }
    workflow = services.workflow_create(owner=user, name="w", graph=graph)
    run = engine.run_start(workflow=workflow, user=user, symbol="MSFT")
    AiRecord.objects.create(
        run=run, step_run=run.steps.get(), node_id="f", symbol="MSFT", kind="decision", analyst="offline", action="HOLD"
    )
    url = reverse("api-run-ai-records", args=[run.pk])
    assert client.get(url).status_code == 403
    client.force_login(other_user)
    assert client.get(url).status_code == 404
    client.force_login(user)
    body = client.get(url).json()
    assert [(r["kind"], r["action"], r["analyst"]) for r in body] == [("decision", "HOLD", "offline")]


def test_workflow_budget_through_the_api(client, user):
    graph = {
        "schema": 1,
        "params": {},
        "nodes": [{"id": "f", "type": "market.fetch_bars", "params": {"symbol": "{{symbol}}"}}],
        "edges": [],
    }
    workflow = services.workflow_create(owner=user, name="w", graph=graph)
    client.force_login(user)
    url = f"/api/workflows/{workflow.pk}/"
    response = client.patch(
        url, {"ai_token_budget": 5000, "ai_cost_budget_usd": "0.25"}, content_type="application/json"
    )
    assert response.status_code == 200, response.content
    assert (response.json()["ai_token_budget"], response.json()["ai_cost_budget_usd"]) == (5000, "0.2500")
    bad = client.patch(url, {"ai_cost_budget_usd": "-1"}, content_type="application/json")
    assert bad.status_code == 400 and "ai_cost_budget_usd" in bad.content.decode()
