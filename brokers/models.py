from django.conf import settings
from django.db import models

BAR_CHOICES = [(bar, bar) for bar in ("1m", "5m", "15m", "1h", "1d", "1w")]


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

    class Meta:
        ordering = ["symbol", "bar"]
        verbose_name = "uploaded bars"
        verbose_name_plural = "uploaded bars"
        constraints = [models.UniqueConstraint(fields=["owner", "symbol", "bar"], name="uploaded_bars_one_per_owner")]

    def __str__(self) -> str:
        return f"{self.symbol} {self.bar} ({self.rows} bars) of {self.owner}"
