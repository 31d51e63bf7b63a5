"""Serializers of the orders, portfolio and trading-control API."""

from decimal import Decimal

from rest_framework import serializers

from brokers.models import Fill, Order, OrderStatus, Position, TradingControl


class FillSerializer(serializers.ModelSerializer):
    class Meta:
        model = Fill
        fields = ["leg", "exec_id", "quantity", "price", "commission", "time", "note"]
        read_only_fields = fields


class OrderSerializer(serializers.ModelSerializer):
    owner = serializers.CharField(source="owner.username", read_only=True, default=None)
    status_label = serializers.CharField(source="get_status_display", read_only=True)
    r_realized = serializers.FloatField(read_only=True, allow_null=True)
    fills = FillSerializer(many=True, read_only=True)

    class Meta:
        model = Order
        fields = [
            "id", "key", "run", "decision", "owner", "broker", "mode", "account", "symbol", "side", "quantity",
            "entry_price", "take_profit", "stop_loss", "tif", "status", "status_label", "reason", "r_planned",
            "r_realized", "legs", "filled_quantity", "avg_entry_price", "avg_exit_price", "exit_reason",
            "commission", "realized_pnl", "created_at", "updated_at", "filled_at", "closed_at", "fills",
        ]  # fmt: skip
        read_only_fields = fields


class OrderFilterSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=OrderStatus.choices, required=False)
    symbol = serializers.CharField(required=False, max_length=32)


class PositionSerializer(serializers.ModelSerializer):
    unrealized_pnl = serializers.DecimalField(max_digits=24, decimal_places=6, read_only=True, allow_null=True)

    class Meta:
        model = Position
        fields = [
            "broker", "account", "symbol", "quantity", "avg_cost", "last_price", "unrealized_pnl", "realized_pnl",
            "updated_at",
        ]  # fmt: skip
        read_only_fields = fields


class AccountSummarySerializer(serializers.Serializer):
    account = serializers.CharField()
    mode = serializers.CharField()
    currency = serializers.CharField()
    equity = serializers.FloatField()
    cash = serializers.FloatField()
    realized_pnl = serializers.FloatField()
    unrealized_pnl = serializers.FloatField()
    buying_power = serializers.FloatField(allow_null=True)


class PortfolioSerializer(serializers.Serializer):
    account = AccountSummarySerializer(help_text="The paper broker's account")
    positions = PositionSerializer(many=True, help_text="Open positions at every broker")


class TradingControlSerializer(serializers.ModelSerializer):
    updated_by = serializers.CharField(source="updated_by.username", read_only=True, default=None)

    class Meta:
        model = TradingControl
        fields = [
            "trading_enabled", "kill_switch", "kill_switch_reason", "kill_switch_at", "max_notional",
            "max_open_positions", "daily_loss_limit", "updated_by", "updated_at",
        ]  # fmt: skip
        read_only_fields = fields


class TradingControlUpdateSerializer(serializers.Serializer):
    trading_enabled = serializers.BooleanField(required=False)
    max_notional = serializers.DecimalField(max_digits=18, decimal_places=6, min_value=Decimal(0), required=False)
    max_open_positions = serializers.IntegerField(min_value=0, max_value=1_000_000, required=False)
    daily_loss_limit = serializers.DecimalField(max_digits=18, decimal_places=6, min_value=Decimal(0), required=False)

    def validate(self, attrs):
        unknown = sorted(set(self.initial_data) - set(self.fields)) if isinstance(self.initial_data, dict) else []
        if unknown:
            hint = {"kill_switch": "; use POST /api/kill-switch/"}
            raise serializers.ValidationError(
                {name: [f"Not a trading setting that can be changed here{hint.get(name, '')}"] for name in unknown}
            )
        return attrs


class KillSwitchSerializer(serializers.Serializer):
    on = serializers.BooleanField(help_text="true: no new orders and working entries cancelled; false: off")
    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=500)


class KillSwitchResultSerializer(serializers.Serializer):
    control = TradingControlSerializer()
    cancelled = serializers.ListField(child=serializers.IntegerField(), help_text="Orders cancelled")
    pending = serializers.ListField(
        child=serializers.IntegerField(), help_text="Orders whose cancel was handed to the IBKR worker"
    )
    problems = serializers.ListField(child=serializers.CharField(), help_text="Orders that could not be cancelled")
    message = serializers.CharField()
