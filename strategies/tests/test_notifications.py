"""A strategy's own notifications: its runs' decision with the chart, the order and failures reach
the channels its StrategyNotification rows name, as each row asked; once per run and row."""

import json

import pytest
from django.db import transaction

from conftest import chain_graph, node
from strategies.admin import StrategyNotificationForm
from strategies.models import Strategy, StrategyBatch, StrategyNotification
from strategies.notify.services import notify_run_finished
from workflows import engine, services
from workflows.models import NotificationLog, RunStatus
from workflows.notify import services as notify
from workflows.tests.receiver import Receiver, tiny_png

DISCORD_SECRET = "SECRET-strategy-discord-1"
TELEGRAM_TOKEN = "999:SECRET-strategy-telegram"


@pytest.fixture
def receiver():
    with Receiver() as r:
        yield r


@pytest.fixture(autouse=True)
def _channels(settings, receiver, monkeypatch):
    settings.NOTIFY_CHANNELS = {
        "desk": {"kind": "discord", "url": f"{receiver.url}/api/webhooks/1/{DISCORD_SECRET}"},
        "phone": {"kind": "telegram", "token": TELEGRAM_TOKEN, "chat_id": 5, "api_base": receiver.url},
    }
    settings.NOTIFY_ALERTS_CHANNEL = ""
    settings.NOTIFY_TIMEOUT_S = 0.5
    settings.PUBLIC_BASE_URL = ""
    monkeypatch.setattr(notify, "RETRY_DELAY_S", 0)


def _trade_graph(action: str = "BUY") -> dict:
    return {"schema": 1, "params": {}, "nodes": [node("trade", "test.trade_outputs", action=action)], "edges": []}


def _strategy(user, graph: dict, *, name: str = "Momentum", **notifications) -> Strategy:
    workflow = services.workflow_create(owner=user, name=f"{name} wf", graph=graph)
    strategy = Strategy.objects.create(owner=user, name=name, workflow=workflow, symbols=["AAPL"])
    for channel, flags in notifications.items():
        StrategyNotification.objects.create(strategy=strategy, channel=channel, **flags)
    return strategy


def _run_strategy(strategy: Strategy, symbols=("AAPL",)):
    # The batch and its strategy link commit together, before any step runs.
    with transaction.atomic():
        batch = engine.batch_start(workflow=strategy.workflow, user=strategy.owner, symbols=list(symbols))
        StrategyBatch.objects.create(strategy=strategy, batch=batch)
    return list(batch.runs.order_by("id"))


def test_a_buy_sends_the_decision_with_the_chart_to_the_strategy_channel(eager_engine, user, receiver):
    strategy = _strategy(
        user, _trade_graph(), desk={"on_decision": True}, phone={"on_decision": False, "on_order": False}
    )
    [run] = _run_strategy(strategy)
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error
    [request] = receiver.requests  # the phone row asked for failures only
    assert request.path == f"/api/webhooks/1/{DISCORD_SECRET}"
    form = request.form()
    assert form["files[0]"][2] == tiny_png()
    content = json.loads(form["payload_json"][2])["content"].splitlines()
    assert content[0] == "Momentum: AAPL BUY"
    assert "Entry 100 · stop 95 · targets 110 / 120" in content
    assert "R 2.00 at the conservative target (computed from these levels)" in content
    assert content[-1].startswith("Order 77: BUY 10 AAPL @ 100")
    log = NotificationLog.objects.get(run=run)
    assert log.channel == "desk" and log.status == "sent" and DISCORD_SECRET not in json.dumps(log.detail)


def test_hold_is_quiet_unless_asked_for(eager_engine, user, receiver):
    quiet = _strategy(user, _trade_graph("HOLD"), name="Quiet", desk={"on_decision": True, "on_order": True})
    _run_strategy(quiet)
    assert receiver.requests == []
    chatty = _strategy(user, _trade_graph("HOLD"), name="Chatty", phone={"on_decision": True, "include_hold": True})
    _run_strategy(chatty)
    [request] = receiver.requests
    assert request.path == f"/bot{TELEGRAM_TOKEN}/sendPhoto"
    form = request.form()
    assert form["caption"][2].decode().startswith("Chatty: AAPL HOLD\nDecision: HOLD")
    assert form["photo"][2] == tiny_png() and form["chat_id"][2] == b"5"


def test_on_order_alone_reports_the_order(eager_engine, user, receiver):
    strategy = _strategy(user, _trade_graph(), desk={"on_decision": False, "on_order": True})
    _run_strategy(strategy)
    content = json.loads(receiver.requests[0].form()["payload_json"][2])["content"]
    assert "Order 77: BUY 10 AAPL" in content


def test_a_failed_run_reaches_the_channels_that_asked_for_failures(eager_engine, user, receiver):
    graph = chain_graph(node("boom", "test.flaky", permanent=True))
    strategy = _strategy(
        user, graph, name="Fragile", desk={"on_failure": False}, phone={"on_failure": True, "on_decision": False}
    )
    [run] = _run_strategy(strategy)
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    [request] = receiver.requests
    assert request.path == f"/bot{TELEGRAM_TOKEN}/sendMessage"
    assert request.json()["text"] == (
        f'Fragile: run {run.id} on AAPL FAILED\nStep "boom" failed: permanent failure asked for by the test'
    )


def test_each_run_and_row_is_sent_once(eager_engine, user, receiver):
    strategy = _strategy(user, _trade_graph(), desk={})
    [run] = _run_strategy(strategy)
    assert len(receiver.requests) == 1
    # The task delivered again: nothing new.
    assert notify_run_finished(run_id=run.id)[0]["already_sent"] is True
    assert len(receiver.requests) == 1


def test_a_broken_channel_does_not_stop_the_others(eager_engine, user, receiver, settings):
    settings.NOTIFY_CHANNELS = {**settings.NOTIFY_CHANNELS, "broken": {"kind": "discord"}}
    strategy = _strategy(user, _trade_graph(), broken={}, desk={})
    [run] = _run_strategy(strategy)
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED
    assert [r.path for r in receiver.requests] == [f"/api/webhooks/1/{DISCORD_SECRET}"]


def test_runs_of_no_strategy_are_not_notified(eager_engine, user, receiver):
    workflow = services.workflow_create(owner=user, name="Solo", graph=_trade_graph())
    run = engine.run_start(workflow=workflow, user=user, symbol="AAPL")
    assert notify_run_finished(run_id=run.id) == []
    assert receiver.requests == []


@pytest.mark.django_db
def test_the_admin_form_accepts_configured_channel_names_only(user):
    strategy = _strategy(user, _trade_graph())
    data = {"strategy": strategy.id, "on_decision": True, "on_order": True, "on_failure": True}
    assert StrategyNotificationForm(data={**data, "channel": "desk"}).is_valid()
    form = StrategyNotificationForm(data={**data, "channel": "https://discord.com/api/webhooks/1/x"})
    assert not form.is_valid()
    assert "configured: desk, phone" in str(form.errors["channel"])


@pytest.mark.django_db
def test_the_admin_lists_and_adds_strategy_notifications(client, django_user_model):
    client.force_login(django_user_model.objects.create_superuser("root", password="pw-root-123"))
    assert client.get("/admin/strategies/strategynotification/").status_code == 200
    page = client.get("/admin/strategies/strategynotification/add/")
    assert page.status_code == 200 and DISCORD_SECRET not in page.content.decode()
