"""The probe's requests (``synthetic``) are in the request log but in none of its
figures: rollups, /api/stats and the monitor (KPIs, charts, table, CSV), /api/usage
and the budgets, the alert rules' inputs and their backtest, the request series."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import REGISTRY
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from chatmon import metrics
from chatmon.models import LLMLatencyHourly, LLMRequest, LLMRequestHourly, LLMUsageHourly
from chatmon.services import request_log, stats, usage
from chatmon.services.alerts import backtest_log, episode
from chatmon.services.alerts.engine import AlertEngine
from chatmon.services.alerts.rules import Rule, Verdict
from chatmon.services.events import LLMCall
from chatmon.settings import load_settings
from tests.units.services.stats_factory import T0, make_call, record

HOUR = timedelta(hours=1)


def probe_call(*, at: timedelta | datetime = timedelta(minutes=10), **fields: object) -> LLMCall:
    values: dict[str, object] = {
        "session_id": "",
        "conversation_id": "",
        "prompt_version": "probe",
        "cost_usd": 0.5,
        "status": "error",
        "error_category": "auth",
        "synthetic": True,
    }
    return make_call(at=at, **(values | fields))


def count(session: Session, query: Any) -> int:
    return int(session.execute(query).scalar_one() or 0)


def test_probe_row_is_in_the_log_but_in_no_rollup(session: Session) -> None:
    record(session, make_call(at=timedelta(minutes=10), cost_usd=0.001), probe_call())
    assert count(session, select(func.count()).select_from(LLMRequest)) == 2
    [probe] = session.exec(select(LLMRequest).where(LLMRequest.synthetic)).all()
    assert probe.error_category == "auth" and probe.cost_usd == 0.5
    assert count(session, select(func.sum(LLMRequestHourly.requests))) == 1
    usage_rows = select(func.sum(LLMUsageHourly.requests)).where(
        LLMUsageHourly.dimension == "model"
    )
    assert count(session, usage_rows) == 1
    latency = select(func.sum(LLMLatencyHourly.count)).where(
        LLMLatencyHourly.metric == "latency", LLMLatencyHourly.model == "*"
    )
    assert count(session, latency) == 1

    request_log.rebuild_rollups(session=session)  # a repair agrees with the recorder
    session.commit()
    assert count(session, select(func.sum(LLMRequestHourly.requests))) == 1
    assert count(session, usage_rows) == 1
    assert count(session, latency) == 1


def test_probe_row_is_in_no_stats_figure_whole_hours_or_edges(session: Session) -> None:
    record(
        session,
        make_call(at=timedelta(minutes=10), cost_usd=0.001),
        probe_call(),
        probe_call(at=timedelta(minutes=30)),
    )
    for start, end in ((T0, T0 + HOUR), (T0 + timedelta(minutes=5), T0 + timedelta(minutes=50))):
        summary = stats.window_summary(session=session, start=start, end=end)
        assert (summary.requests, summary.errors) == (1, 0)
        assert summary.cost_usd == 0.001
        board = stats.dashboard(session=session, start=start, end=end)
        assert board.summary.requests == 1
        assert sum(point.requests for point in board.series) == 1
        assert [m.requests for m in board.models] == [1]
        assert board.page.total == 1 and [r.synthetic for r in board.page.rows] == [False]
        assert (
            stats.count_requests(
                session=session, start=start, end=end, where=stats.RequestFilter(status="error")
            )
            == 0
        )
        exported = list(stats.iter_requests(session=session, start=start, end=end))
        assert [r.synthetic for r in exported] == [False]


def test_probe_row_is_in_no_usage_or_budget_figure(session: Session) -> None:
    record(session, make_call(at=timedelta(minutes=10), cost_usd=0.001), probe_call())
    for start, end in ((T0, T0 + HOUR), (T0 + timedelta(minutes=5), T0 + timedelta(minutes=50))):
        [row] = usage.top(session=session, start=start, end=end, by="prompt_version")
        assert (row.key, row.requests) == ("abc123", 1)
        assert usage.spend(session=session, start=start, end=end) == (0.001, 1)
    _rows, total = usage.request_page(
        session=session, start=T0, end=T0 + HOUR, by="prompt_version", key="probe"
    )
    assert total == 0


def test_only_probe_rows_still_show_the_getting_started_note(session: Session) -> None:
    record(session, probe_call())
    assert not stats.has_any_request(session=session)


def test_failing_probes_are_not_in_the_error_rate_rule(engine: Engine, session: Session) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    real_at = now - timedelta(minutes=5)
    probes = (probe_call(at=now - timedelta(seconds=s)) for s in range(10, 200, 10))
    record(session, make_call(at=real_at), *probes)
    settings = load_settings(alert_min_requests=1, alert_error_rate_threshold=5.0)
    observations, findings = AlertEngine(db_engine=engine, settings=settings, channels=[]).observe(
        now
    )
    assert (observations.window_requests, observations.window_errors) == (1, 0)
    assert observations.last_request_at is not None
    assert observations.last_request_at.replace(tzinfo=UTC) == real_at  # not the later probes
    assert observations.cost_last_hour == 0.001
    error_rate = next(f for f in findings if f.rule is Rule.ERROR_RATE)
    assert error_rate.verdict is Verdict.OK
    start = now - timedelta(minutes=30)
    minutes = backtest_log.read_minutes(session=session, start=start, end=now)
    assert sum(sum(m.counts.values()) for m in minutes.values()) == 1
    summary = episode.summarize(session=session, start=start, end=now)
    assert (summary.requests, summary.failed) == (1, 0)


def test_probe_call_is_in_no_request_series() -> None:
    def requests() -> float:
        sample = REGISTRY.get_sample_value(
            "chatmon_llm_requests_total",
            {"model": "openai/synthetic-only", "status": "error", "error_type": "auth"},
        )
        return sample or 0.0

    before = requests()
    metrics.record_call(probe_call(model="openai/synthetic-only"))
    assert requests() == before
    metrics.record_call(probe_call(model="openai/synthetic-only", synthetic=False))
    assert requests() == before + 1  # the same call, not synthetic, is counted
