"""The run page shows each step's chart: the PNG, and the same figure interactive with plotly.js."""

import json

import pytest
from django.templatetags.static import static
from django.urls import NoReverseMatch, reverse

from workflows import engine, services
from workflows.artifacts.store import artifact_put
from workflows.models import Run, StepRun
from workflows.tests import step_types  # noqa: F401 - registers test.source, test.echo, ...

GRAPH = {
    "schema": 1,
    "params": {},
    "nodes": [
        {"id": "src", "type": "test.source", "params": {}},
        {"id": "chart", "type": "test.echo", "params": {}},
    ],
    "edges": [{"source": "src", "source_port": "out", "target": "chart", "target_port": "in"}],
}
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64

pytestmark = pytest.mark.usefixtures("no_dispatch")


@pytest.fixture
def owner(django_user_model):
    return django_user_model.objects.create_user("charts-owner", password="pw-owner-123")


@pytest.fixture
def run(owner) -> Run:
    workflow = services.workflow_create(owner=owner, name="Chart", graph=GRAPH)
    return engine.run_start(workflow=workflow, user=owner, symbol="AAPL")


def _artifact_url(run: Run, key: str) -> str | None:
    try:
        return reverse("run-artifact", args=[run.pk, key])
    except NoReverseMatch:  # the artifact view not wired yet
        return None


def test_run_page_shows_the_chart_of_a_step(client, owner, run):
    png_key = artifact_put(data=PNG, kind="charts", ext="png")
    figure_key = artifact_put(data=json.dumps({"data": [], "layout": {}}).encode(), kind="figures", ext="json")
    chart = {
        "png": png_key,
        "figure": figure_key,
        "width": 1280,
        "height": 900,
        "symbol": "AAPL",
        "bar": "1d",
        "last": "2024-12-30",
    }
    StepRun.objects.filter(run=run, node_id="chart").update(outputs={"chart": chart})
    client.force_login(owner)
    body = client.get(reverse("run-detail", args=[run.pk])).content.decode()

    assert 'class="chart-image"' in body
    assert 'alt="AAPL 1d chart, last bar 2024-12-30"' in body
    png_url, figure_url = _artifact_url(run, png_key), _artifact_url(run, figure_key)
    if png_url is not None:
        assert f'src="{png_url}"' in body
        assert f'data-figure-url="{figure_url}"' in body
        # Both URLs serve the artifacts to the run's owner.
        assert client.get(png_url).status_code in (200, 302)
        assert client.get(figure_url).status_code in (200, 302)
    assert "<summary>Interactive</summary>" in body
    # plotly.js once, from our static files, and no inline event handlers (CSP).
    assert body.count(f'src="{static("vendor/plotly/plotly.min.js")}"') == 1
    assert "Plotly.newPlot" in body
    assert " onclick=" not in body and " ontoggle=" not in body and " onload=" not in body
    # The chart sits in its step's card.
    assert body.index('id="step-chart"') < body.index('class="chart-image"')


def test_two_charts_load_plotly_once(client, owner, run):
    for node_id, symbol in (("src", "MSFT"), ("chart", "AAPL")):
        png = artifact_put(data=PNG + symbol.encode(), kind="charts", ext="png")
        fig = artifact_put(data=symbol.encode(), kind="figures", ext="json")
        chart = {"png": png, "figure": fig, "width": 800, "height": 600, "symbol": symbol, "bar": "1w", "last": "x"}
        StepRun.objects.filter(run=run, node_id=node_id).update(outputs={"chart": chart})
    client.force_login(owner)
    body = client.get(reverse("run-detail", args=[run.pk])).content.decode()
    assert body.count('class="chart-image"') == 2
    assert body.count("vendor/plotly/plotly.min.js") == 1


def test_run_page_without_charts_loads_no_plotly(client, owner, run):
    client.force_login(owner)
    body = client.get(reverse("run-detail", args=[run.pk])).content.decode()
    assert "chart-image" not in body and "plotly" not in body
