"""The step registry: every step type a workflow node can use, under a stable dotted name.

Apps declare their step types with `@register` in a `steps.py` of the topic they belong to
(`strategies/risk/steps.py`, ...); `workflows/apps.py` imports every such module at start-up by
walking the installed apps' folders, so the engine never names a domain app.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from django.core.exceptions import ImproperlyConfigured
from pydantic import BaseModel, ConfigDict

from workflows.errors import TransientStepError

if TYPE_CHECKING:
    from workflows.engine import StepContext

T = TypeVar("T")

# Port type that connects to anything.
ANY = "any"


@dataclass(frozen=True)
class Port:
    name: str
    type: str
    description: str = ""
    required: bool = True

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "description": self.description, "required": self.required}


class NoParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StepType:
    """Base class of every step type. Subclasses set the class attributes and `run`."""

    name: ClassVar[str]
    # The version of the type's params. Bump it when a change would break a stored graph
    # (a param renamed, removed or given another meaning) and teach `upgrade` the step.
    version: ClassVar[int] = 1
    label: ClassVar[str]
    category: ClassVar[str]
    description: ClassVar[str] = ""
    Params: ClassVar[type[BaseModel]] = NoParams
    inputs: ClassVar[tuple[Port, ...]] = ()
    outputs: ClassVar[tuple[Port, ...]] = ()
    # Celery queue: default, charts, ai or ibkr (DESIGN §5).
    queue: ClassVar[str] = "default"
    # Default hard time limit in seconds; a node's `timeout_s` overrides it.
    time_limit: ClassVar[int] = 60
    # False for steps with side effects outside our database (orders, notifications): a
    # re-execution after a crash gets the same `ctx.idempotency_key` and must not repeat them.
    idempotent: ClassVar[bool] = True
    # Exceptions worth retrying under the node's retry policy. Anything else fails at once.
    retry_on: ClassVar[tuple[type[BaseException], ...]] = (TransientStepError,)
    # Roles used by graph validation: "data_source" (a workflow needs one), "risk_check"
    # (what an order must be downstream of on every path).
    tags: ClassVar[frozenset[str]] = frozenset()
    # Each tag named here must sit on every path from a workflow input to this step.
    requires_upstream: ClassVar[frozenset[str]] = frozenset()

    # A template showing this step's results on the run page, beyond its JSON (an AI step's
    # reasoning and conversation), and the context it needs for one StepRun.
    result_template: ClassVar[str | None] = None

    def run(self, ctx: StepContext, inputs: dict[str, Any], params: BaseModel) -> dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def upgrade(cls, params: dict[str, Any], from_version: int) -> dict[str, Any]:
        """A node's raw params written for `from_version`, rewritten for `from_version + 1`.

        Called once per step (1 -> 2, 2 -> 3, ...) by `workflows.graph.graph_upgrade` on a copy
        of a stored node's params; values may still hold `{{name}}` references. Return params
        unchanged for a `from_version` that needs nothing (so `upgrade(params, cls.version)` is
        a no-op). Raise to refuse: the node then stays at its version and validation says why."""
        return params

    @classmethod
    def result_context(cls, step_run: Any) -> dict[str, Any]:
        return {}

    @classmethod
    def queue_for(cls, params: dict[str, Any]) -> str:
        """The queue for a node with these (raw) params; most types always use `queue`."""
        return cls.queue

    @classmethod
    def input(cls, name: str) -> Port | None:
        return next((p for p in cls.inputs if p.name == name), None)

    @classmethod
    def output(cls, name: str) -> Port | None:
        return next((p for p in cls.outputs if p.name == name), None)

    @classmethod
    def describe(cls) -> dict[str, Any]:
        return {
            "name": cls.name,
            "version": cls.version,
            "label": cls.label,
            "category": cls.category,
            "description": cls.description,
            "params_schema": cls.Params.model_json_schema(),
            "inputs": [p.as_dict() for p in cls.inputs],
            "outputs": [p.as_dict() for p in cls.outputs],
            "queue": cls.queue,
            "time_limit": cls.time_limit,
            "idempotent": cls.idempotent,
            "tags": sorted(cls.tags),
            "requires_upstream": sorted(cls.requires_upstream),
        }


class Registry(Generic[T]):
    """Plugins of one kind (step types, brokers, market-data sources, notification channels), each
    under a stable name. The one registry pattern: adding a plugin is registering it, nothing else."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, item: T) -> T:
        name = getattr(item, "name", None)
        if not isinstance(name, str) or not name:
            raise ImproperlyConfigured(f"A {self.kind} needs a name")
        if name in self._items:
            raise ImproperlyConfigured(f"{self.kind.capitalize()} {name!r} is registered twice")
        self.check(item)
        self._items[name] = item
        return item

    def check(self, item: T) -> None:
        """Refuse an incomplete plugin at start-up (ImproperlyConfigured), not at its first use."""

    def unregister(self, name: str) -> None:
        self._items.pop(name, None)

    def get(self, name: str) -> T | None:
        return self._items.get(name)

    def names(self) -> list[str]:
        return sorted(self._items)

    def all(self) -> list[T]:
        return [self._items[name] for name in self.names()]

    def unknown(self, name: str) -> str:
        """The message for a name nobody registered, naming the known ones."""
        return f'Unknown {self.kind} "{name}"; use one of: {", ".join(self.names()) or "none"}'


def import_plugins(package: str, module: str) -> list[str]:
    """Import `<package>.<folder>.<module>` for every folder of `package` that has one: how a kind's
    plugins (one folder each) register themselves at start-up. Returns the modules imported."""
    root = Path(import_module(package).__file__).parent
    found = []
    for folder in sorted(p for p in root.iterdir() if (p / f"{module}.py").is_file()):
        if not (folder / "__init__.py").is_file():
            # Silently skipped, the plugin would just be missing: say so at start-up instead.
            raise ImproperlyConfigured(f"{folder} has a {module}.py but no __init__.py: it cannot be imported")
        found.append(f"{package}.{folder.name}.{module}")
        import_module(found[-1])
    return found


class StepRegistry(Registry[type[StepType]]):
    def __init__(self) -> None:
        super().__init__("step type")

    def check(self, step_type: type[StepType]) -> None:
        name = step_type.name
        for attr in ("label", "category"):
            if not getattr(step_type, attr, None):
                raise ImproperlyConfigured(f"Step type {name!r} has no {attr}")
        version = getattr(step_type, "version", None)
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise ImproperlyConfigured(f"Step type {name!r} has version {version!r}; versions are whole numbers from 1")

    def all(self) -> list[type[StepType]]:
        return sorted(self._items.values(), key=lambda t: (t.category, t.name))


registry = StepRegistry()
register = registry.register
