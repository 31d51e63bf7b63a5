"""Trading pages: Orders (with the trading controls and the kill switch) and Portfolio.

Reads go through the selectors (orders: own rows, staff all), so an
order a user may not see is a 404. Writes go through the broker services; an ApplicationError is
shown on the page with HTTP 400, never a 500. The switches and limits are staff only: a plain
user sees them and gets 403 on a change.
"""

from __future__ import annotations

from decimal import Decimal
from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST, require_safe

from brokers.adapters.paper.broker import PaperBroker
from brokers.adapters.registry import brokers_listed
from brokers.models import ORDER_OPEN, OrderStatus
from brokers.orders.selectors import (
    broker_connections,
    equity_points,
    kill_switch_outcome,
    orders_visible,
    orders_working,
    positions_visible,
    trading_control,
)
from brokers.orders.services import kill_switch_set, order_cancel, trading_control_update
from workflows.errors import ApplicationError

ORDERS_PER_PAGE = 50
LIMIT_FIELDS = ("max_notional", "max_open_positions", "daily_loss_limit")


class TradingControlForm(forms.Form):
    trading_enabled = forms.BooleanField(required=False)
    max_notional = forms.DecimalField(min_value=Decimal(0), max_digits=18, decimal_places=6)
    max_open_positions = forms.IntegerField(min_value=0, max_value=1_000_000)
    daily_loss_limit = forms.DecimalField(min_value=Decimal(0), max_digits=18, decimal_places=6)


def _form_error(form: forms.Form) -> str:
    return "; ".join(f"{name}: {' '.join(errors)}" for name, errors in form.errors.items())


# Orders


def _orders_response(request: HttpRequest, *, error: str = "", status: int = 200) -> HttpResponse:
    visible = orders_visible(user=request.user).prefetch_related("fills")
    history = visible.exclude(status__in=ORDER_OPEN)
    filters: dict[str, str] = {}
    wanted = request.GET.get("status", "")
    if wanted in OrderStatus.values and wanted not in ORDER_OPEN:
        history, filters["status"] = history.filter(status=wanted), wanted
    symbol = request.GET.get("symbol", "").strip().upper()
    if symbol:
        history, filters["symbol"] = history.filter(symbol=symbol), symbol
    page = Paginator(history, ORDERS_PER_PAGE).get_page(request.GET.get("page"))
    context = {
        "section": "orders",
        "open_orders": list(visible.filter(status__in=ORDER_OPEN)),
        "page": page,
        "orders": page.object_list,
        "filters": filters,
        "filter_query": urlencode(filters),
        "statuses": [(v, label) for v, label in OrderStatus.choices if v not in ORDER_OPEN],
        "control": trading_control(),
        "connections": broker_connections(),
        "error": error,
    }
    return render(request, "brokers/orders.html", context, status=status)


@require_safe
def order_list(request: HttpRequest) -> HttpResponse:
    return _orders_response(request)


@require_POST
def order_cancel_view(request: HttpRequest, pk: int) -> HttpResponse:
    order = get_object_or_404(orders_visible(user=request.user), pk=pk)
    try:
        order = order_cancel(order=order, reason=f"Cancelled by {request.user.get_username()}")
    except ApplicationError as exc:
        return _orders_response(request, error=exc.message, status=400)
    if order.status == OrderStatus.CANCELLED:
        messages.success(request, f"Order #{order.pk} ({order.symbol}) cancelled.")
    else:
        messages.info(request, f"Cancel of order #{order.pk} sent to the {order.broker.upper()} worker.")
    return redirect("order-list")


def _staff_only(request: HttpRequest) -> HttpResponse | None:
    if request.user.is_staff:
        return None
    return _orders_response(request, error="Only staff can change the trading switches and limits.", status=403)


@require_POST
def trading_control_view(request: HttpRequest) -> HttpResponse:
    refused = _staff_only(request)
    if refused:
        return refused
    form = TradingControlForm(request.POST)
    if not form.is_valid():
        return _orders_response(request, error=f"Trading controls not saved: {_form_error(form)}", status=400)
    try:
        trading_control_update(user=request.user, **form.cleaned_data)
    except ApplicationError as exc:
        return _orders_response(request, error=exc.message, status=400)
    messages.success(request, "Trading controls saved.")
    return redirect("order-list")


@require_POST
def kill_switch_view(request: HttpRequest) -> HttpResponse:
    refused = _staff_only(request)
    if refused:
        return refused
    on = request.POST.get("on", "")
    if on not in ("1", "0"):
        return _orders_response(request, error='Say whether the kill switch goes on ("1") or off ("0").', status=400)
    reason = request.POST.get("reason", "").strip()
    working = list(orders_working().values_list("id", flat=True)) if on == "1" else []
    _, problems = kill_switch_set(on=on == "1", user=request.user, reason=reason)
    if on == "1":
        outcome = kill_switch_outcome(order_ids=working, problems=problems)
        level = messages.warning if outcome["problems"] else messages.success
        level(request, f"Kill switch on: no new orders; {outcome['message']}.")
    else:
        messages.success(request, "Kill switch off: new orders may be placed again (behind the other switches).")
    return redirect("order-list")


# Portfolio


@require_safe
def portfolio(request: HttpRequest) -> HttpResponse:
    summary = PaperBroker().account_summary()
    curve = [
        {"broker": broker, "x": [t.isoformat() for t, _ in points], "y": [float(e) for _, e in points]}
        for broker in (kind.name for kind in brokers_listed())
        if (points := equity_points(broker=broker))
    ]
    context = {
        "section": "portfolio",
        "summary": summary,
        "positions": list(positions_visible(user=request.user)),
        "curve": curve,
        "control": trading_control(),
    }
    return render(request, "brokers/portfolio.html", context)
