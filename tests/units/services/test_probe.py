"""The synthetic probe against the project's fake OpenAI upstream: a revoked key (401) is
reported by the probe_failed rule within PROBE_FAILURES intervals, with its category,
before any user sends a message; one probe per interval across processes; each probe is
recorded through the recorder as a synthetic request, in none of the log's figures."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta

import pytest
from prometheus_client import REGISTRY
from pydantic import SecretStr
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from chatmon.devtools.fake_llm_server import FakeLLMServer
from chatmon.models import LLMRequest, PeriodicClaim
from chatmon.services import breaker, events, stats
from chatmon.services.alerts.channels import SlackChannel
from chatmon.services.alerts.engine import AlertEngine
from chatmon.services.alerts.lifecycle import Action
from chatmon.services.alerts.rules import Rule, Verdict
from chatmon.services.llm import warm_up
from chatmon.services.probe import PROBE_MAX_TOKENS, PROBE_PROMPT_VERSION, Probe
from chatmon.services.recorder import Recorder
from chatmon.settings import Settings, load_settings
from tests.peers import WebhookReceiver

MODEL = "openai/probe-fake"


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeLLMServer]:
    warm_up()
    with FakeLLMServer() as server:
        yield server


@pytest.fixture(autouse=True)
def _fresh(upstream: FakeLLMServer) -> Iterator[None]:
    upstream.reset()
    breaker.discard(MODEL)
    yield
    breaker.discard(MODEL)


def settings_for(upstream: FakeLLMServer, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "llm_model": MODEL,
        "llm_api_base": upstream.url,
        "llm_api_key": "sk-probe-test",
        "llm_max_retries": 0,
        "request_timeout": 5,
        "alert_check_interval_seconds": 60,
        "probe_interval_seconds": 3600,
        "probe_failures": 2,
    }
    return load_settings(**(values | overrides))


def interval_passes(engine: Engine) -> None:
    """As if PROBE_INTERVAL_SECONDS had passed: the probe's claim is due again (the
    claim runs on the database's clock, which a test cannot move)."""
    with Session(engine) as session:
        row = session.get(PeriodicClaim, "probe")
        assert row is not None
        row.due_at = row.due_at.replace(year=2000)
        session.commit()


@pytest.fixture
def recorder(engine: Engine) -> Iterator[Recorder]:
    """The recorder, subscribed to the chat's events as the app subscribes it."""
    recorder = Recorder(engine=lambda: engine, price_known=lambda _model: True)
    events.on_call(recorder.submit_call)
    yield recorder
    events.off_call(recorder.submit_call)
    recorder.close()


def probe_success() -> float | None:
    return REGISTRY.get_sample_value("chatmon_probe_success")


async def test_probe_gets_a_capped_reply_recorded_as_synthetic_in_no_figure(
    engine: Engine, session: Session, upstream: FakeLLMServer, recorder: Recorder
) -> None:
    outcome = await Probe(settings=settings_for(upstream), engine=engine).run_if_due()
    assert outcome is not None and outcome.ok and outcome.consecutive_failures == 0
    assert probe_success() == 1.0
    [body] = upstream.state.requests
    assert body["max_tokens"] == PROBE_MAX_TOKENS
    assert recorder.flush(timeout=10)
    [row] = session.exec(select(LLMRequest)).all()
    assert row.synthetic and row.status == "ok" and row.model == MODEL
    assert row.prompt_version == PROBE_PROMPT_VERSION and row.output_tokens
    summary = stats.window_summary(
        session=session, start=row.started_at, end=row.started_at + timedelta(minutes=1)
    )
    assert summary.requests == 0  # excluded from every user figure


async def test_failing_probe_is_recorded_with_its_category(
    engine: Engine, session: Session, upstream: FakeLLMServer, recorder: Recorder
) -> None:
    upstream.configure(fail_rate=1.0, fail_with="401")
    outcome = await Probe(settings=settings_for(upstream), engine=engine).run_if_due()
    assert outcome is not None and outcome.category == "auth"
    assert recorder.flush(timeout=10)
    [row] = session.exec(select(LLMRequest)).all()
    assert (row.synthetic, row.status, row.error_category) == (True, "error", "auth")


async def test_probe_once_per_interval_across_processes(
    engine: Engine, upstream: FakeLLMServer
) -> None:
    probes = [Probe(settings=settings_for(upstream), engine=engine) for _ in range(3)]
    outcomes = await asyncio.gather(*(p.run_if_due() for p in probes))
    assert sum(o is not None for o in outcomes) == 1
    assert upstream.state.hits == 1


async def test_revoked_key_fires_probe_failed_with_auth_before_any_user_asks(
    engine: Engine, upstream: FakeLLMServer
) -> None:
    upstream.configure(fail_rate=1.0, fail_with="401")
    settings = settings_for(upstream, probe_interval_seconds=60)
    probe = Probe(settings=settings, engine=engine)
    first = await probe.run_if_due()
    assert first is not None and first.category == "auth" and first.consecutive_failures == 1
    assert probe_success() == 0.0

    with WebhookReceiver() as slack:
        checker = AlertEngine(
            db_engine=engine, settings=settings, channels=[SlackChannel(SecretStr(slack.url))]
        )
        one = next(f for f in checker.observe()[1] if f.rule is Rule.PROBE_FAILED)
        assert one.verdict is Verdict.OK  # one failure: not yet (PROBE_FAILURES=2)

        interval_passes(engine)
        second = await probe.run_if_due()
        assert second is not None and second.consecutive_failures == 2

        report = checker.check()
        outcome = next(o for o in report.rules if o.finding.rule is Rule.PROBE_FAILED)
        assert outcome.action is Action.FIRE
        assert "failed with auth" in outcome.finding.summary
        assert "revoked" in outcome.finding.summary
        assert [d.channel for d in report.deliveries if d.ok] == ["slack"]
        assert "Synthetic probe failing" in slack.texts()[0]


async def test_a_good_probe_resets_the_failure_count(
    engine: Engine, upstream: FakeLLMServer
) -> None:
    upstream.configure(fail_rate=1.0, fail_with="500")
    probe = Probe(settings=settings_for(upstream, probe_interval_seconds=60), engine=engine)
    failed = await probe.run_if_due()
    assert failed is not None and failed.category == "server_error"
    upstream.configure(fail_rate=0.0)
    interval_passes(engine)
    ok = await probe.run_if_due()
    assert ok is not None and ok.ok and ok.consecutive_failures == 0


def test_probe_is_off_unless_configured(engine: Engine) -> None:
    assert Probe.from_settings(load_settings(), engine=engine) is None
