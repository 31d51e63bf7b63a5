from importlib import import_module

from django.apps import AppConfig
from django.conf import settings
from django.utils.module_loading import autodiscover_modules


class WorkflowsConfig(AppConfig):
    name = "workflows"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Every app's steps.py registers its step types; workflows imports no domain app.
        autodiscover_modules("steps")
        for module in settings.EXTRA_STEP_MODULES:
            import_module(module)
