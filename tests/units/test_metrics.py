"""Prometheus series follow the chat's events; /metrics serves them (summed across workers)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from starlette.testclient import TestClient

from chatmon import metrics
from chatmon.api import api
from chatmon.observability import series
from chatmon.services import events
from chatmon.services.events import Feedback, LLMCall
from chatmon.settings import Settings, load_settings

MODEL = "openai/test-metrics"


def _call(**overrides: object) -> LLMCall:
    values: dict[str, object] = dict(
        correlation_id="c1",
        session_id="s1",
        conversation_id="v1",
        model=MODEL,
        provider="openai",
        started_at=datetime.now(UTC),
        first_token_seconds=0.3,
        total_seconds=1.5,
        input_tokens=12,
        output_tokens=30,
        cost_usd=0.002,
        status="ok",
        error_category=None,
        retries=0,
        temperature=0.7,
        prompt_version="p1",
    )
    values.update(overrides)
    return LLMCall(**values)  # type: ignore[arg-type]  # field values built in a dict


def _value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_record_call_ok_counts_request_tokens_cost_and_latency() -> None:
    before = {
        "ok": _value("chatmon_llm_requests_total", model=MODEL, status="ok", error_type="none"),
        "in": _value("chatmon_llm_tokens_total", model=MODEL, type="input"),
        "out": _value("chatmon_llm_tokens_total", model=MODEL, type="output"),
        "cost": _value("chatmon_llm_cost_usd_total", model=MODEL),
        "dur": _value("chatmon_llm_request_duration_seconds_count", model=MODEL),
        "le2": _value("chatmon_llm_request_duration_seconds_bucket", model=MODEL, le="2.0"),
        "ttft": _value("chatmon_llm_time_to_first_token_seconds_count", model=MODEL),
    }
    metrics.record_call(_call())
    assert (
        _value("chatmon_llm_requests_total", model=MODEL, status="ok", error_type="none")
        == before["ok"] + 1
    )
    assert _value("chatmon_llm_tokens_total", model=MODEL, type="input") == before["in"] + 12
    assert _value("chatmon_llm_tokens_total", model=MODEL, type="output") == before["out"] + 30
    assert _value("chatmon_llm_cost_usd_total", model=MODEL) == pytest.approx(
        before["cost"] + 0.002
    )
    assert _value("chatmon_llm_request_duration_seconds_count", model=MODEL) == before["dur"] + 1
    assert (
        _value("chatmon_llm_request_duration_seconds_bucket", model=MODEL, le="2.0")
        == before["le2"] + 1
    )
    assert (
        _value("chatmon_llm_time_to_first_token_seconds_count", model=MODEL) == before["ttft"] + 1
    )


def test_latency_buckets_include_the_p95_alert_threshold_exactly() -> None:
    threshold = Settings.model_fields.get("alert_latency_p95_threshold")  # issue 6's setting
    default = threshold.default if threshold is not None else 5.0
    assert default in series.LATENCY_BUCKETS


def test_record_call_error_is_labelled_with_its_category() -> None:
    labels = dict(model=MODEL, status="error", error_type="timeout")
    before = _value("chatmon_llm_requests_total", **labels)
    metrics.record_call(_call(status="error", error_category="timeout", first_token_seconds=None))
    assert _value("chatmon_llm_requests_total", **labels) == before + 1


def test_record_call_unknown_category_becomes_unknown_label() -> None:
    labels = dict(model=MODEL, status="error", error_type="unknown")
    before = _value("chatmon_llm_requests_total", **labels)
    metrics.record_call(_call(status="error", error_category="something-new"))
    assert _value("chatmon_llm_requests_total", **labels) == before + 1


def test_record_call_cancelled_counts_ok_without_duration() -> None:
    ok = dict(model=MODEL, status="ok", error_type="none")
    before_ok = _value("chatmon_llm_requests_total", **ok)
    before_dur = _value("chatmon_llm_request_duration_seconds_count", model=MODEL)
    before_ttft = _value("chatmon_llm_time_to_first_token_seconds_count", model=MODEL)
    metrics.record_call(_call(status="cancelled", total_seconds=0.4, first_token_seconds=0.2))
    assert _value("chatmon_llm_requests_total", **ok) == before_ok + 1
    assert _value("chatmon_llm_request_duration_seconds_count", model=MODEL) == before_dur
    assert _value("chatmon_llm_time_to_first_token_seconds_count", model=MODEL) == before_ttft + 1


def test_record_call_counts_retries() -> None:
    before = _value("chatmon_llm_retries_total", model=MODEL)
    metrics.record_call(_call(retries=2))
    assert _value("chatmon_llm_retries_total", model=MODEL) == before + 2


def test_record_feedback_counts_up_and_down_but_not_cleared() -> None:
    up, down = (
        _value("chatmon_feedback_total", rating="up"),
        _value("chatmon_feedback_total", rating="down"),
    )
    metrics.record_feedback(Feedback(correlation_id="c", session_id="s", rating=1))
    metrics.record_feedback(Feedback(correlation_id="c", session_id="s", rating=-1))
    metrics.record_feedback(Feedback(correlation_id="c", session_id="s", rating=0))
    assert _value("chatmon_feedback_total", rating="up") == up + 1
    assert _value("chatmon_feedback_total", rating="down") == down + 1


def test_reasons_are_counted_by_reason_and_a_detail_does_not_count_the_thumb_again() -> None:
    metrics.init_series(MODEL)
    down = _value("chatmon_feedback_total", rating="down")
    wrong, unsafe = (
        _value("chatmon_feedback_reasons_total", reason="wrong"),
        _value("chatmon_feedback_reasons_total", reason="unsafe"),
    )
    metrics.record_feedback(Feedback(correlation_id="c", session_id="s", rating=-1))
    metrics.record_feedback(
        Feedback(
            correlation_id="c",
            session_id="s",
            rating=-1,
            reasons=("wrong", "unsafe", "bogus"),
            rating_changed=False,
        )
    )
    assert _value("chatmon_feedback_total", rating="down") == down + 1
    assert _value("chatmon_feedback_reasons_total", reason="wrong") == wrong + 1
    assert _value("chatmon_feedback_reasons_total", reason="unsafe") == unsafe + 1
    assert _value("chatmon_feedback_reasons_total", reason="bogus") == 0


def test_published_events_reach_the_series_once_subscribed() -> None:
    metrics.subscribe()
    metrics.subscribe()  # idempotent: still one listener
    labels = dict(model=MODEL, status="error", error_type="auth")
    before = _value("chatmon_llm_requests_total", **labels)
    events.publish_call(_call(status="error", error_category="auth"))
    assert _value("chatmon_llm_requests_total", **labels) == before + 1


def test_metrics_endpoint_serves_prometheus_text() -> None:
    metrics.init_series(MODEL)
    response = TestClient(api).get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert (
        f'chatmon_llm_requests_total{{error_type="none",model="{MODEL}",status="ok"}}'
        in response.text
    )
    assert "# TYPE chatmon_llm_request_duration_seconds histogram" in response.text


def test_metrics_endpoint_requires_bearer_token_when_configured(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = load_settings(metrics_token="scrape-secret-123")
    monkeypatch.setattr("chatmon.routes.metrics.get_settings", lambda: settings)
    client = TestClient(api)
    assert client.get("/metrics").status_code == 401
    assert (
        client.get("/metrics", headers={"Authorization": "Bearer wrong-token"}).status_code == 401
    )
    response = client.get("/metrics", headers={"Authorization": "Bearer scrape-secret-123"})
    assert response.status_code == 200
    assert "chatmon_llm_requests_total" in response.text
    assert "scrape-secret-123" not in response.text


_WORKER = textwrap.dedent(
    """
    import sys
    from datetime import UTC, datetime
    from chatmon import metrics
    from chatmon.services.events import LLMCall
    for _ in range(int(sys.argv[1])):
        metrics.record_call(LLMCall(
            correlation_id="c", session_id="s", conversation_id="v", model="mp-model",
            provider=None, started_at=datetime.now(UTC), first_token_seconds=0.1,
            total_seconds=0.5, input_tokens=10, output_tokens=5, cost_usd=0.01,
            status="ok", error_category=None, retries=0, temperature=0.7, prompt_version="p"))
    """
)
_SCRAPER = textwrap.dedent(
    """
    from starlette.testclient import TestClient
    from chatmon.api import api
    print(TestClient(api).get("/metrics").text)
    """
)


def test_metrics_are_summed_across_worker_processes(tmp_path: Path) -> None:
    """Three real processes write, a fourth serves /metrics: counts do not depend on the worker."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    for count in (3, 4, 5):
        subprocess.run([sys.executable, "-c", _WORKER, str(count)], env=env, check=True, timeout=60)
    scraped = subprocess.run(
        [sys.executable, "-c", _SCRAPER],
        env=env,
        check=True,
        timeout=60,
        capture_output=True,
        text=True,
    ).stdout
    assert (
        'chatmon_llm_requests_total{error_type="none",model="mp-model",status="ok"} 12.0' in scraped
    )
    assert 'chatmon_llm_tokens_total{model="mp-model",type="input"} 120.0' in scraped
    assert 'chatmon_llm_request_duration_seconds_count{model="mp-model"} 12.0' in scraped


def test_record_call_counts_unpriced_requests_not_as_cost() -> None:
    model = "openai/gemini-3-flash"
    before_unpriced = _value("chatmon_llm_unpriced_requests_total", model=model)
    before_cost = _value("chatmon_llm_cost_usd_total", model=model)
    metrics.record_call(_call(model=model, cost_usd=None))
    assert _value("chatmon_llm_unpriced_requests_total", model=model) == before_unpriced + 1
    assert _value("chatmon_llm_cost_usd_total", model=model) == before_cost
    metrics.record_call(_call(model=model, cost_usd=0.001))  # priced: not counted
    assert _value("chatmon_llm_unpriced_requests_total", model=model) == before_unpriced + 1


_BUDGET_WORKER = textwrap.dedent(
    """
    import sys
    from chatmon.observability import series
    series.BUDGET_USED_RATIO.labels(period="daily").set(float(sys.argv[1]))
    """
)


def test_budget_used_is_the_latest_reading_across_workers_not_a_sum(tmp_path: Path) -> None:
    """Every worker reads the same spend: /metrics shows the most recent reading."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    for ratio in ("0.25", "0.75"):  # the second worker read the spend last
        run = [sys.executable, "-c", _BUDGET_WORKER, ratio]
        subprocess.run(run, env=env, check=True, timeout=60)
    scraped = subprocess.run(
        [sys.executable, "-c", _SCRAPER],
        env=env,
        check=True,
        timeout=60,
        capture_output=True,
        text=True,
    ).stdout
    assert 'chatmon_budget_used_ratio{period="daily"} 0.75' in scraped
