"""The orders, portfolio and trading-control API: owner, other user, anonymous, staff."""

from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from brokers.models import OrderStatus, Position, TradingControl
from brokers.orders.selectors import trading_control
from brokers.tests.factories import make_fill, make_order, make_run

pytestmark = pytest.mark.usefixtures("no_dispatch")


@pytest.fixture
def api():
    return APIClient()


@pytest.fixture
def orders(db, user, other_user):
    run = make_run(user)
    return {
        "working": make_order(user, symbol="AAPL", run=run),
        "closed": make_order(user, symbol="MSFT", status=OrderStatus.CLOSED, realized_pnl=Decimal("5")),
        "theirs": make_order(other_user, symbol="IBM"),
    }


def test_anonymous_gets_403_everywhere(api, orders):
    pk = orders["working"].pk
    for method, url in [
        ("get", "/api/orders/"),
        ("get", f"/api/orders/{pk}/"),
        ("post", f"/api/orders/{pk}/cancel/"),
        ("get", "/api/portfolio/"),
        ("get", "/api/trading-control/"),
        ("patch", "/api/trading-control/"),
        ("post", "/api/kill-switch/"),
    ]:
        assert getattr(api, method)(url, {}, format="json").status_code == 403, (method, url)
    orders["working"].refresh_from_db()
    assert orders["working"].status == OrderStatus.SUBMITTED


def test_owner_lists_own_orders_with_filters(api, user, orders):
    api.force_authenticate(user)
    page = api.get("/api/orders/").json()
    assert page["count"] == 2 and {o["symbol"] for o in page["results"]} == {"AAPL", "MSFT"}
    assert "next" in page and "previous" in page
    closed = api.get("/api/orders/", {"status": "closed"}).json()["results"]
    assert [o["symbol"] for o in closed] == ["MSFT"]
    assert closed[0]["status_label"] == "Closed" and closed[0]["realized_pnl"] == "5.000000"
    assert [o["id"] for o in api.get("/api/orders/", {"symbol": "aapl"}).json()["results"]] == [orders["working"].pk]
    bad = api.get("/api/orders/", {"status": "nope"})
    assert bad.status_code == 400 and "status" in bad.json()


def test_order_detail_has_fills_and_is_404_for_others(api, user, other_user, orders):
    make_fill(orders["closed"], leg="entry")
    api.force_authenticate(user)
    detail = api.get(f"/api/orders/{orders['closed'].pk}/")
    assert detail.status_code == 200
    assert [f["leg"] for f in detail.json()["fills"]] == ["entry"]
    assert api.get(f"/api/orders/{orders['theirs'].pk}/").status_code == 404
    api.force_authenticate(other_user)
    assert api.get(f"/api/orders/{orders['closed'].pk}/").status_code == 404


def test_staff_see_every_order(api, staff_user, orders):
    api.force_authenticate(staff_user)
    assert api.get("/api/orders/").json()["count"] == 3
    assert api.get(f"/api/orders/{orders['theirs'].pk}/").status_code == 200


def test_cancel_a_working_order(api, user, other_user, orders):
    pk = orders["working"].pk
    api.force_authenticate(other_user)
    assert api.post(f"/api/orders/{pk}/cancel/").status_code == 404
    orders["working"].refresh_from_db()
    assert orders["working"].status == OrderStatus.SUBMITTED
    api.force_authenticate(user)
    response = api.post(f"/api/orders/{pk}/cancel/")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "cancelled"
    orders["working"].refresh_from_db()
    assert orders["working"].status == OrderStatus.CANCELLED
    again = api.post(f"/api/orders/{pk}/cancel/")
    assert again.status_code == 400 and "nothing to cancel" in again.json()["detail"]


def test_portfolio(api, user, other_user, settings):
    settings.PAPER_STARTING_CASH = 50_000.0
    order = make_order(user, status=OrderStatus.FILLED, account="PAPER")
    make_fill(order, price="100", commission="1")
    Position.objects.create(
        broker="paper", account="PAPER", symbol="AAPL", quantity=10, avg_cost=Decimal("100"), last_price=Decimal("105")
    )
    api.force_authenticate(user)
    body = api.get("/api/portfolio/").json()
    assert body["account"]["cash"] == pytest.approx(48_999.0)
    assert body["account"]["equity"] == pytest.approx(48_999.0 + 1_050.0)
    assert body["account"]["unrealized_pnl"] == pytest.approx(50.0)
    assert [(p["symbol"], p["quantity"], p["unrealized_pnl"]) for p in body["positions"]] == [("AAPL", 10, "50.000000")]
    # Positions are the account's book: every signed-in user trades it.
    api.force_authenticate(other_user)
    assert api.get("/api/portfolio/").status_code == 200


def test_trading_control_read_by_all_changed_by_staff_only(api, user, staff_user):
    before = trading_control()
    api.force_authenticate(user)
    assert api.get("/api/trading-control/").json()["kill_switch"] is False
    refused = api.patch("/api/trading-control/", {"trading_enabled": True, "max_notional": "1"}, format="json")
    assert refused.status_code == 403
    after = TradingControl.objects.get()
    assert (after.trading_enabled, after.max_notional) == (before.trading_enabled, before.max_notional)

    api.force_authenticate(staff_user)
    for body, field in [
        ({"max_notional": "-1"}, "max_notional"),
        ({"daily_loss_limit": -5}, "daily_loss_limit"),
        ({"max_open_positions": "abc"}, "max_open_positions"),
        ({"kill_switch": True}, "kill_switch"),
        ({"trading_enabled": "maybe"}, "trading_enabled"),
    ]:
        response = api.patch("/api/trading-control/", body, format="json")
        assert response.status_code == 400, body
        assert field in response.json(), response.json()
    assert TradingControl.objects.get().max_notional == before.max_notional
    ok = api.patch("/api/trading-control/", {"max_open_positions": 3, "max_notional": "7500.5"}, format="json")
    assert ok.status_code == 200, ok.content
    assert (ok.json()["max_open_positions"], ok.json()["max_notional"]) == (3, "7500.500000")
    assert ok.json()["updated_by"] == staff_user.username


def test_kill_switch_through_the_api(api, user, staff_user, orders):
    api.force_authenticate(user)
    assert api.post("/api/kill-switch/", {"on": True, "reason": "x"}, format="json").status_code == 403
    assert not trading_control().kill_switch
    api.force_authenticate(staff_user)
    assert api.post("/api/kill-switch/", {"reason": "no on"}, format="json").status_code == 400
    response = api.post("/api/kill-switch/", {"on": True, "reason": "Flash crash"}, format="json")
    assert response.status_code == 200, response.content
    result = response.json()
    working, theirs = orders["working"], orders["theirs"]
    assert result["cancelled"] == sorted([working.pk, theirs.pk])
    assert result["problems"] == [] and result["pending"] == []
    assert result["control"]["kill_switch"] is True and result["control"]["kill_switch_reason"] == "Flash crash"
    for order in (working, theirs):
        order.refresh_from_db()
        assert order.status == OrderStatus.CANCELLED
    off = api.post("/api/kill-switch/", {"on": False}, format="json")
    assert off.status_code == 200 and off.json()["control"]["kill_switch"] is False


def test_schema_has_the_trading_endpoints(api, user):
    api.force_authenticate(user)
    response = api.get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    paths = response.json()["paths"]
    for path in ("/api/orders/", "/api/orders/{id}/", "/api/orders/{id}/cancel/", "/api/portfolio/"):
        assert path in paths
    assert "patch" in paths["/api/trading-control/"] and "post" in paths["/api/kill-switch/"]
    ids = [op["operationId"] for item in paths.values() for op in item.values() if isinstance(op, dict)]
    assert len(ids) == len(set(ids))
