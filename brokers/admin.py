"""Django admin for uploads, orders, fills, positions, account snapshots and the trading switches."""

from django import forms
from django.contrib import admin, messages

from brokers.models import AccountSnapshot, Fill, Order, Position, TradingControl, UploadedBars
from brokers.orders.selectors import kill_switch_outcome, orders_working, trading_control
from brokers.orders.services import kill_switch_set, trading_control_update

LIMIT_FIELDS = ("trading_enabled", "max_notional", "max_open_positions", "daily_loss_limit")


@admin.register(UploadedBars)
class UploadedBarsAdmin(admin.ModelAdmin):
    list_display = ("symbol", "bar", "owner", "rows", "first", "last", "uploaded_at")
    list_filter = ("bar",)
    search_fields = ("symbol", "owner__username", "original_filename")
    readonly_fields = (
        "owner",
        "symbol",
        "bar",
        "rows",
        "first",
        "last",
        "original_filename",
        "artifact",
        "uploaded_at",
    )

    def has_add_permission(self, request):
        return False  # uploads go through the validating page or API


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows written only by the broker services and syncs: viewable here, never edited."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class FillInline(admin.TabularInline):
    model = Fill
    extra = 0
    can_delete = False
    fields = ("leg", "quantity", "price", "commission", "time", "exec_id", "note")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Order)
class OrderAdmin(ReadOnlyAdmin):
    list_display = ("id", "symbol", "side", "quantity", "entry_price", "status", "broker", "mode", "owner")
    list_display += ("realized_pnl", "created_at")
    list_filter = ("status", "broker", "mode", "created_at")
    search_fields = ("symbol", "key", "owner__username")
    list_select_related = ("owner",)
    raw_id_fields = ("run", "step_run", "decision")
    date_hierarchy = "created_at"
    inlines = (FillInline,)


@admin.register(Fill)
class FillAdmin(ReadOnlyAdmin):
    list_display = ("order", "leg", "quantity", "price", "commission", "time")
    list_filter = ("leg",)
    search_fields = ("order__symbol", "exec_id")
    list_select_related = ("order",)


@admin.register(Position)
class PositionAdmin(ReadOnlyAdmin):
    list_display = ("symbol", "broker", "account", "quantity", "avg_cost", "last_price", "realized_pnl", "updated_at")
    list_filter = ("broker",)
    search_fields = ("symbol",)


@admin.register(AccountSnapshot)
class AccountSnapshotAdmin(ReadOnlyAdmin):
    list_display = ("taken_at", "broker", "account", "mode", "equity", "cash", "realized_pnl", "unrealized_pnl")
    list_filter = ("broker", "mode")
    date_hierarchy = "taken_at"


class TradingControlForm(forms.ModelForm):
    class Meta:
        model = TradingControl
        fields = ("trading_enabled", "max_notional", "max_open_positions", "daily_loss_limit")
        fields += ("kill_switch", "kill_switch_reason")

    def _not_negative(self, name: str):
        value = self.cleaned_data[name]
        if value is not None and value < 0:
            raise forms.ValidationError("Must be zero or more.")
        return value

    def clean_max_notional(self):
        return self._not_negative("max_notional")

    def clean_daily_loss_limit(self):
        return self._not_negative("daily_loss_limit")


@admin.register(TradingControl)
class TradingControlAdmin(admin.ModelAdmin):
    """The one row of switches and limits. A change goes through the services: turning the kill
    switch on here cancels the working orders exactly as the Orders page does."""

    list_display = ("__str__", "kill_switch", "trading_enabled", "max_notional", "max_open_positions")
    list_display += ("daily_loss_limit", "updated_by", "updated_at")
    fields = (
        "trading_enabled",
        "max_notional",
        "max_open_positions",
        "daily_loss_limit",
        "kill_switch",
        "kill_switch_reason",
        "kill_switch_at",
        "updated_by",
        "updated_at",
    )
    readonly_fields = ("kill_switch_at", "updated_by", "updated_at")
    form = TradingControlForm

    def has_add_permission(self, request) -> bool:
        return False  # the one row is created on first use (trading_control)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def changelist_view(self, request, extra_context=None):
        trading_control()
        return super().changelist_view(request, extra_context)

    def save_model(self, request, obj, form, change) -> None:
        values = {name: form.cleaned_data[name] for name in LIMIT_FIELDS if name in form.changed_data}
        if values:
            trading_control_update(user=request.user, **values)
        if {"kill_switch", "kill_switch_reason"} & set(form.changed_data):
            working = list(orders_working().values_list("id", flat=True)) if obj.kill_switch else []
            _, problems = kill_switch_set(on=obj.kill_switch, user=request.user, reason=obj.kill_switch_reason)
            if obj.kill_switch:
                outcome = kill_switch_outcome(order_ids=working, problems=problems)
                level = messages.WARNING if problems else messages.SUCCESS
                self.message_user(request, f"Kill switch on: {outcome['message']}.", level=level)
            else:
                self.message_user(request, "Kill switch off.", level=messages.SUCCESS)
        obj.refresh_from_db()
