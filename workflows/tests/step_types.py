"""Step types used only by the engine tests; a test worker loads them via EXTRA_STEP_MODULES.

Each execution is recorded in the database (a plain table of the test database, created on
first use), so the test process can count executions done by other processes, including a
worker killed with SIGKILL.
"""

import time
from datetime import UTC, datetime
from typing import ClassVar, Literal

from celery.exceptions import SoftTimeLimitExceeded
from django.db import connection
from pydantic import BaseModel, ConfigDict, Field

from workflows.errors import StepCancelled, StepError, TransientStepError
from workflows.registry import ANY, Port, StepType, register, registry


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sleep_s: float = Field(0, ge=0, le=60)
    tag: str = ""


TABLE = "test_step_record"


def _table() -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} (kind varchar(50), key varchar(200), at double precision)")


def record(kind: str, key: str) -> None:
    _table()
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {TABLE} (kind, key, at) VALUES (%s, %s, %s)", [kind, key, time.time()])  # noqa: S608


def records(kind: str, key: str | None = None) -> list[tuple[str, float]]:
    _table()
    with connection.cursor() as cursor:
        if key is None:
            cursor.execute(f"SELECT key, at FROM {TABLE} WHERE kind = %s ORDER BY at", [kind])  # noqa: S608
        else:
            cursor.execute(f"SELECT key, at FROM {TABLE} WHERE kind = %s AND key = %s ORDER BY at", [kind, key])  # noqa: S608
        return list(cursor.fetchall())


def records_clear() -> None:
    _table()
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {TABLE}")  # noqa: S608


def _sleep(ctx, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        ctx.check_cancelled()
        time.sleep(0.05)


def _reg(cls):
    if registry.get(cls.name) is None:
        register(cls)
    return cls


@_reg
class Source(StepType):
    name = "test.source"
    label = "Test source"
    category = "test"
    Params = _Params
    outputs = (Port("out", ANY),)
    tags = frozenset({"data_source"})

    def run(self, ctx, inputs, params):
        record("exec", f"{ctx.run_id}-{ctx.node_id}")
        _sleep(ctx, params.sleep_s)
        return {"out": {"from": ctx.node_id, "symbol": ctx.symbol, "tag": params.tag}}


@_reg
class Echo(StepType):
    name = "test.echo"
    label = "Test echo"
    category = "test"
    Params = _Params
    inputs = (Port("in", ANY),)
    outputs = (Port("out", ANY),)

    def run(self, ctx, inputs, params):
        record("exec", f"{ctx.run_id}-{ctx.node_id}")
        _sleep(ctx, params.sleep_s)
        return {"out": {"from": ctx.node_id, "got": inputs["in"]}}


@_reg
class Join(StepType):
    name = "test.join"
    label = "Test join"
    category = "test"
    Params = _Params
    inputs = (Port("a", ANY), Port("b", ANY))
    outputs = (Port("out", ANY),)

    def run(self, ctx, inputs, params):
        record("exec", f"{ctx.run_id}-{ctx.node_id}")
        return {"out": [inputs["a"], inputs["b"]]}


class _FailParams(_Params):
    fail_times: int = Field(1, ge=0, description="Transient failures before succeeding")
    permanent: bool = False


@_reg
class Flaky(StepType):
    name = "test.flaky"
    label = "Test flaky"
    category = "test"
    Params = _FailParams
    inputs = (Port("in", ANY, required=False),)
    outputs = (Port("out", ANY),)

    def run(self, ctx, inputs, params):
        record("exec", f"{ctx.run_id}-{ctx.node_id}")
        if params.permanent:
            raise StepError("permanent failure asked for by the test")
        if ctx.attempt <= params.fail_times:
            raise TransientStepError(f"transient failure {ctx.attempt}")
        return {"out": ctx.attempt}


class _SwitchParams(_Params):
    fail_if_file_missing: str = ""


@_reg
class FailUnless(StepType):
    """Fails until a marker file exists: lets a test fail a run, then fix it and rerun."""

    name = "test.fail_unless"
    label = "Test fail unless"
    category = "test"
    Params = _SwitchParams
    inputs = (Port("in", ANY),)
    outputs = (Port("out", ANY),)

    def run(self, ctx, inputs, params):
        record("exec", f"{ctx.run_id}-{ctx.node_id}")
        if not records("marker", params.fail_if_file_missing):
            raise StepError(f"marker {params.fail_if_file_missing} is missing")
        return {"out": inputs["in"]}


@_reg
class SideEffect(StepType):
    """Not idempotent: does its side effect once per idempotency key, then lingers so a test
    can kill the worker mid-step. Re-executions must find the key and not repeat the effect."""

    name = "test.side_effect"
    label = "Test side effect"
    category = "test"
    Params = _Params
    inputs = (Port("in", ANY),)
    outputs = (Port("out", ANY),)
    idempotent = False

    def run(self, ctx, inputs, params):
        record("exec", f"{ctx.run_id}-{ctx.node_id}")
        if not records("effect", ctx.idempotency_key):
            record("effect", ctx.idempotency_key)
            ctx.log("side effect done")
            _sleep(ctx, params.sleep_s)
        else:
            ctx.log("side effect already done for this key; not repeating it")
        return {"out": "done"}


@_reg
class RiskCheck(StepType):
    name = "test.risk"
    label = "Test risk check"
    category = "test"
    inputs = (Port("in", ANY),)
    outputs = (Port("out", ANY),)
    tags = frozenset({"risk_check"})

    def run(self, ctx, inputs, params):
        return {"out": inputs["in"]}


@_reg
class Order(StepType):
    name = "test.order"
    label = "Test order"
    category = "test"
    inputs = (Port("in", ANY),)
    outputs = (Port("out", ANY),)
    requires_upstream = frozenset({"risk_check"})
    idempotent = False

    def run(self, ctx, inputs, params):
        return {"out": "ordered"}


class _TypedParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    count: int = Field(ge=1, le=10)
    label: str = "x"


@_reg
class Typed(StepType):
    name = "test.typed"
    label = "Test typed"
    category = "test"
    Params = _TypedParams
    inputs = (Port("in", "bars"),)
    outputs = (Port("out", "chart"),)

    def run(self, ctx, inputs, params):
        return {"out": params.count}


@_reg
class Bars(StepType):
    name = "test.bars"
    label = "Test bars source"
    category = "test"
    outputs = (Port("bars", "bars"),)
    tags = frozenset({"data_source"})

    def run(self, ctx, inputs, params):
        return {"bars": []}


class _MisbehaveParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    mode: Literal["bad_output", "self_cancel", "crash"]


@_reg
class Misbehave(StepType):
    """Breaks the step contract in the ways a buggy step type could."""

    name = "test.misbehave"
    label = "Test misbehaving step"
    category = "test"
    Params = _MisbehaveParams
    inputs = (Port("in", ANY),)
    outputs = (Port("out", ANY),)

    def run(self, ctx, inputs, params):
        if params.mode == "self_cancel":
            raise StepCancelled()
        if params.mode == "crash":
            raise RuntimeError("internal detail: token=abc123")
        return {"out": datetime.now(UTC)}  # not JSON


@_reg
class Stubborn(StepType):
    """Ignores its soft time limit (a step stuck in C code, or catching every exception): only
    the hard limit stops it."""

    name = "test.stubborn"
    label = "Test step ignoring its soft time limit"
    category = "test"
    Params = _Params
    inputs = (Port("in", ANY),)
    outputs = (Port("out", ANY),)

    def run(self, ctx, inputs, params):
        record("exec", f"{ctx.run_id}-{ctx.node_id}")
        end = time.monotonic() + params.sleep_s
        while time.monotonic() < end:
            try:
                time.sleep(0.05)
            except SoftTimeLimitExceeded:
                record("soft_limit", f"{ctx.run_id}-{ctx.node_id}")
        return {"out": ctx.node_id}


# Versioned step types (test_step_versions.py).


class _VersionedParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    size: int = Field(1, ge=1, le=100)


@_reg
class Versioned(StepType):
    """At version 3 after two renames: `n` (v1) became `count` (v2), then `size` (v3). Each
    call of `upgrade` is noted in `upgrade_calls`, so a test can see one call per step."""

    name = "test.versioned"
    version = 3
    label = "Test versioned"
    category = "test"
    Params = _VersionedParams
    inputs = (Port("in", ANY),)
    outputs = (Port("out", ANY),)
    upgrade_calls: ClassVar[list[int]] = []

    @classmethod
    def upgrade(cls, params, from_version):
        cls.upgrade_calls.append(from_version)
        renames = {1: ("n", "count"), 2: ("count", "size")}
        if from_version in renames:
            old, new = renames[from_version]
            if old in params and new in params:
                raise ValueError(f'both "{old}" and "{new}" are given')
            if old in params:
                params = {**params, new: params[old]}
                del params[old]
        return params

    def run(self, ctx, inputs, params):
        return {"out": params.size}


class _OldNameParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    old_name: str = ""


class _NewNameParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    new_name: str = ""


class RenamedV1(StepType):
    """`test.renamed` before a deploy renamed its param. Not registered on import: a test
    registers it, stores a version, then puts RenamedV2 in its place."""

    name = "test.renamed"
    label = "Test renamed"
    category = "test"
    Params = _OldNameParams
    inputs = (Port("in", ANY),)
    outputs = (Port("out", ANY),)

    def run(self, ctx, inputs, params):
        record("renamed", params.old_name)
        return {"out": params.old_name}


class RenamedV2(RenamedV1):
    """`test.renamed` after the deploy: `old_name` is now `new_name`."""

    version = 2
    Params = _NewNameParams

    @classmethod
    def upgrade(cls, params, from_version):
        if from_version == 1 and "old_name" in params:
            params = {**params, "new_name": params["old_name"]}
            del params["old_name"]
        return params

    def run(self, ctx, inputs, params):
        record("renamed", params.new_name)
        return {"out": params.new_name}
