"""Strategy pages, the dashboard, the runs list's strategy filter, the admin and the demo strategy,
through the HTTP client: owner, other user, anonymous."""

import io
import re
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from brokers.models import Position
from strategies.models import Strategy, StrategyBatch, StrategySchedule
from strategies.schedules.services import schedule_create
from strategies.services import DEMO_STRATEGY, strategy_run
from strategies.tests.strategy_helpers import SYMBOLS, make_strategy, make_workflow
from workflows import engine
from workflows.models import Approval, Run, RunStatus, StepStatus

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_dispatch")]


@pytest.fixture
def strategy(user):
    return make_strategy(user)


@pytest.fixture
def schedule(strategy):
    return schedule_create(strategy=strategy, cron="30 9 * * 1-5", timezone="America/New_York")


def pages(strategy, schedule) -> list[str]:
    return [
        reverse("strategy-list"),
        reverse("strategy-new"),
        reverse("strategy-detail", args=[strategy.pk]),
        reverse("strategy-edit", args=[strategy.pk]),
        reverse("schedule-edit", args=[strategy.pk, schedule.pk]),
        reverse("home"),
    ]


def actions(strategy, schedule) -> list[str]:
    s, sc = strategy.pk, schedule.pk
    return [
        reverse("strategy-run", args=[s]),
        reverse("schedule-create", args=[s]),
        reverse("schedule-disable", args=[s, sc]),
        reverse("schedule-enable", args=[s, sc]),
        reverse("schedule-delete", args=[s, sc]),
        reverse("strategy-delete", args=[s]),
    ]


def test_the_owner_sees_every_page(client, user, strategy, schedule):
    client.force_login(user)
    for url in pages(strategy, schedule):
        assert client.get(url).status_code == 200, url
    body = client.get(reverse("strategy-detail", args=[strategy.pk])).content.decode()
    assert "Three symbols" in body and "30 9 * * 1-5" in body and "AAPL, MSFT, IBM" in body
    assert "Not run yet" in body and 'data-active="false"' in body
    # The next runs in New York time and UTC.
    assert body.count("<time datetime=") >= 5 and " UTC</span>" in body


def test_another_user_gets_404_everywhere(client, other_user, strategy, schedule):
    client.force_login(other_user)
    for url in pages(strategy, schedule)[2:5]:
        assert client.get(url).status_code == 404, url
    for url in actions(strategy, schedule):
        assert client.post(url, {"cron": "0 10 * * *", "timezone": "UTC", "overlap": "skip"}).status_code == 404, url
    assert "Three symbols" not in client.get(reverse("strategy-list")).content.decode()
    assert (
        Strategy.objects.count() == 1 and StrategySchedule.objects.count() == 1 and not StrategyBatch.objects.exists()
    )


def test_anonymous_is_sent_to_login(client, strategy, schedule):
    for url in pages(strategy, schedule) + actions(strategy, schedule):
        response = client.get(url) if url in pages(strategy, schedule) else client.post(url)
        assert response.status_code == 302 and response["Location"].startswith(reverse("login")), url


def test_run_now_sent_twice_starts_one_batch(client, user, strategy):
    client.force_login(user)
    page = client.get(reverse("strategy-detail", args=[strategy.pk])).content.decode()
    key = re.search(r'name="idempotency_key" value="([0-9a-f]{32})"', page).group(1)
    for _ in range(2):
        response = client.post(reverse("strategy-run", args=[strategy.pk]), {"idempotency_key": key}, follow=True)
    link = StrategyBatch.objects.get(strategy=strategy)
    assert Run.objects.filter(batch=link.batch).count() == 3
    assert f"Batch {link.batch_id} (3 runs) was already started by this form." in response.content.decode()


def test_every_action_as_the_owner(client, user, strategy, schedule):
    client.force_login(user)
    detail = reverse("strategy-detail", args=[strategy.pk])
    response = client.post(reverse("strategy-run", args=[strategy.pk]))
    assert response.status_code == 302 and response["Location"] == detail + "#batches"
    link = StrategyBatch.objects.get(strategy=strategy)
    body = client.get(detail).content.decode()
    assert f'data-batch="{link.batch_id}"' in body and 'data-active="true"' in body
    assert body.count('class="badge status-pending" data-run=') == 3  # one per symbol, linking to its run
    assert "0 of 3 finished" in body

    new = {"cron": "0 16 * * 1-5", "timezone": "Europe/London", "overlap": "allow", "enabled": "on"}
    assert client.post(reverse("schedule-create", args=[strategy.pk]), new).status_code == 302
    assert strategy.schedules.filter(cron="0 16 * * 1-5", timezone="Europe/London", overlap="allow").exists()
    client.post(reverse("schedule-disable", args=[strategy.pk, schedule.pk]))
    assert PeriodicTask.objects.get(pk=schedule.periodic_task_id).enabled is False
    client.post(reverse("schedule-enable", args=[strategy.pk, schedule.pk]))
    assert PeriodicTask.objects.get(pk=schedule.periodic_task_id).enabled is True
    edit = {"cron": "45 9 * * 1-5", "timezone": "America/New_York", "overlap": "skip", "trading_days_only": "on"}
    assert client.post(reverse("schedule-edit", args=[strategy.pk, schedule.pk]), edit).status_code == 302
    schedule.refresh_from_db()
    assert schedule.cron == "45 9 * * 1-5" and schedule.enabled is False  # unchecked: off
    client.post(reverse("schedule-delete", args=[strategy.pk, schedule.pk]))
    assert strategy.schedules.count() == 1

    client.post(reverse("strategy-delete", args=[strategy.pk]))
    assert not Strategy.objects.exists() and not PeriodicTask.objects.exists()
    assert Run.objects.count() == 3  # runs belong to the workflow and stay


def test_new_strategy_form_creates_one(client, user):
    workflow = make_workflow(user)
    client.force_login(user)
    assert 'value="1" data-workflow' in client.get(reverse("strategy-new")).content.decode()
    form = {
        "name": "From the form",
        "workflow": str(workflow.pk),
        "version": "1",
        "symbols": "aapl, msft\nibm msft",
        "overrides": 'period_1 = 2y\ntag = "5"\n# a comment\nbar_1 = 1w',
        "ai_cost_budget_usd": "0.5",
        "enabled": "on",
    }
    response = client.post(reverse("strategy-new"), form)
    strategy = Strategy.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("strategy-detail", args=[strategy.pk])
    assert strategy.symbols == ["AAPL", "MSFT", "IBM"] and strategy.version.number == 1
    assert strategy.overrides == {"period_1": "2y", "tag": "5", "bar_1": "1w"}
    assert str(strategy.ai_cost_budget_usd) == "0.5000" and strategy.enabled and not strategy.live
    # The edit form shows the overrides as typed, "5" quoted so it stays text.
    body = client.get(reverse("strategy-edit", args=[strategy.pk])).content.decode()
    assert "tag = &quot;5&quot;" in body and "period_1 = 2y" in body


@pytest.mark.parametrize(
    ("changes", "field", "text"),
    [
        ({"symbols": "AAPL $$$"}, "symbols", "&quot;$$$&quot;"),
        ({"overrides": "period_1 = banana"}, "overrides", "period_1 = &quot;banana&quot; is refused"),
        ({"overrides": "no equals sign"}, "overrides", "is not &quot;name = value&quot;"),
        ({"ai_cost_budget_usd": "lots"}, "budget", "A budget in USD"),
        ({"name": ""}, "name", "A strategy needs a name"),
    ],
)
def test_bad_input_is_shown_next_to_its_field_and_saves_nothing(client, user, changes, field, text):
    workflow = make_workflow(user)
    client.force_login(user)
    form = {"name": "Bad", "workflow": str(workflow.pk), "symbols": "AAPL", **changes}
    response = client.post(reverse("strategy-new"), form)
    assert response.status_code == 400
    body = response.content.decode()
    assert f'<p class="field-error" id="{field}-error">' in body and text in body, body[body.find("alert") :][:2000]
    assert "Nothing was saved" in body and not Strategy.objects.exists()


def test_an_edit_that_fails_changes_nothing(client, user, strategy):
    client.force_login(user)
    form = {"name": "Renamed", "workflow": str(strategy.workflow_id), "symbols": "AAPL", "overrides": "period_1 = 0y"}
    response = client.post(reverse("strategy-edit", args=[strategy.pk]), form)
    assert response.status_code == 400 and 'id="overrides-error"' in response.content.decode()
    strategy.refresh_from_db()
    assert strategy.name == "Three symbols" and strategy.symbols == SYMBOLS


@pytest.mark.parametrize(
    ("form", "field", "text"),
    [
        ({"cron": "61 * * * *", "timezone": "UTC"}, "cron", "The minute field &quot;61&quot; is not valid"),
        ({"cron": "30 9 * * 1-5", "timezone": "Mars/Base"}, "timezone", "&quot;Mars/Base&quot; is not an IANA"),
    ],
)
def test_a_bad_schedule_is_shown_next_to_its_field(client, user, strategy, form, field, text):
    client.force_login(user)
    response = client.post(reverse("schedule-create", args=[strategy.pk]), {**form, "overlap": "skip"})
    assert response.status_code == 400
    body = response.content.decode()
    assert f'<span class="field-error" id="{field}-error">' in body and text in body
    assert not StrategySchedule.objects.exists() and not PeriodicTask.objects.exists()


def test_preview_shows_the_next_runs_without_saving(client, user, strategy):
    client.force_login(user)
    form = {"cron": "30 9 * * 1-5", "timezone": "America/New_York", "overlap": "skip", "action": "preview"}
    response = client.post(reverse("schedule-create", args=[strategy.pk]), form)
    assert response.status_code == 200
    body = response.content.decode()
    assert "Next runs of this schedule" in body and body.count('<li><time datetime="') == 5
    assert not StrategySchedule.objects.exists()


def test_a_refused_run_is_shown_on_the_page(client, user):
    strategy = make_strategy(user, enabled=False)
    client.force_login(user)
    response = client.post(reverse("strategy-run", args=[strategy.pk]))
    assert response.status_code == 400 and "is disabled" in response.content.decode()


# The dashboard


def test_the_dashboard_with_nothing_yet(client, user):
    client.force_login(user)
    response = client.get(reverse("home"))
    assert response.status_code == 200
    body = response.content.decode()
    assert "Nothing waits for your approval." in body and "No open positions." in body
    assert "No schedule is on." in body and "No workflow yet" in body and "No runs yet." in body
    assert "100000.00 USD" in body  # the paper account's starting cash


def test_the_dashboard_with_data(client, user, strategy, schedule):
    link = strategy_run(strategy=strategy, user=user)
    waiting = link.batch.runs.get(symbol="MSFT")
    step = waiting.steps.get(node_id="literal")
    StepRun = type(step)
    StepRun.objects.filter(id=step.id).update(status=StepStatus.WAITING)
    Run.objects.filter(id=waiting.id).update(status=RunStatus.WAITING)
    Approval.objects.create(
        run=waiting, step_run=step, summary={"symbol": "MSFT", "side": "BUY"}, quantity=12,
        expires_at=timezone.now() + timedelta(minutes=30),
    )  # fmt: skip
    Position.objects.create(broker="paper", symbol="IBM", quantity=7, avg_cost=100)
    client.force_login(user)
    body = client.get(reverse("home")).content.decode()
    assert f"run #{waiting.pk}" in body and "action-buy" in body  # the pending approval
    assert "IBM</td>" in body and ">7<" in body  # the open position
    assert "Three symbols" in body and "0/3" in body  # the strategy and its last batch
    assert body.count(f'href="{reverse("strategy-detail", args=[strategy.pk])}#schedules"') == 3  # next runs
    assert f'href="{reverse("run-detail", args=[waiting.pk])}"' in body  # recent runs
    assert 'class="brand" href="/"' in body


def test_the_dashboard_shows_only_the_users_own_rows(client, other_user, strategy, schedule):
    strategy_run(strategy=strategy, user=strategy.owner)
    client.force_login(other_user)
    body = client.get(reverse("home")).content.decode()
    assert "Three symbols" not in body and "No schedule is on." in body and "No runs yet." in body


# The runs list


def test_the_runs_page_filters_by_strategy(client, user, strategy):
    strategy_run(strategy=strategy, user=user)
    loose = engine.run_start(workflow=make_workflow(user, name="Loose"), user=user, symbol="SPY")
    client.force_login(user)
    body = client.get(reverse("run-list") + f"?strategy={strategy.pk}").content.decode()
    assert "IBM" in body and f'href="{reverse("run-detail", args=[loose.pk])}"' not in body
    assert f'href="{reverse("run-detail", args=[loose.pk])}"' in client.get(reverse("run-list")).content.decode()


# Admin and bootstrap


def test_the_admin_pages_load_and_save_through_the_services(client, staff_user, user, strategy, schedule):
    staff_user.is_superuser = True
    staff_user.save()
    client.force_login(staff_user)
    for url in [
        reverse("admin:strategies_strategy_changelist"),
        reverse("admin:strategies_strategy_change", args=[strategy.pk]),
        reverse("admin:strategies_strategy_add"),
        reverse("admin:strategies_strategyschedule_changelist"),
        reverse("admin:strategies_strategyschedule_change", args=[schedule.pk]),
        reverse("admin:strategies_strategyschedule_add"),
    ]:
        assert client.get(url).status_code == 200, url
    change = reverse("admin:strategies_strategyschedule_change", args=[schedule.pk])
    form = {
        "cron": "61 * * * *",
        "timezone": "UTC",
        "overlap": "skip",
        "ticks-TOTAL_FORMS": 0,
        "ticks-INITIAL_FORMS": 0,
    }
    response = client.post(change, form)
    assert response.status_code == 200 and "The minute field" in response.content.decode()
    response = client.post(change, {**form, "cron": "5 10 * * 1-5", "enabled": "on"})
    assert response.status_code == 302
    assert PeriodicTask.objects.get(pk=schedule.periodic_task_id).crontab.minute == "5"


def test_bootstrap_makes_the_demo_strategy_once_with_its_schedule_off(db):
    call_command("bootstrap", stdout=io.StringIO())
    strategy = Strategy.objects.get(name=DEMO_STRATEGY)
    assert strategy.symbols == ["AAPL", "MSFT", "IBM", "GOOG", "SPY"] and strategy.workflow.name.startswith("Demo: 2-")
    [schedule] = strategy.schedules.all()
    assert schedule.enabled is False and PeriodicTask.objects.get(pk=schedule.periodic_task_id).enabled is False
    out = io.StringIO()
    call_command("bootstrap", stdout=out)
    assert Strategy.objects.count() == 1 and StrategySchedule.objects.count() == 1
    assert "demo strategy" not in out.getvalue()


def test_the_runs_list_offers_and_applies_the_strategy_filter(client, user, strategy):
    from strategies.services import strategy_run
    from workflows import engine
    from workflows.models import Run

    batch = strategy_run(strategy=strategy, user=user)
    alone = engine.run_start(workflow=strategy.workflow, user=user, symbol="SPY")
    client.force_login(user)
    body = client.get(reverse("run-list")).content.decode()
    assert f'<option value="{strategy.pk}">{strategy.name}</option>' in body
    body = client.get(reverse("run-list"), {"strategy": strategy.pk}).content.decode()
    runs = Run.objects.filter(batch=batch.batch)
    assert runs.count() == len(strategy.symbols)
    assert all(f"/runs/{run.pk}/" in body for run in runs) and f"/runs/{alone.pk}/" not in body
