from django.contrib import admin

from brokers.models import UploadedBars


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
