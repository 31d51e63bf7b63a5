import pytest

from conftest import chain_graph, edge, node
from workflows.errors import GraphInvalid
from workflows.graph import graph_check, substitute, validate_graph


def codes(errors):
    return [(e["code"], e["node"], e["field"]) for e in errors]


def test_valid_chain_has_no_errors():
    graph, errors = validate_graph(chain_graph(node("a", "test.echo"), node("b", "test.echo")))
    assert errors == []
    assert graph.order() == ["src", "a", "b"]


def test_unknown_step_type_names_node_and_field():
    _, errors = validate_graph(chain_graph(node("x", "test.nope")))
    assert ("unknown_type", "x", "type") in codes(errors)
    assert 'Node "x": unknown step type "test.nope"' in errors[0]["message"]


def test_invalid_params_name_node_and_field():
    graph = {
        "schema": 1,
        "nodes": [node("bars", "test.bars"), node("t", "test.typed", count=99)],
        "edges": [edge("bars", "t", "bars", "in")],
    }
    _, errors = validate_graph(graph)
    assert codes(errors) == [("invalid_param", "t", "count")]
    assert 'Node "t", field "count"' in errors[0]["message"]


def test_unexpected_param_is_rejected():
    _, errors = validate_graph(chain_graph(node("a", "test.echo", colour="red")))
    assert ("invalid_param", "a", "colour") in codes(errors)


def test_cycle_is_rejected_naming_its_nodes():
    graph = chain_graph(node("a", "test.join"), node("b", "test.echo"))
    graph["edges"] = [edge("src", "a", "out", "a"), edge("b", "a", "out", "b"), edge("a", "b")]
    _, errors = validate_graph(graph)
    assert {(c, n) for c, n, _ in codes(errors)} == {("cycle", "a"), ("cycle", "b")}
    assert "cycle" in errors[0]["message"]


def test_edge_to_missing_node_and_port():
    graph = chain_graph(node("a", "test.echo"))
    graph["edges"].append(edge("a", "ghost"))
    graph["edges"].append(edge("src", "a", "nothing", "in2"))
    _, errors = validate_graph(graph)
    found = codes(errors)
    assert ("missing_node", None, "target") in found
    assert ("missing_port", "src", "source_port") in found
    assert ("missing_port", "a", "target_port") in found
    assert any('"ghost" does not exist' in e["message"] for e in errors)


def test_mismatched_port_types():
    graph = {
        "schema": 1,
        "nodes": [node("bars", "test.bars"), node("t", "test.typed", count=1), node("t2", "test.typed", count=1)],
        "edges": [edge("bars", "t", "bars", "in"), edge("t", "t2", "out", "in")],
    }
    _, errors = validate_graph(graph)
    assert codes(errors) == [("port_type", "t2", "target_port")]
    assert "gives chart" in errors[0]["message"] and "takes bars" in errors[0]["message"]


def test_unconnected_required_input_and_doubly_fed_input():
    graph = chain_graph(node("a", "test.echo"), node("lonely", "test.echo"))
    graph["edges"] = [edge("src", "a"), edge("src", "a")]
    _, errors = validate_graph(graph)
    assert ("unconnected_input", "lonely", "in") in codes(errors)
    assert ("port_taken", "a", "target_port") in codes(errors)


def test_workflow_needs_a_data_source():
    graph = {"schema": 1, "nodes": [node("a", "test.flaky")], "edges": []}
    _, errors = validate_graph(graph)
    assert codes(errors) == [("no_source", None, None)]


def test_order_must_be_downstream_of_a_risk_check_on_every_path():
    # src -> risk -> order is fine ...
    ok = chain_graph(node("risk", "test.risk"), node("order", "test.order"))
    assert validate_graph(ok)[1] == []
    # ... but a second path src -> echo -> join -> order that skips the check is not.
    graph = {
        "schema": 1,
        "nodes": [
            node("src", "test.source"),
            node("risk", "test.risk"),
            node("side", "test.echo"),
            node("join", "test.join"),
            node("order", "test.order"),
        ],
        "edges": [
            edge("src", "risk"),
            edge("src", "side"),
            edge("risk", "join", "out", "a"),
            edge("side", "join", "out", "b"),
            edge("join", "order"),
        ],
    }
    _, errors = validate_graph(graph)
    assert codes(errors) == [("requires_upstream", "order", None)]
    assert "risk check" in errors[0]["message"]
    # An order straight after the source is refused too.
    _, errors = validate_graph(chain_graph(node("order", "test.order")))
    assert codes(errors) == [("requires_upstream", "order", None)]


def test_unresolved_reference_names_node_field_and_parameter():
    graph = chain_graph(node("a", "test.echo", tag="{{nowhere}}"), params={"somewhere": "x"})
    _, errors = validate_graph(graph)
    assert codes(errors) == [("unresolved_param", "a", "tag")]
    assert '"{{nowhere}}" is not defined' in errors[0]["message"]


def test_references_to_workflow_params_are_checked_with_their_defaults():
    graph = {
        "schema": 1,
        "params": {"n": 50},
        "nodes": [node("bars", "test.bars"), node("t", "test.typed", count="{{n}}")],
        "edges": [edge("bars", "t", "bars", "in")],
    }
    _, errors = validate_graph(graph)
    assert codes(errors) == [("invalid_param", "t", "count")]
    graph["params"]["n"] = 5
    assert validate_graph(graph)[1] == []


def test_symbol_reference_is_valid_at_save_time_and_resolved_at_run_time():
    graph = chain_graph(node("a", "test.echo", tag="{{symbol}} daily"))
    assert validate_graph(graph)[1] == []
    with pytest.raises(GraphInvalid) as exc:
        graph_check(graph, context={})
    assert exc.value.errors[0]["code"] == "unresolved_param"
    checked = graph_check(graph, context={"symbol": "AAPL"})
    assert checked.resolved_params("a", {"symbol": "AAPL"}) == {"tag": "AAPL daily"}


def test_substitute_keeps_types_of_whole_references():
    assert substitute({"a": "{{n}}", "b": "x{{n}}", "c": ["{{s}}"]}, {"n": 3, "s": "AAPL"}) == {
        "a": 3,
        "b": "x3",
        "c": ["AAPL"],
    }


@pytest.mark.parametrize(
    ("raw", "where"),
    [
        ("not a graph", None),
        ({"nodes": "x"}, None),
        ({"nodes": [{"id": "bad id!", "type": "test.source"}]}, None),
        ({"nodes": [{"id": "a", "type": "test.source", "timeout_s": -1}]}, "a"),
        ({"nodes": [{"id": "a", "type": "test.source"}], "edges": [{"source": "a"}]}, None),
    ],
)
def test_malformed_graphs_are_reported_not_crashed(raw, where):
    graph, errors = validate_graph(raw)
    assert graph is None
    assert errors and all(e["code"] == "invalid_format" for e in errors)
    if where:
        assert errors[0]["node"] == where
