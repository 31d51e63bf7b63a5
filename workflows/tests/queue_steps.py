"""A step type that never checks for cancellation (a blocking call, say), for the queue page's
terminate test; a test worker loads it through EXTRA_STEP_MODULES."""

import time

from workflows.registry import ANY, Port, StepType, register, registry
from workflows.tests.step_types import _Params, record


class Busy(StepType):
    name = "test.busy"
    label = "Test busy (ignores cancel)"
    category = "test"
    Params = _Params
    inputs = (Port("in", ANY),)
    outputs = (Port("out", ANY),)

    def run(self, ctx, inputs, params):
        record("exec", f"{ctx.run_id}-{ctx.node_id}")
        time.sleep(params.sleep_s)
        record("busy-done", f"{ctx.run_id}-{ctx.node_id}")
        return {"out": "done"}


if registry.get(Busy.name) is None:
    register(Busy)
