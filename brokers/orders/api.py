"""REST API for orders, the portfolio and the trading controls.

Orders go through `orders_visible` (own orders, staff all): another user's order is 404. The
switches and limits are read by everyone signed in and changed by staff only (403 otherwise)."""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, viewsets
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response
from rest_framework.views import APIView

from brokers.adapters.paper.broker import PaperBroker
from brokers.orders import serializers as s
from brokers.orders.selectors import (
    kill_switch_outcome,
    orders_visible,
    orders_working,
    positions_visible,
    trading_control,
)
from brokers.orders.services import kill_switch_set, order_cancel, trading_control_update


def _valid(serializer_class, data) -> dict:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _staff_only(request) -> None:
    if not request.user.is_staff:
        raise PermissionDenied("Only staff can change the trading switches and limits")


class OrderViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = s.OrderSerializer
    lookup_value_converter = "int"

    def get_queryset(self):
        qs = orders_visible(user=self.request.user).prefetch_related("fills")
        if self.action != "list":
            return qs
        filters = _valid(s.OrderFilterSerializer, self.request.query_params)
        if "status" in filters:
            qs = qs.filter(status=filters["status"])
        if filters.get("symbol"):
            qs = qs.filter(symbol=filters["symbol"].strip().upper())
        return qs

    @extend_schema(parameters=[s.OrderFilterSerializer], summary="Your orders (staff: every order), newest first")
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(summary="One order with its legs and fills")
    def retrieve(self, request, *args, **kwargs):
        return super().retrieve(request, *args, **kwargs)


class OrderCancelView(APIView):
    @extend_schema(
        operation_id="orders_cancel",
        request=None,
        responses={200: s.OrderSerializer},
        summary="Cancel a working order (an IBKR order is cancelled by the ibkr worker)",
    )
    def post(self, request, pk: int):
        order = get_object_or_404(orders_visible(user=request.user), pk=pk)
        order_cancel(order=order, reason=f"Cancelled by {request.user.get_username()}")
        order = orders_visible(user=request.user).prefetch_related("fills").get(pk=pk)
        return Response(s.OrderSerializer(order).data)


class PortfolioView(APIView):
    @extend_schema(
        operation_id="portfolio_retrieve",
        responses=s.PortfolioSerializer,
        summary="The paper account's equity, cash and P&L, and the open positions",
    )
    def get(self, request):
        summary = PaperBroker().account_summary()
        return Response(
            {
                "account": s.AccountSummarySerializer(summary).data,
                "positions": s.PositionSerializer(positions_visible(user=request.user), many=True).data,
            }
        )


class TradingControlView(APIView):
    @extend_schema(
        operation_id="trading_control_retrieve",
        responses=s.TradingControlSerializer,
        summary="The trading switches and limits",
    )
    def get(self, request):
        return Response(s.TradingControlSerializer(trading_control()).data)

    @extend_schema(
        operation_id="trading_control_update",
        request=s.TradingControlUpdateSerializer,
        responses=s.TradingControlSerializer,
        summary="Change the global trading switch or a limit (staff only; the kill switch has its own endpoint)",
    )
    def patch(self, request):
        _staff_only(request)
        data = _valid(s.TradingControlUpdateSerializer, request.data)
        control = trading_control_update(user=request.user, **data)
        return Response(s.TradingControlSerializer(control).data)


class KillSwitchView(APIView):
    @extend_schema(
        operation_id="kill_switch_set",
        request=s.KillSwitchSerializer,
        responses=s.KillSwitchResultSerializer,
        summary="Turn the kill switch on (no new orders, working entries cancelled) or off (staff only)",
    )
    def post(self, request):
        _staff_only(request)
        data = _valid(s.KillSwitchSerializer, request.data)
        working = list(orders_working().values_list("id", flat=True)) if data["on"] else []
        control, problems = kill_switch_set(on=data["on"], user=request.user, reason=data["reason"])
        outcome = kill_switch_outcome(order_ids=working, problems=problems)
        if not data["on"]:
            outcome["message"] = "Kill switch off"
        return Response({"control": s.TradingControlSerializer(control).data, **outcome})
