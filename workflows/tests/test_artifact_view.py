"""A run's artifacts through the page URL: only via a run the user may see that holds the key."""

from urllib.parse import parse_qs, urlsplit

import pytest
from django.urls import reverse

from conftest import chain_graph, node
from workflows import engine, services
from workflows.artifacts.store import artifact_put
from workflows.models import Run
from workflows.tests.s3 import use_minio
from workflows.tests.test_artifacts import PNG, PUBLIC_ENDPOINT

pytestmark = pytest.mark.usefixtures("no_dispatch")

BACKENDS = ["filesystem", "minio"]


@pytest.fixture(params=BACKENDS)
def backend(request, settings) -> str:
    if request.param == "minio":
        use_minio(settings, request.getfixturevalue("s3_endpoint"))
        settings.MINIO_PUBLIC_ENDPOINT = PUBLIC_ENDPOINT
    else:
        settings.ARTIFACT_STORE = "filesystem"
    return request.param


@pytest.fixture
def run(user) -> Run:
    workflow = services.workflow_create(owner=user, name="Chart", graph=chain_graph(node("echo", "test.echo")))
    return engine.run_start(workflow=workflow, user=user, symbol="AAPL")


@pytest.fixture
def chart_key(backend, run) -> str:
    """A chart stored and referenced, nested, by the run's last step's outputs."""
    key = artifact_put(data=PNG, kind="charts", ext="png")
    step = run.steps.get(node_id="echo")
    step.outputs = {"chart": {"png": {"artifact": key, "width": 1200}, "panels": ["price", "rsi"]}}
    step.save(update_fields=["outputs"])
    return key


def url_of(run: Run, key: str) -> str:
    return reverse("run-artifact", args=[run.pk, key])


def test_owner_gets_the_artifact(client, user, run, chart_key, backend, settings):
    client.force_login(user)
    response = client.get(url_of(run, chart_key))
    if backend == "filesystem":
        assert response.status_code == 200
        assert response["Content-Type"] == "image/png"
        assert response["Cache-Control"] == "private, max-age=3600"
        assert b"".join(response.streaming_content) == PNG
    else:
        assert response.status_code == 302
        location = urlsplit(response["Location"])
        assert location.netloc == PUBLIC_ENDPOINT
        assert location.path == f"/{settings.MINIO_BUCKET}/{chart_key}"
        assert "X-Amz-Signature" in parse_qs(location.query)
        assert "no-cache" in response["Cache-Control"]


def test_key_in_a_steps_inputs_is_served_too(client, user, run, backend):
    key = artifact_put(data=b"a,b\n1,2\n", kind="bars", ext="csv")
    step = run.steps.get(node_id="echo")
    step.inputs = {"in": [{"artifact": key}]}
    step.save(update_fields=["inputs"])
    client.force_login(user)
    response = client.get(url_of(run, key))
    assert response.status_code == (200 if backend == "filesystem" else 302)
    if backend == "filesystem":
        assert response["Content-Type"] == "text/csv"


def test_staff_gets_it_too(client, staff_user, run, chart_key, backend):
    client.force_login(staff_user)
    assert client.get(url_of(run, chart_key)).status_code == (200 if backend == "filesystem" else 302)


def test_other_user_gets_404(client, other_user, run, chart_key):
    client.force_login(other_user)
    assert client.get(url_of(run, chart_key)).status_code == 404


def test_other_users_key_through_own_run_is_404(client, user, other_user, run, chart_key):
    # Bob knows (or guesses) Alice's key and asks for it through a run of his own.
    workflow = services.workflow_create(owner=other_user, name="Mine", graph=chain_graph())
    own_run = engine.run_start(workflow=workflow, user=other_user, symbol="MSFT")
    client.force_login(other_user)
    assert client.get(url_of(own_run, chart_key)).status_code == 404


def test_anonymous_is_sent_to_login(client, run, chart_key):
    response = client.get(url_of(run, chart_key))
    assert response.status_code == 302
    assert response["Location"].startswith(f"{reverse('login')}?next=")


def test_key_not_in_the_run_is_404(client, user, run, chart_key):
    stored_elsewhere = artifact_put(data=PNG + b"other", kind="charts", ext="png")
    client.force_login(user)
    assert client.get(url_of(run, stored_elsewhere)).status_code == 404


@pytest.mark.parametrize("key", ["charts/abc.png", "../../etc/passwd", "charts/x/../../secret.png", "nokind.png"])
def test_malformed_key_is_404(client, user, run, backend, key):
    step = run.steps.get(node_id="echo")
    step.outputs = {"chart": key}  # even when a step holds it
    step.save(update_fields=["outputs"])
    client.force_login(user)
    assert client.get(f"/runs/{run.pk}/artifacts/{key}").status_code == 404


def test_referenced_but_missing_from_the_store_is_404(client, user, run, settings):
    settings.ARTIFACT_STORE = "filesystem"
    key = f"charts/{'0' * 64}.png"
    step = run.steps.get(node_id="echo")
    step.outputs = {"chart": key}
    step.save(update_fields=["outputs"])
    client.force_login(user)
    assert client.get(url_of(run, key)).status_code == 404


def test_post_is_refused(client, user, run, chart_key):
    client.force_login(user)
    assert client.post(url_of(run, chart_key)).status_code == 405
