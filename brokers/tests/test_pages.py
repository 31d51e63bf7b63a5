"""The Orders, Portfolio and Decisions pages through the HTTP client: owner, other user, anonymous, staff."""

from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from brokers.models import AccountSnapshot, OrderStatus, Position, TradingControl
from brokers.orders.selectors import trading_control
from brokers.tests.factories import make_decision, make_fill, make_order, make_run, make_step, risk_outputs

pytestmark = pytest.mark.usefixtures("no_dispatch")

PAGES = ("order-list", "portfolio", "decision-list")


def body(response) -> str:
    return response.content.decode()


@pytest.mark.parametrize("name", PAGES)
def test_pages_render_with_no_data(client, user, name):
    client.force_login(user)
    response = client.get(reverse(name))
    assert response.status_code == 200
    text = body(response)
    empty = {
        "order-list": ["No open orders", "No orders yet"],
        "portfolio": ["No open positions", "No account snapshots yet"],
        "decision-list": ["No decisions yet"],
    }[name]
    for words in empty:
        assert words in text
    # The nav links every trading page.
    for other in (*PAGES, "approval-list"):
        assert f'href="{reverse(other)}"' in text


@pytest.mark.parametrize("name", PAGES)
def test_anonymous_is_sent_to_login(client, name):
    response = client.get(reverse(name))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_orders_page_shows_own_orders_only(client, user, other_user):
    run = make_run(user)
    working = make_order(user, symbol="OWNWK", run=run)
    closed = make_order(
        user,
        symbol="OWNCL",
        status=OrderStatus.CLOSED,
        avg_entry_price=Decimal("100"),
        avg_exit_price=Decimal("110"),
        realized_pnl=Decimal("98.50"),
        r_planned=3.0,
    )
    make_fill(closed, leg="entry")
    make_fill(closed, leg="take_profit", price="110")
    make_order(user, symbol="OWNBL", status=OrderStatus.BLOCKED, reason="The kill switch is on; no new orders")
    client.force_login(user)
    text = body(client.get(reverse("order-list")))
    assert "OWNWK" in text and "OWNCL" in text and "OWNBL" in text
    assert reverse("order-cancel", args=[working.pk]) in text
    assert reverse("order-cancel", args=[closed.pk]) not in text  # only working orders can be cancelled
    assert "The kill switch is on; no new orders" in text  # why it was blocked
    assert "98.50" in text  # P&L
    assert "3.00" in text and "2.00" in text  # R planned, and realised: (110 - 100) / (100 - 95)
    assert reverse("run-detail", args=[run.pk]) in text
    client.force_login(other_user)
    text = body(client.get(reverse("order-list")))
    assert "OWNWK" not in text and "OWNCL" not in text


def test_history_is_paginated_and_filtered(client, user):
    for i in range(51):
        make_order(user, symbol="PAGE" if i else "FIRST", status=OrderStatus.CANCELLED)
    client.force_login(user)
    first = body(client.get(reverse("order-list")))
    assert "Page 1 of 2" in first
    assert "51 orders" in first
    filtered = body(client.get(reverse("order-list"), {"symbol": "first"}))
    assert "1 order<" in filtered and "FIRST" in filtered


def test_owner_cancels_a_working_order(client, user):
    order = make_order(user)
    client.force_login(user)
    response = client.post(reverse("order-cancel", args=[order.pk]), follow=True)
    assert response.status_code == 200
    order.refresh_from_db()
    assert order.status == OrderStatus.CANCELLED
    assert f"Order #{order.pk} (AAPL) cancelled" in body(response)


def test_cancel_of_a_filled_order_is_a_400_on_the_page(client, user):
    order = make_order(user, status=OrderStatus.FILLED)
    client.force_login(user)
    response = client.post(reverse("order-cancel", args=[order.pk]))
    assert response.status_code == 400
    assert "keeps its stop-loss and take-profit" in body(response)
    order.refresh_from_db()
    assert order.status == OrderStatus.FILLED


def test_other_user_cannot_cancel(client, user, other_user):
    order = make_order(user)
    client.force_login(other_user)
    assert client.post(reverse("order-cancel", args=[order.pk])).status_code == 404
    order.refresh_from_db()
    assert order.status == OrderStatus.SUBMITTED


def test_plain_user_sees_the_controls_but_cannot_change_them(client, user):
    order = make_order(user)
    before = trading_control()
    client.force_login(user)
    text = body(client.get(reverse("order-list")))
    assert "Only staff can change" in text
    assert f'action="{reverse("kill-switch")}"' not in text
    response = client.post(reverse("kill-switch"), {"on": "1", "reason": "panic"})
    assert response.status_code == 403
    response = client.post(
        reverse("trading-control"),
        {"trading_enabled": "1", "max_notional": "1", "max_open_positions": "1", "daily_loss_limit": "1"},
    )
    assert response.status_code == 403
    after = TradingControl.objects.get()
    assert (after.kill_switch, after.trading_enabled, after.max_notional) == (False, False, before.max_notional)
    order.refresh_from_db()
    assert order.status == OrderStatus.SUBMITTED


def test_kill_switch_through_the_page_cancels_working_orders(client, user, staff_user):
    working = make_order(user)
    held = make_order(user, symbol="HELD", status=OrderStatus.FILLED)
    client.force_login(staff_user)
    response = client.post(reverse("kill-switch"), {"on": "1", "reason": "Market halted"}, follow=True)
    assert response.status_code == 200
    working.refresh_from_db()
    held.refresh_from_db()
    assert working.status == OrderStatus.CANCELLED
    assert working.reason == "Cancelled by the kill switch"
    assert held.status == OrderStatus.FILLED  # an open position keeps its bracket
    text = body(response)
    assert f"cancelled 1 working order (#{working.pk})" in text
    assert "kill-banner" in text and "Market halted" in text
    control = TradingControl.objects.get()
    assert control.kill_switch and control.kill_switch_at and control.updated_by == staff_user
    # Everyone sees the banner, with since when and why.
    client.force_login(user)
    text = body(client.get(reverse("order-list")))
    assert "Kill switch ON since" in text and "Market halted" in text
    client.force_login(staff_user)
    client.post(reverse("kill-switch"), {"on": "0"})
    assert not TradingControl.objects.get().kill_switch
    assert "kill-banner" not in body(client.get(reverse("order-list")))


def test_staff_change_limits_and_bad_values_are_a_400(client, staff_user):
    client.force_login(staff_user)
    bad = client.post(
        reverse("trading-control"),
        {"max_notional": "-5", "max_open_positions": "abc", "daily_loss_limit": "100"},
    )
    assert bad.status_code == 400
    assert "max_notional" in body(bad) and "max_open_positions" in body(bad)
    assert TradingControl.objects.get().max_notional != Decimal("-5")
    good = client.post(
        reverse("trading-control"),
        {"trading_enabled": "1", "max_notional": "5000", "max_open_positions": "2", "daily_loss_limit": "250"},
    )
    assert good.status_code == 302
    control = TradingControl.objects.get()
    assert control.trading_enabled
    assert (control.max_notional, control.max_open_positions, control.daily_loss_limit) == (5000, 2, 250)


def test_kill_switch_needs_on_or_off(client, staff_user):
    client.force_login(staff_user)
    response = client.post(reverse("kill-switch"), {"on": "maybe"})
    assert response.status_code == 400
    assert not trading_control().kill_switch


def test_connection_status_shows_paper_and_never_asks_ibkr_by_default(client, user, settings, monkeypatch):
    from brokers.adapters.registry import broker_kinds

    def boom():
        raise AssertionError("the web process asked for a broker connection")

    monkeypatch.setattr(broker_kinds.get("ibkr"), "create", boom)
    settings.BROKER = "paper"
    client.force_login(user)
    text = body(client.get(reverse("order-list")))
    assert "Simulated in this application" in text
    assert "ibkr" not in text.split("Broker connections")[1].split("</section>")[0]


def test_ibkr_connection_failure_is_shown_not_raised(client, user, settings, monkeypatch):
    from brokers.adapters.registry import broker_kinds

    class Broken:
        def connection_status(self):
            raise ConnectionRefusedError("gateway down on 127.0.0.1:4004")

    monkeypatch.setattr(broker_kinds.get("ibkr"), "create", lambda: Broken())
    settings.BROKER = "ibkr"
    client.force_login(user)
    response = client.get(reverse("order-list"))
    assert response.status_code == 200
    assert "gateway down on 127.0.0.1:4004" in body(response)


def test_portfolio_shows_equity_positions_and_the_curve(client, user, settings):
    settings.PAPER_STARTING_CASH = 100_000.0
    order = make_order(user, status=OrderStatus.FILLED, account="PAPER")
    make_fill(order, price="100", commission="1")
    Position.objects.create(
        broker="paper", account="PAPER", symbol="AAPL", quantity=10, avg_cost=Decimal("100"), last_price=Decimal("112")
    )
    now = timezone.now()
    for i, equity in enumerate(("100000", "100050", "100080")):
        AccountSnapshot.objects.create(
            broker="paper",
            account="PAPER",
            mode="paper",
            taken_at=now - timezone.timedelta(days=3 - i),
            equity=Decimal(equity),
            cash=Decimal("98999"),
        )
    client.force_login(user)
    text = body(client.get(reverse("portfolio")))
    # cash 100000 - 10 x 100 - 1 commission; equity adds the position at its last price
    assert "98999.00" in text
    assert "100119.00" in text
    assert "120.00" in text  # unrealised: (112 - 100) x 10
    assert "AAPL" in text
    assert 'id="equity-data"' in text and "100080.0" in text
    assert "vendor/plotly/plotly.min.js" in text and "cdn" not in text.lower()


def test_decisions_page_shows_label_images_r_and_outcome(client, user, other_user, staff_user):
    run = make_run(user, symbol="MSFT")
    key = "charts/" + "a" * 64 + ".png"
    placed = make_decision(run, action="BUY", images=[{"key": key, "bytes": 10, "sha256": "x"}])
    make_step(run, node_id="risk", step_type="risk.r_check", outputs=risk_outputs(passed=True, r=2.4, reasons=[]))
    order = make_order(user, symbol="MSFT", run=run, decision=placed, status=OrderStatus.CLOSED)
    order.realized_pnl = Decimal("-12.34")
    order.save()

    hold_run = make_run(user, symbol="HOLDX")
    make_decision(hold_run, action="HOLD")
    reasons = ["The decision is HOLD: no trade"]
    make_step(
        hold_run, node_id="risk", step_type="risk.r_check", outputs=risk_outputs(passed=False, r=None, reasons=reasons)
    )

    refused_run = make_run(user, symbol="REFUS")
    make_decision(refused_run, action="SELL", analyst="model", model="gpt-test")
    make_step(
        refused_run, node_id="risk", step_type="risk.r_check", outputs=risk_outputs(passed=True, r=1.8, reasons=[])
    )
    make_step(
        refused_run,
        node_id="order",
        step_type="broker.place_order",
        outputs={"order": {"sent": False, "reason": "the approval was rejected by carol"}},
    )

    client.force_login(user)
    text = body(client.get(reverse("decision-list")))
    assert "Offline rule-based analyst (no AI model)" in text
    assert 'badge-ai">AI model<' in text and "gpt-test" in text
    assert reverse("run-artifact", args=[run.pk, key]) in text
    assert "Reasoning for BUY MSFT" in text
    assert "2.40" in text and "1.80" in text
    assert f"order #{order.pk}" in text and "Closed" in text and "-12.34" in text
    assert "The decision is HOLD: no trade" in text
    assert "No order: the approval was rejected by carol" in text

    filtered = body(client.get(reverse("decision-list"), {"action": "hold"}))
    assert "HOLDX" in filtered and "MSFT" not in filtered and "REFUS" not in filtered
    by_symbol = body(client.get(reverse("decision-list"), {"symbol": "refus"}))
    assert "REFUS" in by_symbol and "HOLDX" not in by_symbol
    one = body(client.get(reverse("decision-list"), {"decision": placed.pk}))
    assert "MSFT" in one and "HOLDX" not in one

    client.force_login(other_user)
    text = body(client.get(reverse("decision-list")))
    assert "MSFT" not in text and "No decisions yet" in text
    client.force_login(staff_user)
    assert "MSFT" in body(client.get(reverse("decision-list")))


def test_decision_list_query_count_does_not_grow_with_rows(client, user, django_assert_max_num_queries):
    for i in range(10):
        run = make_run(user, symbol=f"S{i}")
        make_decision(run, images=[{"key": "charts/" + f"{i}" * 64 + ".png"}])
        make_step(run, node_id="risk", step_type="risk.r_check", outputs=risk_outputs(passed=True, r=2.0, reasons=[]))
    client.force_login(user)
    with django_assert_max_num_queries(12):
        assert client.get(reverse("decision-list")).status_code == 200
