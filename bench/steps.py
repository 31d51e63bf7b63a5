"""A no-op step type and a no-op Celery task for bench/engine.py (loaded via EXTRA_STEP_MODULES)."""

from celery import shared_task

from workflows.registry import ANY, Port, StepType, register, registry


@shared_task(name="bench.noop")
def noop_task() -> int:
    return 1


class _Noop(StepType):
    label = "No-op"
    category = "bench"
    outputs = (Port("out", ANY),)

    def run(self, ctx, inputs, params):
        return {"out": 1}


class NoopSource(_Noop):
    name = "bench.source"
    tags = frozenset({"data_source"})


class Noop(_Noop):
    name = "bench.noop"
    inputs = (Port("in", ANY),)


for _type in (NoopSource, Noop):
    if registry.get(_type.name) is None:
        register(_type)
