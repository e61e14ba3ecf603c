"""Silences: a silenced rule's messages are recorded with the silence, sent to no channel,
and the CLI silences, lists and ends them in a real process against a real database."""

from __future__ import annotations

import asyncio
import functools
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from chatmon import db
from chatmon.models import AlertDelivery, AlertNotification
from chatmon.services.alerts import silences
from chatmon.services.alerts.channels import Channel
from chatmon.services.alerts.lifecycle import Action
from chatmon.services.alerts.rules import Rule
from tests.peers import SMTPSink, WebhookReceiver
from tests.units.services.alerts.test_engine import (
    NOW,
    Clock,
    action_of,
    alert_engine,
    channels,  # noqa: F401 - fixture
    failing_half,
    receiver,  # noqa: F401 - fixture
    sink,  # noqa: F401 - fixture
)
from tests.units.test_main_alerts import run_cli


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("30m", timedelta(minutes=30)), ("2h", timedelta(hours=2)), ("1h30m", timedelta(minutes=90))],
)
def test_parse_duration_reads_what_people_type(text: str, expected: timedelta) -> None:
    assert silences.parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "2", "2 hours", "0m", "31d", "-1h", "1h 2x"])
def test_parse_duration_refuses_the_rest(text: str) -> None:
    with pytest.raises(ValueError):
        silences.parse_duration(text)


def test_a_silenced_rule_is_recorded_not_sent_and_counted_suppressed(
    engine: Engine,
    session: Session,
    channels: list[Channel],  # noqa: F811
    clock: Clock,
    sink: SMTPSink,  # noqa: F811
    receiver: WebhookReceiver,  # noqa: F811
) -> None:
    failing_half(session)
    silences.add_silence(
        session=session,
        rule="error_rate",
        duration=timedelta(hours=2),
        reason="provider migration",
        by="alice",
        now=NOW,
    )
    session.commit()
    labels = {"rule": "error_rate", "channel": "email", "result": "suppressed"}
    before = REGISTRY.get_sample_value("chatmon_alerts_total", labels) or 0.0

    report = alert_engine(engine, channels, clock).check()

    assert action_of(report, Rule.ERROR_RATE) is Action.FIRE  # the state still moves
    assert report.deliveries == [] and sink.count() == 0 and receiver.posts() == 0
    [note] = session.exec(select(AlertNotification)).all()
    assert note.summary.startswith("(silenced until ")
    assert "by alice: provider migration" in note.summary
    assert session.exec(select(AlertDelivery)).all() == []
    assert REGISTRY.get_sample_value("chatmon_alerts_total", labels) == before + 1


def test_an_ended_or_expired_silence_holds_nothing(session: Session) -> None:
    for rule, duration in (
        ("error_rate", timedelta(hours=1)),
        ("latency_p95", timedelta(minutes=5)),
    ):
        silences.add_silence(
            session=session, rule=rule, duration=duration, reason="work", by="bob", now=NOW
        )
    session.commit()
    assert set(silences.active_silences(session=session, now=NOW)) == {"error_rate", "latency_p95"}
    assert silences.clear_silences(session=session, rule="error_rate", now=NOW) == 1
    session.commit()
    later = NOW + timedelta(minutes=10)
    assert silences.active_silences(session=session, now=later) == {}


def test_a_silence_needs_a_reason(session: Session) -> None:
    with pytest.raises(ValueError, match="reason"):
        silences.add_silence(
            session=session,
            rule="error_rate",
            duration=timedelta(hours=1),
            reason="  ",
            by="x",
            now=NOW,
        )


def test_cli_silences_lists_and_ends_a_silence(db_url: str, tmp_path: Path) -> None:
    env = {"DATABASE_URL": db_url}
    made = run_cli(
        "silence",
        "error_rate",
        "--for",
        "2h",
        "--reason",
        "load test",
        "--by",
        "carol",
        cwd=tmp_path,
        **env,
    )
    assert made.returncode == 0, made.stderr
    assert "error_rate silenced until" in made.stdout and "by carol: load test" in made.stdout
    listed = run_cli("silences", cwd=tmp_path, **env)
    assert listed.returncode == 0 and "error_rate silenced until" in listed.stdout
    ended = run_cli("unsilence", "error_rate", cwd=tmp_path, **env)
    assert ended.returncode == 0 and "1 silence(s) ended" in ended.stdout
    assert run_cli("silences", cwd=tmp_path, **env).stdout.strip() == "no silences"


def test_cli_silence_refuses_an_unknown_rule_or_duration(db_url: str, tmp_path: Path) -> None:
    env = {"DATABASE_URL": db_url}
    rule = run_cli("silence", "errors", "--for", "2h", "--reason", "x", cwd=tmp_path, **env)
    assert rule.returncode == 2 and "unknown rule 'errors'" in rule.stderr
    duration = run_cli(
        "silence", "error_rate", "--for", "2 hours", "--reason", "x", cwd=tmp_path, **env
    )
    assert duration.returncode == 2 and "not a duration" in duration.stderr


def test_panel_shows_a_silence_and_the_panel_helpers_store_and_end_it(
    engine: Engine, session: Session, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chatmon.presenters.alerts_panel import load_panel
    from chatmon.states import alerts as alerts_state

    monkeypatch.setattr("chatmon.db.get_engine", lambda: engine)
    silence = functools.partial(db.run, alerts_state._silence, by="dave")  # as the panel does
    with pytest.raises(ValueError, match="not a duration"):
        asyncio.run(silence(rule="error_rate", duration="soon", reason="deploy"))
    asyncio.run(silence(rule="latency_p95", duration="2h", reason="load test"))
    checker = alert_engine(engine, [], Clock(datetime.now(UTC)))
    rows = {row.rule: row for row in load_panel(session=session, engine=checker).rules}
    assert rows["latency_p95"].silenced.startswith("until ")
    assert rows["latency_p95"].silenced.endswith("by dave: load test")
    assert rows["error_rate"].silenced == ""
    asyncio.run(db.run(alerts_state._unsilence, rule="latency_p95"))
    rows = {row.rule: row for row in load_panel(session=session, engine=checker).rules}
    assert rows["latency_p95"].silenced == ""
