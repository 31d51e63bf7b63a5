"""Rows of market data and trading: uploaded bars, the trading switches, orders, fills, positions, equity."""

from django.conf import settings
from django.db import models

from brokers.marketdata.bar_sizes import BAR_CHOICES


class UploadedBars(models.Model):
    """A user's own bars for one symbol and bar size; the bars are a normalised CSV artifact.

    One current upload per (owner, symbol, bar): a new upload replaces it."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="uploaded_bars")
    symbol = models.CharField(max_length=32)
    bar = models.CharField(max_length=4, choices=BAR_CHOICES)
    uploaded_at = models.DateTimeField(auto_now=True)
    rows = models.PositiveIntegerField()
    first = models.CharField(max_length=40, help_text="Timestamp of the first bar (ISO)")
    last = models.CharField(max_length=40, help_text="Timestamp of the last bar (ISO)")
    original_filename = models.CharField(max_length=255, blank=True)
    artifact = models.CharField(max_length=200, help_text="Artifact key of the normalised bars CSV")
    # Kept with the upload so every run reading these bars can say so (marketdata/uploads.py).
    splits = models.JSONField(
        default=list, blank=True, help_text="Splits applied from the file's split column (date, ratio, bars adjusted)"
    )
    warnings = models.JSONField(
        default=list, blank=True, help_text="Overnight moves that look like an unadjusted split (date, ratio)"
    )

    class Meta:
        ordering = ["symbol", "bar"]
        verbose_name = "uploaded bars"
        verbose_name_plural = "uploaded bars"
        constraints = [models.UniqueConstraint(fields=["owner", "symbol", "bar"], name="uploaded_bars_one_per_owner")]

    def __str__(self) -> str:
        return f"{self.symbol} {self.bar} ({self.rows} bars) of {self.owner}"


def _money(**kwargs):
    return models.DecimalField(max_digits=18, decimal_places=6, **kwargs)


class TradingControl(models.Model):
    """The trading switches and limits (one row, id 1), checked in code right before any order is sent.

    Editable on the Orders page (staff) and in the admin; each change is kept in `updated_by`/`updated_at`
    and the kill switch's own fields."""

    trading_enabled = models.BooleanField(
        default=False, help_text="Global switch: orders may go to a real broker (IBKR, paper or live account)"
    )
    kill_switch = models.BooleanField(default=False, help_text="On: no new order, and working entries are cancelled")
    kill_switch_reason = models.CharField(max_length=500, blank=True)
    kill_switch_at = models.DateTimeField(null=True, blank=True)
    max_notional = _money(default=25_000, help_text="Most one order may be worth (quantity x entry)")
    max_open_positions = models.PositiveIntegerField(default=5, help_text="Most symbols held at once, per broker")
    daily_loss_limit = _money(default=1_000, help_text="No new order once today's realised loss reaches this")
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "trading control"
        verbose_name_plural = "trading control"

    def __str__(self) -> str:
        return "Trading control"


class OrderStatus(models.TextChoices):
    BLOCKED = "blocked", "Blocked (not sent)"  # a switch or limit stopped it; never reached a broker
    SUBMITTING = "submitting", "Submitting"  # written, being sent: a redelivery reconciles first
    SUBMITTED = "submitted", "Working"  # at the broker, entry not filled
    FILLED = "filled", "Position open"  # entry filled, take-profit and stop-loss working
    CLOSED = "closed", "Closed"  # an exit filled
    CANCELLED = "cancelled", "Cancelled"
    REJECTED = "rejected", "Rejected by the broker"


ORDER_OPEN = (OrderStatus.SUBMITTING, OrderStatus.SUBMITTED, OrderStatus.FILLED)
ORDER_SENT = (*ORDER_OPEN, OrderStatus.CLOSED, OrderStatus.CANCELLED, OrderStatus.REJECTED)


class Order(models.Model):
    """One bracket order (limit entry, take-profit limit, stop-loss stop) and what became of it."""

    key = models.CharField(max_length=120, unique=True, help_text="Idempotency key from (run, node); IBKR orderRef")
    run = models.ForeignKey("workflows.Run", on_delete=models.SET_NULL, null=True, blank=True, related_name="orders")
    step_run = models.ForeignKey(
        "workflows.StepRun", on_delete=models.SET_NULL, null=True, blank=True, related_name="orders"
    )
    decision = models.ForeignKey(
        "strategies.AiRecord", on_delete=models.SET_NULL, null=True, blank=True, related_name="orders"
    )
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="orders")
    broker = models.CharField(max_length=16)
    mode = models.CharField(max_length=8, default="paper")
    account = models.CharField(max_length=40, blank=True)
    symbol = models.CharField(max_length=32, db_index=True)
    side = models.CharField(max_length=4)  # BUY or SELL (the entry)
    quantity = models.PositiveIntegerField()
    entry_price = _money()
    take_profit = _money()
    stop_loss = _money()
    tif = models.CharField(max_length=4, default="GTC")
    r_planned = models.FloatField(null=True, blank=True, help_text="R computed in code at the target sent")
    status = models.CharField(max_length=16, choices=OrderStatus.choices, db_index=True)
    reason = models.TextField(blank=True, help_text="Why it was blocked or rejected, or what the broker said")
    legs = models.JSONField(default=dict, help_text="Per leg: the broker's id and status")
    preview = models.JSONField(default=dict, blank=True, help_text="The broker's what-if: margin and commission")
    # Paper broker: bars after this one fill the order (the last bar the decision saw).
    placed_after = models.CharField(max_length=40, blank=True)
    data_source = models.CharField(max_length=16, blank=True)
    filled_quantity = models.PositiveIntegerField(default=0)
    avg_entry_price = _money(null=True, blank=True)
    avg_exit_price = _money(null=True, blank=True)
    exit_reason = models.CharField(max_length=16, blank=True)  # take_profit, stop_loss
    commission = _money(default=0)
    realized_pnl = _money(null=True, blank=True, help_text="After commissions, once closed")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    filled_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.side} {self.quantity} {self.symbol} @ {float(self.entry_price):g} ({self.status})"

    @property
    def is_open(self) -> bool:
        return self.status in ORDER_OPEN

    @property
    def notional(self):
        return self.quantity * self.entry_price

    @property
    def r_realized(self) -> float | None:
        """R earned: the exit's distance from the entry in units of the planned risk."""
        if self.avg_exit_price is None or self.avg_entry_price is None:
            return None
        risk = abs(float(self.entry_price) - float(self.stop_loss))
        if not risk:
            return None
        sign = 1 if self.side == "BUY" else -1
        return sign * (float(self.avg_exit_price) - float(self.avg_entry_price)) / risk


class Fill(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="fills")
    leg = models.CharField(max_length=16)  # entry, take_profit, stop_loss
    exec_id = models.CharField(max_length=80, unique=True, help_text="The broker's execution id (paper: key:leg)")
    quantity = models.PositiveIntegerField()
    price = _money()
    commission = _money(default=0)
    time = models.DateTimeField(help_text="When it filled (paper: the bar's time)")
    note = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["time", "id"]

    def __str__(self) -> str:
        return f"{self.leg} {self.quantity} @ {float(self.price):g}"


class Position(models.Model):
    """What we hold per broker, account and symbol, kept from our fills."""

    broker = models.CharField(max_length=16)
    account = models.CharField(max_length=40, blank=True)
    symbol = models.CharField(max_length=32)
    quantity = models.IntegerField(default=0, help_text="Negative for a short")
    avg_cost = _money(default=0)
    realized_pnl = _money(default=0, help_text="After commissions")
    last_price = _money(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["broker", "symbol"]
        constraints = [
            models.UniqueConstraint(fields=["broker", "account", "symbol"], name="one_position_per_symbol"),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} {self.symbol} ({self.broker})"

    @property
    def unrealized_pnl(self):
        if self.last_price is None or not self.quantity:
            return None
        return (self.last_price - self.avg_cost) * self.quantity


class AccountSnapshot(models.Model):
    broker = models.CharField(max_length=16)
    account = models.CharField(max_length=40, blank=True)
    mode = models.CharField(max_length=8)
    taken_at = models.DateTimeField(db_index=True)
    equity = _money()
    cash = _money()
    realized_pnl = _money(default=0)
    unrealized_pnl = _money(default=0)

    class Meta:
        ordering = ["taken_at", "id"]
        get_latest_by = "taken_at"

    def __str__(self) -> str:
        return f"{self.broker} {self.account} {self.equity:g} at {self.taken_at:%Y-%m-%d %H:%M}"
