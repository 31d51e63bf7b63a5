"""The workflows app: at start-up it finds every step type, wherever an app declares one."""

from importlib import import_module
from pathlib import Path

from django.apps import AppConfig, apps
from django.conf import settings

from workflows.registry import import_plugins


def steps_modules(app_name: str, app_path: str) -> list[str]:
    """Every `steps` module of an app: `<app>/steps.py` and `<app>/<topic>/.../steps.py`."""
    root = Path(app_path)
    found = []
    for path in sorted(root.rglob("steps.py")):
        parts = path.relative_to(root).with_suffix("").parts
        if "tests" not in parts and (path.parent / "__init__.py").is_file():
            found.append(".".join((app_name, *parts)))
    return found


class WorkflowsConfig(AppConfig):
    name = "workflows"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Every project app's steps modules register their step types; workflows names no domain
        # app itself, it walks the apps the PROJECT_APPS setting lists.
        for name in settings.PROJECT_APPS:
            config = apps.get_app_config(name.rsplit(".", 1)[-1])
            for module in steps_modules(config.name, config.path):
                import_module(module)
        # Notification channel kinds: one folder each under workflows/notify/channels/.
        import_plugins("workflows.notify.channels", "channel")
        for module in settings.EXTRA_STEP_MODULES:
            import_module(module)
