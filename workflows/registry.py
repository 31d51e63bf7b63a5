"""The step registry: every step type a workflow node can use, under a stable dotted name.

Apps declare their step types with `@register` in a `steps.py` of the topic they belong to
(`strategies/risk/steps.py`, ...); `workflows/apps.py` imports every such module at start-up by
walking the installed apps' folders, so the engine never names a domain app.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from django.core.exceptions import ImproperlyConfigured
from pydantic import BaseModel, ConfigDict

from workflows.errors import TransientStepError

if TYPE_CHECKING:
    from workflows.engine import StepContext

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


class StepRegistry:
    def __init__(self) -> None:
        self._types: dict[str, type[StepType]] = {}

    def register(self, step_type: type[StepType]) -> type[StepType]:
        name = step_type.name
        if name in self._types:
            raise ImproperlyConfigured(f"Step type {name!r} is registered twice")
        for attr in ("label", "category"):
            if not getattr(step_type, attr, None):
                raise ImproperlyConfigured(f"Step type {name!r} has no {attr}")
        version = getattr(step_type, "version", None)
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise ImproperlyConfigured(f"Step type {name!r} has version {version!r}; versions are whole numbers from 1")
        self._types[name] = step_type
        return step_type

    def unregister(self, name: str) -> None:
        self._types.pop(name, None)

    def get(self, name: str) -> type[StepType] | None:
        return self._types.get(name)

    def all(self) -> list[type[StepType]]:
        return sorted(self._types.values(), key=lambda t: (t.category, t.name))


registry = StepRegistry()
register = registry.register
