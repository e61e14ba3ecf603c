"""Fewer false pages: the error-rate rule counts provider and chatmon failures, not
chatmon's own refusals nor errors the request caused; the message says how many of
those there were."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from chatmon.services.alerts.inputs import judged_errors
from chatmon.services.alerts.rules import Rule, Verdict
from tests.units.services.alerts.test_engine import NOW, Clock, alert_engine
from tests.units.services.stats_factory import make_call, record

M = timedelta(minutes=1)


def calls(category: str | None, count: int, *, start: int = 0) -> list:
    return [
        make_call(
            at=M + (start + i) * timedelta(seconds=10),
            status="error" if category else "ok",
            error_category=category,
        )
        for i in range(count)
    ]


def error_rate_finding(engine: Engine):
    _obs, findings = alert_engine(engine, [], Clock(NOW)).observe()
    return next(f for f in findings if f.rule is Rule.ERROR_RATE)


def test_judged_errors_drops_refusals_and_keeps_user_errors_as_requests() -> None:
    counted = judged_errors(
        30, 20, {"rate_limited_local": 8, "budget_exceeded": 2, "bad_request": 4, "timeout": 6}
    )
    assert (counted.requests, counted.errors, counted.refused, counted.user_caused) == (
        20,
        6,
        10,
        4,
    )
    assert counted.rate == pytest.approx(30.0)


def test_refusals_and_user_errors_alone_never_page(engine: Engine, session: Session) -> None:
    record(
        session,
        *calls(None, 10),
        *calls("rate_limited_local", 30, start=10),
        *calls("bad_request", 3, start=40),
        *calls("context_length", 2, start=43),
    )
    finding = error_rate_finding(engine)
    assert finding.verdict is Verdict.OK and finding.value == 0.0
    assert "0 of 15" in finding.summary
    assert "not counted: 30 refused by chatmon's own limits, 5 caused by the request itself" in (
        finding.summary
    )


def test_a_provider_outage_still_fires_under_a_flood_of_refusals(
    engine: Engine, session: Session
) -> None:
    """Refusals do not dilute the rate: 5 failures of 15 real requests is 33 %."""
    record(
        session,
        *calls(None, 10),
        *calls("server_error", 5, start=10),
        *calls("rate_limited_local", 40, start=15),
    )
    finding = error_rate_finding(engine)
    assert finding.verdict is Verdict.FIRING
    assert finding.value == pytest.approx(100 * 5 / 15)
    assert "(5 of 15)" in finding.summary


def test_too_few_real_requests_is_not_enough_data(engine: Engine, session: Session) -> None:
    record(session, *calls("server_error", 2), *calls("rate_limited_local", 20, start=2))
    assert error_rate_finding(engine).verdict is Verdict.NOT_ENOUGH_DATA
