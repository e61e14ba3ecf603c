"""What an alert says, and how it reads in an email (text + HTML) and in Slack (blocks).

An :class:`AlertMessage` holds only facts, already formatted, and is stored as JSON
with its notification, so a retried delivery sends exactly what the first attempt
did, with the same :func:`delivery_key`. Rendering is pure; every value that reaches
HTML is escaped, and Slack text is escaped for mrkdwn (``&``, ``<``, ``>``).
"""

from __future__ import annotations

import html
import json
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from chatmon.services.alerts.rules import Finding, Rule, format_minutes, format_usd
from chatmon.services.sql_time import to_utc

BRAND = "chatmon"

_HEADLINES = {
    "firing": "FIRING",
    "repeat": "STILL FIRING",
    "resolved": "RESOLVED",
    "test": "TEST",
}
_COLOURS = {"firing": "#c62828", "repeat": "#c62828", "resolved": "#2e7d32", "test": "#1565c0"}


@dataclass(frozen=True)
class Evidence:
    """Details that help whoever is paged start looking: where the errors come from."""

    top_error_categories: list[tuple[str, int]] = field(default_factory=list)
    correlation_ids: list[str] = field(default_factory=list)
    correlation_label: str = "Recent requests"


@dataclass(frozen=True)
class AlertMessage:
    """The facts of one alert message, formatted for people."""

    kind: str  # firing | repeat | resolved | test
    rule: str
    title: str
    summary: str
    value: str
    threshold: str
    window: str
    checked_at: str  # "2025-03-10 12:00:00 UTC"
    firing_since: str | None
    monitor_url: str
    top_error_categories: list[tuple[str, int]] = field(default_factory=list)
    correlation_ids: list[str] = field(default_factory=list)
    correlation_label: str = "Recent requests"
    severity: str = (
        ""  # critical | warning (services/alert_routing.py); "" for tests and older rows
    )
    lasted: str = ""  # resolved messages: how long the episode lasted (episode.py)
    changed: str = ""  # firing/repeat: what changed in the hour before (changes.py)
    affected: str = ""  # resolved messages: requests, conversations, users, retry cost

    @property
    def headline(self) -> str:
        return _HEADLINES.get(self.kind, self.kind.upper())

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> AlertMessage:
        data: dict[str, Any] = json.loads(text)
        pairs = data.get("top_error_categories", [])
        data["top_error_categories"] = [tuple(pair) for pair in pairs]
        return cls(**data)


# ----------------------------------------------------------------------------- building


USD_RULES = frozenset(
    {
        Rule.COST_HOURLY,
        Rule.COST_DAILY,
        Rule.BUDGET_DAILY,
        Rule.BUDGET_MONTHLY,
        Rule.BUDGET_FORECAST,
    }
)


def format_value(rule: Rule, value: float | None) -> str:
    """A rule's figure as people read it: ``52.0 %``, ``6.41 s``, ``$1.20``, ``35 min``."""
    if value is None:
        return "n/a"
    if rule in (Rule.ERROR_RATE, Rule.DISSATISFACTION, Rule.FALLBACK_USED):
        return f"{value:.1f} %"
    if rule is Rule.LATENCY_P95:
        return f"{value:.2f} s"
    if rule in USD_RULES:
        return format_usd(value)
    if rule is Rule.BREAKER_OPEN:
        return f"{value:g} model{'s' if value != 1 else ''} open"
    if rule is Rule.PROBE_FAILED:
        return f"{value:g} failed in a row"
    return f"{value:.0f} min"


def format_threshold(rule: Rule, threshold: float | None) -> str:
    """A rule's limit as people read it: ``10 %``, ``5 s``, ``$1.00``, ``30 min``."""
    if threshold is None:
        return "any open breaker" if rule is Rule.BREAKER_OPEN else "n/a"
    if rule in (Rule.ERROR_RATE, Rule.DISSATISFACTION, Rule.FALLBACK_USED):
        return f"{threshold:g} %"
    if rule is Rule.LATENCY_P95:
        return f"{threshold:g} s"
    if rule in USD_RULES:
        return format_usd(threshold)
    if rule is Rule.PROBE_FAILED:
        return f"{threshold:g} in a row"
    return format_minutes(threshold)


def _window(rule: Rule, window_minutes: float) -> str:
    return {
        Rule.ERROR_RATE: f"last {format_minutes(window_minutes)}",
        Rule.LATENCY_P95: f"last {format_minutes(window_minutes)}",
        Rule.COST_HOURLY: "last hour",
        Rule.COST_DAILY: "since 00:00 UTC",
        Rule.BREAKER_OPEN: "now",
        Rule.NO_TRAFFIC: "since the last request",
        Rule.PROBE_FAILED: "latest probes",
        Rule.BUDGET_DAILY: "this budget day",
        Rule.BUDGET_MONTHLY: "this budget month",
        Rule.BUDGET_FORECAST: "the current pace",
        Rule.DISSATISFACTION: "the feedback window (ALERT_FEEDBACK_WINDOW_HOURS)",
        Rule.FALLBACK_USED: f"last {format_minutes(window_minutes)}",
    }[rule]


def format_time(moment: datetime | None) -> str | None:
    return None if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def build_message(
    *,
    kind: str,
    finding: Finding,
    evidence: Evidence,
    window_minutes: float,
    checked_at: datetime,
    firing_since: datetime | None,
    monitor_url: str,
) -> AlertMessage:
    """The message for ``finding`` (whose figures are those of this check)."""
    return AlertMessage(
        kind=kind,
        rule=finding.rule.value,
        title=finding.title,
        summary=finding.summary,
        value=format_value(finding.rule, finding.value),
        threshold=format_threshold(finding.rule, finding.threshold),
        window=_window(finding.rule, window_minutes),
        checked_at=format_time(checked_at) or "",
        firing_since=format_time(firing_since),
        monitor_url=monitor_url,
        top_error_categories=list(evidence.top_error_categories),
        correlation_ids=list(evidence.correlation_ids),
        correlation_label=evidence.correlation_label,
    )


def channel_test_message(*, checked_at: datetime, monitor_url: str) -> AlertMessage:
    """What ``python -m chatmon alerts test`` sends to every channel."""
    return AlertMessage(
        kind="test",
        rule="test",
        title="Test message",
        summary="If you can read this, chatmon can reach you on this channel.",
        value="n/a",
        threshold="n/a",
        window="n/a",
        checked_at=format_time(checked_at) or "",
        firing_since=None,
        monitor_url=monitor_url,
    )


def delivery_key(*, notification_id: int, created_at: datetime, channel: str) -> str:
    """The dedupe key of one notification on one channel, e.g.
    ``chatmon-42-20261126140712123456-email``.

    Delivery is at least once: a process that dies between sending and recording is
    taken over, and the message goes out again. Every attempt, from any process, carries
    this same key (the email's ``Message-ID``, a field of the Slack payload), made of
    stored values only: the notification's id, the moment it was created (so a database
    started afresh, whose ids start again at 1, does not reuse keys) and the channel.
    """
    stamp = to_utc(created_at).strftime("%Y%m%d%H%M%S%f")
    return f"{BRAND}-{notification_id}-{stamp}-{channel}"


# ----------------------------------------------------------------------------- rendering


def subject(message: AlertMessage) -> str:
    """The email subject (also Slack's notification text)."""
    if message.kind == "test":
        return f"[{BRAND}] Test message: alerts reach this channel"
    if message.kind == "resolved":
        return f"[{BRAND}] RESOLVED: {message.title} is back to {message.value}"
    figures = f"{message.value} (threshold {message.threshold})"
    return f"[{BRAND}] {message.headline}: {message.title} {figures}"


def facts(message: AlertMessage) -> list[tuple[str, str]]:
    """The labelled figures every rendering shows, in order."""
    rows = [("Status", message.headline)]
    if message.kind != "test":
        rows += [
            ("Rule", message.title),
            ("Value", message.value),
            ("Threshold", message.threshold),
            ("Window", message.window),
        ]
        if message.severity:
            rows.insert(2, ("Severity", message.severity))
        if message.firing_since:
            rows.append(("Firing since", message.firing_since))
        if message.lasted:
            rows.append(("Lasted", message.lasted))
        if message.affected:
            rows.append(("Affected", message.affected))
        if message.changed:
            rows.append(("Changed", message.changed))
    rows.append(("Checked at", message.checked_at))
    return rows


def _categories_line(message: AlertMessage) -> str:
    return ", ".join(f"{name} ({count})" for name, count in message.top_error_categories)


def plain_text(message: AlertMessage) -> str:
    """The email's text/plain part."""
    width = max(len(label) for label, _ in facts(message))
    lines = [subject(message), "", message.summary, ""]
    lines += [f"{label + ':':<{width + 1}} {value}" for label, value in facts(message)]
    if message.top_error_categories:
        lines += ["", f"Top error categories: {_categories_line(message)}"]
    if message.correlation_ids:
        lines += ["", f"{message.correlation_label} (correlation ids):"]
        lines += [f"  {cid}" for cid in message.correlation_ids]
    lines += ["", f"Monitor: {message.monitor_url}", ""]
    return "\n".join(lines)


def html_body(message: AlertMessage) -> str:
    """The email's text/html part: the same facts, in a table, everything escaped."""
    e = html.escape
    colour = _COLOURS.get(message.kind, "#424242")
    rows = "".join(
        f'<tr><th align="left" style="padding:2px 12px 2px 0">{e(label)}</th>'
        f"<td>{e(value)}</td></tr>"
        for label, value in facts(message)
    )
    parts = [
        f'<h2 style="color:{colour};margin:0 0 8px">{e(message.headline)}: {e(message.title)}</h2>',
        f"<p>{e(message.summary)}</p>",
        f'<table style="border-collapse:collapse">{rows}</table>',
    ]
    if message.top_error_categories:
        items = "".join(
            f"<li><code>{e(name)}</code>: {count}</li>"
            for name, count in message.top_error_categories
        )
        parts.append(f"<p><b>Top error categories</b></p><ul>{items}</ul>")
    if message.correlation_ids:
        items = "".join(f"<li><code>{e(cid)}</code></li>" for cid in message.correlation_ids)
        label = e(message.correlation_label)
        parts.append(f"<p><b>{label}</b> (correlation ids)</p><ul>{items}</ul>")
    parts.append(f'<p><a href="{e(message.monitor_url, quote=True)}">Open the monitor</a></p>')
    return '<html><body style="font-family:sans-serif">' + "".join(parts) + "</body></html>"


def _mrkdwn(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_payload(message: AlertMessage, *, key: str) -> dict[str, Any]:
    """The incoming-webhook JSON: a fallback ``text``, the same facts as blocks, and the
    dedupe ``key``.

    Incoming webhooks have no deduplication of their own (Slack posts every POST), so
    the key travels twice: in the message ``metadata`` (``event_payload.dedupe_key``),
    for anything that reads the channel programmatically, and in a last context block,
    so people seeing the same alert twice can tell it is one delivery repeated.
    """
    header = f"{message.headline}: {message.title}"
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": header[:150]}},
        {"type": "section", "text": {"type": "mrkdwn", "text": _mrkdwn(message.summary)}},
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": f"*{_mrkdwn(label)}*\n{_mrkdwn(value)}"}
                for label, value in facts(message)[:10]  # Slack allows 10 fields
            ],
        },
    ]
    if message.top_error_categories:
        text = f"*Top error categories:* {_mrkdwn(_categories_line(message))}"
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": text}})
    if message.correlation_ids:
        ids = ", ".join(f"`{_mrkdwn(cid)}`" for cid in message.correlation_ids)
        text = f"*{_mrkdwn(message.correlation_label)}:* {ids}"
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": text}]})
    link = f"<{message.monitor_url}|Open the monitor>"
    blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": link}})
    shown = f"alert key `{_mrkdwn(key)}`"
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": shown}]})
    metadata = {
        "event_type": f"{BRAND}_alert",
        "event_payload": {"dedupe_key": key, "rule": message.rule, "kind": message.kind},
    }
    return {"text": subject(message), "blocks": blocks, "metadata": metadata}
