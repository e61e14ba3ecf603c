"""What the monitor page's Alerts panel shows: every rule's state now, what it would
have fired over the last week, and the history of messages and delivery attempts.
Plain rows of strings, ready to render. The week's replay and its cache are
:mod:`chatmon.services.alerts.last_week`'s."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from sqlmodel import Session

from chatmon.models import AlertDelivery, AlertRuleState
from chatmon.services.alerts import backtest, silences, store
from chatmon.services.alerts.engine import AlertEngine
from chatmon.services.alerts.last_week import BACKTEST_WAIT_SECONDS, last_week
from chatmon.services.alerts.messages import format_threshold, format_value
from chatmon.services.alerts.rules import RULE_TITLES, Finding, Rule, Verdict
from chatmon.services.errors import format_duration

HISTORY_ROWS = 15
ATTEMPT_ROWS = 20

_VERDICT_LABELS = {
    Verdict.FIRING: "firing",
    Verdict.OK: "ok",
    Verdict.NOT_ENOUGH_DATA: "too few requests",
    Verdict.OFF: "off",
}


@dataclass
class RuleRow:
    """One rule: its state (``firing``, ``ok``, ``too few requests``, ``off``) and figure."""

    rule: str = ""
    title: str = ""
    status: str = ""
    value: str = ""
    threshold: str = ""
    since: str = ""
    last_message: str = ""
    details: str = ""
    silenced: str = ""  # "until 2026-11-26 16:07 UTC by alice: reason", "" when not
    last_week: str = ""  # would have fired in the last 7 days: "2× (1 h 5 min), 3 messages"


@dataclass
class HistoryRow:
    """One message: when, which rule, what kind, and how each channel took it."""

    id: int = 0
    at: str = ""
    rule: str = ""
    kind: str = ""
    summary: str = ""
    deliveries: str = ""


@dataclass
class AttemptRow:
    """One delivery attempt."""

    at: str = ""
    rule: str = ""
    channel: str = ""
    result: str = ""
    error: str = ""


@dataclass
class AlertsPanel:
    """Everything the panel renders."""

    rules: list[RuleRow] = field(default_factory=list)
    history: list[HistoryRow] = field(default_factory=list)
    attempts: list[AttemptRow] = field(default_factory=list)
    channels: str = ""


def _time(moment: datetime | None) -> str:
    return "" if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S")


def rule_row(finding: Finding, state: AlertRuleState | None) -> RuleRow:
    """A rule's row: firing while its stored state says so (what people were told) or
    while its figure is over the threshold right now."""
    firing = finding.firing or bool(state and state.firing)
    status = "firing" if firing else _VERDICT_LABELS[finding.verdict]
    if firing and state is not None and state.firing and not state.episode_notified:
        status = "firing (suppressed)"
    return RuleRow(
        rule=finding.rule.value,
        title=finding.title,
        status=status,
        value=format_value(finding.rule, finding.value) if finding.value is not None else "",
        threshold=format_threshold(finding.rule, finding.threshold),
        since=_time(state.firing_since) if state and state.firing else "",
        last_message=_time(state.notified_at) if state else "",
        details=finding.summary,
    )


def _rule_title(name: str) -> str:
    try:
        return RULE_TITLES[Rule(name)]
    except ValueError:
        return "Test message" if name == "test" else name


def _delivery_text(delivery: AlertDelivery) -> str:
    if delivery.status == "sent":
        return f"{delivery.channel}: sent"
    if delivery.status == "failed":
        retry = ", will retry" if delivery.due_at is not None else ""
        return f"{delivery.channel}: failed ×{delivery.attempts}{retry} ({delivery.last_error})"
    return f"{delivery.channel}: {delivery.status}"


REPLAYING = "replaying…"  # the last week's cell while its replay is under way


def last_week_text(replay: backtest.RuleReplay, end: datetime) -> str:
    """The "would have fired in the last 7 days" cell of a rule."""
    if replay.not_replayed:
        return "not replayed"
    if replay.off:
        return ""
    if not replay.episodes:
        return "never"
    lasted = format_duration(replay.firing_time(end).total_seconds())
    messages = replay.messages
    text = f"{len(replay.episodes)}× ({lasted}), {messages} message{'' if messages == 1 else 's'}"
    return text + (f", {replay.silenced} silenced" if replay.silenced else "")


def load_panel(
    *, session: Session, engine: AlertEngine, replay_wait: float = BACKTEST_WAIT_SECONDS
) -> AlertsPanel:
    """Read the panel: live findings (``engine.observe``), stored states and history.

    ``replay_wait``: how long to wait for the last week's replay (tests that read its
    figures wait longer than a page would: on a loaded machine a replay takes seconds).
    """
    obs, findings = engine.observe()
    states = {row.rule: row for row in store.all_states(session=session)}
    notes = store.recent_notifications(session=session, limit=HISTORY_ROWS)
    by_note: dict[int, list[AlertDelivery]] = defaultdict(list)
    note_ids = [note.id for note in notes if note.id]
    for delivery in store.deliveries_of(session=session, notification_ids=note_ids):
        by_note[delivery.notification_id].append(delivery)
    history = [
        HistoryRow(
            id=note.id or 0,
            at=_time(note.created_at),
            rule=_rule_title(note.rule),
            kind=note.kind,
            summary=note.summary,
            deliveries=" · ".join(
                _delivery_text(d) for d in sorted(by_note[note.id or 0], key=lambda d: d.channel)
            )
            or "no channel configured",
        )
        for note in notes
    ]
    attempts = [
        AttemptRow(
            at=_time(a.attempted_at),
            rule=a.rule,
            channel=a.channel,
            result=a.result,
            error=a.error or "",
        )
        for a in store.recent_attempts(session=session, limit=ATTEMPT_ROWS)
    ]
    held = silences.active_silences(session=session, now=obs.now)
    rows = [rule_row(f, states.get(f.rule.value)) for f in findings]
    week = last_week(engine=engine, now=obs.now, wait=replay_wait)
    for row in rows:
        if row.rule in held:
            row.silenced = held[row.rule].note().removeprefix("silenced ")
        row.last_week = (
            REPLAYING if week is None else last_week_text(week.rule(Rule(row.rule)), week.end)
        )
    return AlertsPanel(
        rules=rows,
        history=history,
        attempts=attempts,
        channels=", ".join(engine.channel_names) or "none configured",
    )
