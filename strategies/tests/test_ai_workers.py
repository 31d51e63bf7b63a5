"""A whole AI workflow on real Celery workers (queue `ai`) against the local OpenAI-compatible server."""

import pytest

from conftest import wait_for
from strategies.models import AiRecord
from strategies.tests.llm_server import fake_llm, llm_settings
from workflows import engine, services
from workflows.models import Run, RunStatus
from workflows.tests.workers import QUEUES


@pytest.mark.worker
def test_a_model_answering_garbage_on_real_workers_ends_in_hold(workers, settings, user):
    assert "ai" in QUEUES.split(",")
    graph = {
        "schema": 1,
        "params": {},
        "nodes": [
            {"id": "fetch", "type": "market.fetch_bars", "params": {"symbol": "{{symbol}}", "period": "6m"}},
            {"id": "chart", "type": "strategies.render_chart", "params": {"width": 800, "height": 600}},
            {"id": "analysis", "type": "ai.analyze_chart", "params": {"analyst": "model"}},
            {"id": "decide", "type": "ai.decide", "params": {"analyst": "model"}},
        ],
        "edges": [
            {"source": "fetch", "source_port": "bars", "target": "chart", "target_port": "bars"},
            {"source": "chart", "source_port": "chart", "target": "analysis", "target_port": "chart"},
            {"source": "analysis", "source_port": "analysis", "target": "decide", "target_port": "analysis"},
        ],
    }
    with fake_llm() as fake:
        llm_settings(settings, fake, max_retries=1)
        fake.reply('{"trend": "up", "bias": "bullish", "confidence": "very high"')  # cut-off JSON
        workers.start(concurrency=1)  # its environment points at `fake`
        workflow = services.workflow_create(owner=user, name="garbage", graph=graph)
        run = engine.run_start(workflow=workflow, user=user, symbol="AAPL")
        run = wait_for(lambda: Run.objects.filter(id=run.id, finished_at__isnull=False).first(), timeout=60)
        assert run.status == RunStatus.SUCCEEDED, (run.error, workers.logs())
        decision = run.steps.get(node_id="decide").outputs["decision"]
        assert decision["action"] == "HOLD" and decision["entry"] is None
        assert "analysis failed" in decision["error"] and "not JSON" in decision["error"]
        assert len(fake.requests) == 1 and fake.requests[0]["_auth"] == "Bearer test-key-1"
        assert list(AiRecord.objects.filter(run=run).values_list("kind", "action")) == [
            ("analysis", ""),
            ("decision", "HOLD"),
        ]
