"""The workflow graph: its format, parameter references and validation (DESIGN §3).

Validation returns every problem at once, each pointing at a node, an edge and a field, so the
editor can show them inline. It runs on every save (without run-time values such as the
symbol) and again when a run starts (with everything resolved).
"""

from __future__ import annotations

import copy
import logging
import re
from collections import deque
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, WithJsonSchema, field_validator

from workflows.errors import GraphInvalid
from workflows.registry import ANY, StepType, registry

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1
MAX_NODES = 500
MAX_EDGES = 2000
# How deep lists and objects may nest inside one parameter value.
MAX_PARAM_DEPTH = 8
DEFAULT_TIME_LIMIT = 60
REF = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
# Values only known when a run starts; a reference to them is valid at save time.
RUNTIME_PARAMS = frozenset({"symbol"})
ParamValue = str | int | float | bool
# Where the editor draws a node. Only the values are checked (the engine never reads it); the
# published schemas (workflows/api/schema.py) name the x and y the editor writes.
Position = Annotated[
    dict[str, float],
    WithJsonSchema(
        {
            "type": "object",
            "properties": {"x": {"type": "number"}, "y": {"type": "number"}},
            "required": ["x", "y"],
            "additionalProperties": {"type": "number"},
        }
    ),
]


class RetrySpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max: int = Field(0, ge=0, le=10, description="Retries after the first attempt")
    backoff_s: float = Field(5, ge=0, le=3600, description="Delay before the first retry; doubles each time")


class NodeSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=r"^[A-Za-z0-9_\-]{1,64}$")
    type: str
    # The step type's version the params are written for (see graph_upgrade). Missing: the
    # type's current version here; a stored graph is upgraded (missing = 1) before it gets here.
    version: int | None = Field(None, ge=1, strict=True)
    label: str = ""
    params: dict[str, Any] = Field(default_factory=dict)
    retry: RetrySpec = Field(default_factory=RetrySpec)
    timeout_s: int | None = Field(None, ge=1, le=86400)
    position: Position | None = None

    @field_validator("params")
    @classmethod
    def _shallow(cls, params: dict[str, Any]) -> dict[str, Any]:
        if not _shallow_enough(params):
            raise ValueError(f"parameter values may nest at most {MAX_PARAM_DEPTH} levels deep")
        return params


def _shallow_enough(params: dict[str, Any]) -> bool:
    # Walked without recursion, so a hostile value cannot exhaust the stack.
    todo = [(v, 1) for v in params.values()]
    while todo:
        value, depth = todo.pop()
        if depth > MAX_PARAM_DEPTH:
            return False
        if isinstance(value, dict):
            todo.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            todo.extend((v, depth + 1) for v in value)
    return True


class EdgeSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    source: str
    source_port: str
    target: str
    target_port: str


class GraphSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    schema_: int = Field(SCHEMA_VERSION, alias="schema")
    params: dict[str, ParamValue] = Field(default_factory=dict)
    nodes: list[NodeSpec] = Field(max_length=MAX_NODES)
    edges: list[EdgeSpec] = Field(default_factory=list, max_length=MAX_EDGES)


class GraphErrorSpec(BaseModel):
    """One validation problem: it points at a node, an edge (its index) and a field."""

    model_config = ConfigDict(extra="forbid")
    node: str | None
    edge: int | None
    field: str | None
    code: str
    message: str


def error(message: str, *, code: str, node: str | None = None, field: str | None = None, edge: int | None = None):
    return GraphErrorSpec(node=node, edge=edge, field=field, code=code, message=message).model_dump()


class MissingParam(KeyError):
    pass


def references(value: Any) -> set[str]:
    """Names referenced as {{name}} anywhere inside a param value."""
    if isinstance(value, str):
        return set(REF.findall(value))
    if isinstance(value, list):
        return set().union(*(references(v) for v in value)) if value else set()
    if isinstance(value, dict):
        return set().union(*(references(v) for v in value.values())) if value else set()
    return set()


def substitute(value: Any, context: dict[str, Any]) -> Any:
    """Replace {{name}} references. A value that is one whole reference keeps the type of
    what it refers to ("{{min_r}}" -> 1.5); a reference inside text is interpolated."""
    if isinstance(value, str):
        whole = REF.fullmatch(value.strip())
        if whole:
            name = whole.group(1)
            if name not in context:
                raise MissingParam(name)
            return context[name]

        def one(match: re.Match[str]) -> str:
            if match.group(1) not in context:
                raise MissingParam(match.group(1))
            return str(context[match.group(1)])

        return REF.sub(one, value)
    if isinstance(value, list):
        return [substitute(v, context) for v in value]
    if isinstance(value, dict):
        return {k: substitute(v, context) for k, v in value.items()}
    return value


def _is_version(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _upgrade_params(step_type: type[StepType], params: dict[str, Any], from_version: int) -> dict[str, Any]:
    """Params written for `from_version`, upgraded one version at a time to the type's current one."""
    for version in range(from_version, step_type.version):
        params = step_type.upgrade(params, version)
        if not isinstance(params, dict):
            raise TypeError(f"{step_type.name}.upgrade(params, {version}) returned {type(params).__name__}, not a dict")
    return params


def graph_upgrade(graph: Any, *, arriving: bool = False) -> tuple[Any, list[dict[str, Any]]]:
    """A copy of the graph with every node brought to its step type's current version, and the
    list of upgrades made: `{"node", "type", "from_version", "to_version"}` each.

    A node without `version` is version 1 in a stored graph (everything stored before step
    types had versions); with `arriving=True` (a graph from a client: save, create, import,
    validate) it is written for the type's current version. A node older than its type is
    upgraded by calling `upgrade(params, v)` once per step, v = its version .. current - 1.
    Every node of a known type gets its `version` written, so what is saved from this carries
    versions. Left as they are, for validation to report: nodes of unknown types, versions newer
    than the type's, malformed nodes, and a node whose upgrade raised (it keeps its version).
    The graph passed in is never changed (stored versions are immutable)."""
    if not isinstance(graph, dict) or not isinstance(graph.get("nodes"), list):
        return graph, []
    # Copies of the graph and its nodes; params are copied (deeply) only for an upgrade.
    graph = {**graph, "nodes": [dict(n) if isinstance(n, dict) else n for n in graph["nodes"]]}
    upgrades = []
    for node in graph["nodes"]:
        step_type = registry.get(node["type"]) if isinstance(node, dict) and isinstance(node.get("type"), str) else None
        if step_type is None:
            continue
        version = node.get("version")
        if version is None:
            version = step_type.version if arriving else 1
        elif not _is_version(version):
            continue
        params = node.get("params", {})
        if version >= step_type.version or not isinstance(params, dict) or not _shallow_enough(params):
            node["version"] = version
            continue
        try:
            node["params"] = _upgrade_params(step_type, copy.deepcopy(params), version)
        except Exception:
            logger.warning("upgrading node %r (%s) from version %s failed", node.get("id"), step_type.name, version)
            node["version"] = version
            continue
        node["version"] = step_type.version
        upgrades.append(
            {"node": node.get("id"), "type": step_type.name, "from_version": version, "to_version": step_type.version}
        )
    return graph, upgrades


@dataclass
class Graph:
    """A validated graph with the lookups the engine needs."""

    spec: GraphSpec

    def __post_init__(self) -> None:
        self.nodes: dict[str, NodeSpec] = {n.id: n for n in self.spec.nodes}
        self._incoming: dict[str, list[EdgeSpec]] = {n: [] for n in self.nodes}
        for e in self.spec.edges:
            self._incoming.setdefault(e.target, []).append(e)

    def step_type(self, node_id: str) -> type[StepType] | None:
        """The node's type, or None if this process does not have it (removed by a deploy)."""
        return registry.get(self.nodes[node_id].type)

    def incoming(self, node_id: str) -> list[EdgeSpec]:
        return self._incoming.get(node_id, [])

    def upstream(self, node_id: str) -> set[str]:
        return {e.source for e in self.incoming(node_id)}

    def order(self) -> list[str]:
        """Node ids, every node after all of its upstream nodes (the graph has no cycle)."""
        ordered, leftover = _topological(self.spec)
        if leftover:
            raise ValueError(f"cycle through {sorted(leftover)}")
        return ordered

    def resolved_params(self, node_id: str, context: dict[str, Any]) -> dict[str, Any]:
        return substitute(self.nodes[node_id].params, context)

    def timeout_s(self, node_id: str) -> int:
        step_type = self.step_type(node_id)
        return self.nodes[node_id].timeout_s or (step_type.time_limit if step_type else DEFAULT_TIME_LIMIT)

    def queue(self, node_id: str) -> str:
        step_type = self.step_type(node_id)
        return step_type.queue_for(self.nodes[node_id].params) if step_type else "default"


def _successors(spec: GraphSpec) -> dict[str, list[str]]:
    successors: dict[str, list[str]] = {n.id: [] for n in spec.nodes}
    for e in spec.edges:
        successors.setdefault(e.source, []).append(e.target)
    return successors


def _topological(spec: GraphSpec) -> tuple[list[str], set[str]]:
    """Kahn's algorithm: the nodes in dependency order, and those left over (on a cycle)."""
    successors = _successors(spec)
    indegree = {n.id: 0 for n in spec.nodes}
    for e in spec.edges:
        indegree[e.target] = indegree.get(e.target, 0) + 1
    ready = deque(n.id for n in spec.nodes if indegree[n.id] == 0)
    ordered = []
    while ready:
        current = ready.popleft()
        ordered.append(current)
        for target in successors[current]:
            indegree[target] -= 1
            if indegree[target] == 0:
                ready.append(target)
    return ordered, set(indegree) - set(ordered)


def _pydantic_errors(exc: ValidationError, *, node: str | None = None, prefix: str = "") -> list[dict]:
    out = []
    for e in exc.errors():
        loc = [str(p) for p in e["loc"]]
        field = ".".join(loc) if loc else None
        where = f'Node "{node}", field "{field}"' if node else f'Field "{prefix}{field}"'
        out.append(
            error(f"{where}: {e['msg']}", code="invalid_param" if node else "invalid_format", node=node, field=field)
        )
    return out


def _structure_errors(exc: ValidationError, raw: Any) -> list[dict]:
    out = []
    raw_nodes = raw.get("nodes") if isinstance(raw, dict) else None
    for e in exc.errors():
        loc = list(e["loc"])
        node = edge = None
        field = ".".join(str(p) for p in loc)
        if len(loc) >= 2 and loc[0] == "nodes" and isinstance(loc[1], int):
            item = raw_nodes[loc[1]] if isinstance(raw_nodes, list) and loc[1] < len(raw_nodes) else None
            node = item.get("id") if isinstance(item, dict) and isinstance(item.get("id"), str) else None
            field = ".".join(str(p) for p in loc[2:]) or None
        if len(loc) >= 2 and loc[0] == "edges" and isinstance(loc[1], int):
            edge = loc[1]
            field = ".".join(str(p) for p in loc[2:]) or None
        where = f'Node "{node}"' if node else (f"Edge {edge}" if edge is not None else "Graph")
        out.append(
            error(
                f"{where}{f', field {field!r}' if field else ''}: {e['msg']}",
                code="invalid_format",
                node=node,
                edge=edge,
                field=field,
            )
        )
    return out


def validate_graph(raw: Any, *, context: dict[str, Any] | None = None) -> tuple[Graph | None, list[dict]]:
    """Check a graph. Without `context` (save time) references may point at workflow params
    or run-time values; with it (run time) every reference must resolve and every node's
    params must validate fully. Returns the graph (None if unreadable) and the errors."""
    try:
        spec = GraphSpec.model_validate(raw)
    except ValidationError as exc:
        return None, _structure_errors(exc, raw)

    errors: list[dict] = []
    if spec.schema_ != SCHEMA_VERSION:
        errors.append(error(f"Unsupported graph schema {spec.schema_}; expected {SCHEMA_VERSION}", code="schema"))

    nodes: dict[str, NodeSpec] = {}
    for node in spec.nodes:
        if node.id in nodes:
            errors.append(error(f'Node id "{node.id}" is used twice', code="duplicate_node", node=node.id))
        nodes[node.id] = node
    if not nodes:
        errors.append(error("The workflow has no steps", code="empty"))

    types: dict[str, type[StepType]] = {}
    for node in spec.nodes:
        step_type = registry.get(node.type)
        if step_type is None:
            errors.append(
                error(
                    f'Node "{node.id}": unknown step type "{node.type}"',
                    code="unknown_type",
                    node=node.id,
                    field="type",
                )
            )
        else:
            types[node.id] = step_type

    version_errors = _version_errors(spec, types)
    errors.extend(version_errors)
    unversioned = {e["node"] for e in version_errors}
    names = dict(spec.params)
    for node in spec.nodes:
        # Params written for another version than the type's are not checked against its model.
        step_type = types.get(node.id) if node.id not in unversioned else None
        errors.extend(_param_errors(node, step_type, names, context))

    errors.extend(_edge_errors(spec, nodes, types))
    if not errors:
        errors.extend(_cycle_errors(spec))
    if not errors:
        errors.extend(_role_errors(spec, types))
    return Graph(spec), errors


def _version_errors(spec: GraphSpec, types: dict[str, type[StepType]]) -> list[dict]:
    """Nodes written for another version than their type's: newer (a graph from a newer
    server, or a rolled-back deploy), or older and not upgraded (graph_upgrade failed)."""
    errors = []
    for node in spec.nodes:
        step_type = types.get(node.id)
        if step_type is None or node.version is None or node.version == step_type.version:
            continue
        where = f'Node "{node.id}": version {node.version} of "{node.type}"'
        if node.version > step_type.version:
            message = f"{where} is newer than this server's (version {step_type.version})"
            code = "version_too_new"
        else:
            try:
                _upgrade_params(step_type, copy.deepcopy(node.params), node.version)
                reason = "the graph was not upgraded"
            except Exception as exc:
                reason = f"its upgrade failed: {type(exc).__name__}: {exc}"
            message = f"{where} cannot be used as version {step_type.version}: {reason}"
            code = "version_outdated"
        errors.append(error(message, code=code, node=node.id, field="version"))
    return errors


def _param_errors(node: NodeSpec, step_type: type[StepType] | None, names: dict, context: dict | None) -> list[dict]:
    errors = []
    known = set(context) if context is not None else set(names) | RUNTIME_PARAMS
    for field, value in node.params.items():
        for name in sorted(references(value) - known):
            errors.append(
                error(
                    f'Node "{node.id}", field "{field}": parameter "{{{{{name}}}}}" is not defined',
                    code="unresolved_param",
                    node=node.id,
                    field=field,
                )
            )
    if step_type is None or errors:
        return errors
    # Values referring to run-time names (the symbol) cannot be checked before the run;
    # everything else is checked now, with the workflow defaults substituted.
    if context is None:
        deferred = {f for f, v in node.params.items() if references(v) & RUNTIME_PARAMS}
        resolved = {f: substitute(v, names) for f, v in node.params.items() if f not in deferred}
    else:
        deferred = set()
        resolved = substitute(node.params, context)
    try:
        step_type.Params.model_validate(resolved)
    except ValidationError as exc:
        errors.extend(
            e for e in _pydantic_errors(exc, node=node.id) if (e["field"] or "").split(".")[0] not in deferred
        )
    return errors


def _edge_errors(spec: GraphSpec, nodes: dict[str, NodeSpec], types: dict[str, type[StepType]]) -> list[dict]:
    errors = []
    fed: dict[tuple[str, str], int] = {}
    for i, e in enumerate(spec.edges):
        for end, node_id in (("source", e.source), ("target", e.target)):
            if node_id not in nodes:
                errors.append(
                    error(f'Edge {i}: {end} node "{node_id}" does not exist', code="missing_node", edge=i, field=end)
                )
        if e.source not in types or e.target not in types:
            continue
        out_port = types[e.source].output(e.source_port)
        in_port = types[e.target].input(e.target_port)
        if out_port is None:
            errors.append(
                error(
                    f'Edge {i}: node "{e.source}" ({nodes[e.source].type}) has no output port "{e.source_port}"',
                    code="missing_port",
                    edge=i,
                    node=e.source,
                    field="source_port",
                )
            )
        if in_port is None:
            errors.append(
                error(
                    f'Edge {i}: node "{e.target}" ({nodes[e.target].type}) has no input port "{e.target_port}"',
                    code="missing_port",
                    edge=i,
                    node=e.target,
                    field="target_port",
                )
            )
        if out_port and in_port and ANY not in (out_port.type, in_port.type) and out_port.type != in_port.type:
            errors.append(
                error(
                    f'Edge {i}: "{e.source}.{e.source_port}" gives {out_port.type} but '
                    f'"{e.target}.{e.target_port}" takes {in_port.type}',
                    code="port_type",
                    edge=i,
                    node=e.target,
                    field="target_port",
                )
            )
        if in_port:
            key = (e.target, e.target_port)
            if key in fed:
                errors.append(
                    error(
                        f'Edge {i}: input "{e.target}.{e.target_port}" is already connected (edge {fed[key]})',
                        code="port_taken",
                        edge=i,
                        node=e.target,
                        field="target_port",
                    )
                )
            fed[key] = i
    for node_id, step_type in types.items():
        for port in step_type.inputs:
            if port.required and (node_id, port.name) not in fed:
                errors.append(
                    error(
                        f'Node "{node_id}": input "{port.name}" is not connected',
                        code="unconnected_input",
                        node=node_id,
                        field=port.name,
                    )
                )
    return errors


def _cycle_errors(spec: GraphSpec) -> list[dict]:
    looped = sorted(_topological(spec)[1])
    return [
        error(
            f'Node "{n}" is part of a cycle ({", ".join(looped)}); a workflow must flow one way', code="cycle", node=n
        )
        for n in looped
    ]


def _role_errors(spec: GraphSpec, types: dict[str, type[StepType]]) -> list[dict]:
    errors = []
    if not any("data_source" in t.tags for t in types.values()):
        errors.append(
            error("The workflow needs at least one data source step (for example market.fetch_bars)", code="no_source")
        )
    targets = {e.target for e in spec.edges}
    roots = [n.id for n in spec.nodes if n.id not in targets]
    successors = _successors(spec)
    for node_id, step_type in types.items():
        for tag in sorted(step_type.requires_upstream):
            # Walk from the roots without passing through a step carrying the tag: reaching
            # this node means one path avoids it.
            blocked = {n for n, t in types.items() if tag in t.tags}
            seen = {r for r in roots if r not in blocked}
            todo = deque(seen)
            while todo:
                for target in successors[todo.popleft()]:
                    if target not in seen and target not in blocked:
                        seen.add(target)
                        todo.append(target)
            if node_id in seen:
                errors.append(
                    error(
                        f'Node "{node_id}" ({step_type.name}) must be downstream of a '
                        f"{tag.replace('_', ' ')} step on every path",
                        code="requires_upstream",
                        node=node_id,
                    )
                )
    return errors


def graph_check(raw: Any, *, context: dict[str, Any] | None = None) -> Graph:
    """validate_graph, raising GraphInvalid (HTTP 400) when anything is wrong."""
    graph, errors = validate_graph(raw, context=context)
    if errors or graph is None:
        raise GraphInvalid(errors)
    return graph


def run_context(graph: Graph, *, overrides: dict[str, Any] | None = None, runtime: dict[str, Any]) -> dict[str, Any]:
    """Values {{name}} resolves to: run-time values, then overrides, then workflow defaults."""
    return {**graph.spec.params, **(overrides or {}), **runtime}
