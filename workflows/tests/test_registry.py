"""Checks every registered step type must pass, whoever registered it."""

import json

import pytest
from django.core.exceptions import ImproperlyConfigured
from pydantic import BaseModel

from workflows.registry import StepRegistry, StepType, registry

QUEUES = {"default", "charts", "ai", "ibkr"}


@pytest.mark.parametrize("step_type", registry.all(), ids=lambda t: t.name)
def test_step_type_is_complete(step_type):
    assert step_type.label and step_type.category
    assert step_type.queue in QUEUES
    assert 1 <= step_type.time_limit <= 86400
    assert issubclass(step_type.Params, BaseModel)
    assert step_type.Params.model_config.get("extra") == "forbid", "unknown params must be refused"
    for ports in (step_type.inputs, step_type.outputs):
        assert len({p.name for p in ports}) == len(ports), "port names must be unique"
    json.dumps(step_type.describe())  # what /api/step-types/ serves


@pytest.mark.parametrize("step_type", registry.all(), ids=lambda t: t.name)
def test_step_type_version_and_upgrade_of_current_params(step_type):
    assert isinstance(step_type.version, int) and step_type.version >= 1
    assert step_type.describe()["version"] == step_type.version
    # Params already at the current version: upgrade must leave them as they are.
    params = {name: f"<{name}>" for name in step_type.Params.model_fields}
    assert step_type.upgrade(dict(params), step_type.version) == params
    assert step_type.upgrade({}, step_type.version) == {}


def test_domain_step_types_are_discovered_and_documented():
    names = {t.name for t in registry.all()}
    assert {"market.fetch_bars", "market.resample"} <= names
    for name in ("market.fetch_bars", "market.resample"):
        assert registry.get(name).description


def test_registry_refuses_duplicates_and_incomplete_types():
    local = StepRegistry()

    class One(StepType):
        name, label, category = "x.one", "One", "x"

    local.register(One)
    with pytest.raises(ImproperlyConfigured, match="registered twice"):
        local.register(One)

    class NoLabel(StepType):
        name, label, category = "x.two", "", "x"

    with pytest.raises(ImproperlyConfigured, match="no label"):
        local.register(NoLabel)


def test_steps_modules_are_found_in_every_topic_package_but_not_in_tests():
    from django.apps import apps

    from workflows.apps import steps_modules

    config = apps.get_app_config("strategies")
    found = steps_modules(config.name, config.path)
    assert {"strategies.risk.steps", "strategies.orders.steps", "strategies.ai.steps"} <= set(found)
    assert not [m for m in found if ".tests" in m]
    # Every module found was imported at start-up: its step types are registered.
    assert registry.get("risk.r_check") is not None and registry.get("broker.place_order") is not None
