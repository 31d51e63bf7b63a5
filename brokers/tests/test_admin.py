"""The broker admin: orders and their history read-only; the trading control edited through the services."""

import pytest
from django.urls import reverse

from brokers.models import OrderStatus, TradingControl
from brokers.orders.selectors import trading_control
from brokers.tests.factories import make_fill, make_order, make_run

pytestmark = pytest.mark.usefixtures("no_dispatch")


@pytest.fixture
def admin_client(client, django_user_model):
    client.force_login(django_user_model.objects.create_superuser("root", password="pw-root-123"))
    return client


def control_form(control: TradingControl, **changes) -> dict:
    form = {
        "trading_enabled": "on" if control.trading_enabled else "",
        "max_notional": str(control.max_notional),
        "max_open_positions": str(control.max_open_positions),
        "daily_loss_limit": str(control.daily_loss_limit),
        "kill_switch": "on" if control.kill_switch else "",
        "kill_switch_reason": control.kill_switch_reason,
        **changes,
    }
    return {k: v for k, v in form.items() if v != ""}


def test_kill_switch_in_the_admin_cancels_working_orders(admin_client, user):
    working = make_order(user)
    control = trading_control()
    url = reverse("admin:brokers_tradingcontrol_change", args=[control.pk])
    assert admin_client.get(url).status_code == 200
    response = admin_client.post(
        url, control_form(control, kill_switch="on", kill_switch_reason="Admin stop"), follow=True
    )
    assert response.status_code == 200
    working.refresh_from_db()
    assert working.status == OrderStatus.CANCELLED and working.reason == "Cancelled by the kill switch"
    control = TradingControl.objects.get()
    assert control.kill_switch and control.kill_switch_at and control.kill_switch_reason == "Admin stop"
    assert f"cancelled 1 working order (#{working.pk})" in response.content.decode()


def test_admin_limits_go_through_the_service_and_refuse_negatives(admin_client):
    control = trading_control()
    url = reverse("admin:brokers_tradingcontrol_change", args=[control.pk])
    bad = admin_client.post(url, control_form(control, max_notional="-1"))
    assert bad.status_code == 200 and "Must be zero or more" in bad.content.decode()
    assert TradingControl.objects.get().max_notional == control.max_notional
    assert admin_client.post(url, control_form(control, max_open_positions="9")).status_code == 302
    saved = TradingControl.objects.get()
    assert saved.max_open_positions == 9 and saved.updated_by.username == "root"


def test_trading_control_has_one_row_no_add_no_delete(admin_client):
    changelist = admin_client.get(reverse("admin:brokers_tradingcontrol_changelist"))
    assert changelist.status_code == 200
    assert TradingControl.objects.count() == 1  # created on first view
    assert "Kill switch" in changelist.content.decode()
    assert admin_client.get(reverse("admin:brokers_tradingcontrol_add")).status_code == 403
    pk = TradingControl.objects.get().pk
    assert admin_client.get(reverse("admin:brokers_tradingcontrol_delete", args=[pk])).status_code == 403


def test_orders_and_their_rows_are_read_only(admin_client, user):
    order = make_order(user, run=make_run(user))
    make_fill(order)
    for name in ("order", "fill", "position", "accountsnapshot"):
        assert admin_client.get(reverse(f"admin:brokers_{name}_changelist")).status_code == 200, name
        assert admin_client.get(reverse(f"admin:brokers_{name}_add")).status_code == 403, name
    page = admin_client.get(reverse("admin:brokers_order_change", args=[order.pk]))
    assert page.status_code == 200
    text = page.content.decode()
    assert f"{order.key}:entry" in text  # the fill inline
    assert 'name="quantity"' not in text  # nothing editable
    response = admin_client.post(reverse("admin:brokers_order_change", args=[order.pk]), {"quantity": "999"})
    assert response.status_code == 403
    order.refresh_from_db()
    assert order.quantity == 10


def test_approvals_are_listed_read_only(admin_client):
    assert admin_client.get(reverse("admin:workflows_approval_changelist")).status_code == 200
    assert admin_client.get(reverse("admin:workflows_approval_add")).status_code == 403
