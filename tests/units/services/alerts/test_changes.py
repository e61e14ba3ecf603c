"""What changed: version, model, system prompt and alert configuration are recorded when
they change, and a firing message says what changed in the hour before it."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from chatmon.models import ChangeEvent
from chatmon.services.alerts import changes
from chatmon.services.alerts.channels import Channel
from chatmon.services.alerts.lifecycle import Action
from chatmon.services.alerts.rules import Rule
from tests.peers import SMTPSink, WebhookReceiver, text_part
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

M = timedelta(minutes=1)


def test_changes_baseline_then_only_real_changes(session: Session) -> None:
    first = {"model": "openai/a", "prompt": "3a1f0000"}
    assert [e.old for e in changes.record(session=session, current=first, now=NOW)] == [None, None]
    assert changes.record(session=session, current=first, now=NOW + M) == []  # nothing new
    later = {"model": "openai/a", "prompt": "9c2e1111"}
    [event] = changes.record(session=session, current=later, now=NOW + 2 * M)
    session.commit()
    assert (event.kind, event.old, event.new) == ("prompt", "3a1f0000", "9c2e1111")
    recent = changes.recent(session=session, now=NOW + 14 * M)
    assert (
        changes.describe(recent, now=NOW + 14 * M) == "system prompt 3a1f0000→9c2e1111, 12 min ago"
    )
    assert changes.recent(session=session, now=NOW + 2 * M + 61 * M) == []
    assert changes.describe([], now=NOW) == "nothing in the last hour"


def test_a_firing_message_says_the_model_changed_minutes_before(
    engine: Engine,
    session: Session,
    channels: list[Channel],  # noqa: F811
    sink: SMTPSink,  # noqa: F811
    receiver: WebhookReceiver,  # noqa: F811
    tmp_path: Path,
) -> None:
    prompt = tmp_path / "prompt.txt"
    prompt.write_text("You are helpful.")
    clock = Clock(NOW - 20 * M)
    alert_engine(engine, channels, clock, llm_model="openai/old", system_prompt_file=prompt).check()
    clock.advance(12 * M)
    alert_engine(engine, channels, clock, llm_model="openai/new", system_prompt_file=prompt).check()
    failing_half(session)
    clock.now = NOW
    checker = alert_engine(
        engine, channels, clock, llm_model="openai/new", system_prompt_file=prompt
    )
    assert action_of(checker.check(), Rule.ERROR_RATE) is Action.FIRE
    text = text_part(sink.messages[0])
    assert "Changed:" in text and "model openai/old→openai/new, 8 min ago" in text
    kinds = {e.kind for e in session.exec(select(ChangeEvent)).all()}
    assert kinds == {"version", "model", "prompt", "alert_config"}


def test_alert_config_hash_changes_with_a_threshold_not_with_a_secret() -> None:
    from chatmon.settings import load_settings

    base = changes.alert_config_hash(load_settings(), ["slack"])
    assert changes.alert_config_hash(load_settings(alert_error_rate_threshold=5), ["slack"]) != base
    other_url = load_settings(slack_webhook_url="https://hooks.slack.com/services/other")
    assert changes.alert_config_hash(other_url, ["slack"]) == base
