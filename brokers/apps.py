"""The brokers app: at start-up every integration folder (brokers/adapters/<name>/kind.py) registers itself."""

from django.apps import AppConfig
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


class BrokersConfig(AppConfig):
    name = "brokers"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from brokers.adapters.registry import broker_kinds, source_kinds
        from workflows.registry import import_plugins

        import_plugins("brokers.adapters", "kind")
        # The settings name a registered kind: a typo stops the start, with the names that would do.
        for setting, kinds in (("BROKER", broker_kinds), ("MARKET_DATA_SOURCE", source_kinds)):
            value = getattr(settings, setting)
            if kinds.get(value) is None:
                raise ImproperlyConfigured(f"{setting}={value!r}: {kinds.unknown(value)}")
