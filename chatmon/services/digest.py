"""The spend digest: one summary people read, as plain text and HTML.

Covers the last day (or week) ending now against the one before it: spend and its
change, requests, error rate, p95 latency, satisfaction, the top 5 spenders by
user, by conversation and by model, each budget's status, and the alerts that fired.
``python -m chatmon digest --print`` previews it; :mod:`chatmon.services.digest_send`
sends it on ``DIGEST_SCHEDULE``, rendered here as an email (text + HTML) and a Slack
message. Rendering is pure, and every key that reaches HTML or Slack is escaped.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any

from sqlalchemy import select
from sqlmodel import Session, col

from chatmon.models import AlertNotification
from chatmon.services import budget, stats, usage
from chatmon.services.alerts.channels import message_id
from chatmon.services.alerts.rules import format_usd
from chatmon.services.sql_time import to_utc
from chatmon.services.usage_keys import short_key

PERIODS = {"daily": timedelta(days=1), "weekly": timedelta(days=7)}
TOP = 5
SLACK_SECTION_CHARS = 2900  # Slack refuses a section text over 3000 characters


@dataclass(frozen=True)
class Digest:
    """One digest: a subject and the same content as lines of text."""

    subject: str
    lines: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "\n".join(self.lines) + "\n"

    @property
    def html(self) -> str:
        items = "".join(
            f"<h3>{html.escape(line[3:])}</h3>"
            if line.startswith("## ")
            else f"<p>{html.escape(line)}</p>"
            for line in self.lines
            if line
        )
        return f"<html><body><h2>{html.escape(self.subject)}</h2>{items}</body></html>"


def _change(now: float, before: float) -> str:
    if before <= 0:
        return "no spend the period before" if now else "no spend either period"
    change = round((now - before) / before * 100)
    if change == 0:  # never "-0 %"
        return f"about the same as the period before ({format_usd(before)})"
    return f"{change:+d} % vs the period before ({format_usd(before)})"


def _seconds(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f} s"


def build(*, session: Session, settings: Any, now: datetime, schedule: str = "daily") -> Digest:
    """The digest of the ``schedule`` period ending at ``now``."""
    now = to_utc(now)
    span = PERIODS[schedule]
    start, previous_start = now - span, now - 2 * span
    this = stats.window_summary(session=session, start=start, end=now)
    before = stats.window_summary(session=session, start=previous_start, end=start)
    unpriced = (
        f" (+ {this.unpriced_requests:,} unpriced requests)" if this.unpriced_requests else ""
    )
    satisfaction = "n/a" if this.satisfaction is None else f"{this.satisfaction:.0f} %"
    lines = [
        f"## Spend: {format_usd(this.cost_usd)}{unpriced}",
        _change(this.cost_usd, before.cost_usd),
        f"## Traffic: {this.requests:,} requests (the period before: {before.requests:,})",
        f"error rate {this.error_rate:.1f} %, p95 latency {_seconds(this.latency_p95)}, "
        f"satisfaction {satisfaction} ({this.feedback_up:,} up / {this.feedback_down:,} down)",
    ]
    for by in ("user", "conversation", "model"):
        rows = usage.top(session=session, start=start, end=now, by=by, limit=TOP)
        lines.append(f"## Top {by}s by spend")
        lines += [
            f"{short_key(r.key, by)}: {format_usd(r.cost_usd)}, {r.requests:,} requests"
            for r in rows
        ] or ["none"]
    config = budget.BudgetConfig.from_settings(settings)
    lines.append("## Budgets")
    statuses = budget.statuses(session=session, config=config, now=now)
    for status in statuses:
        outlook = (
            "" if status.forecast_usd is None else f", forecast {format_usd(status.forecast_usd)}"
        )
        lines.append(
            f"{status.period}: {format_usd(status.spent_usd)} of {format_usd(status.limit_usd)} "
            f"({status.percent:.0f} %){outlook}"
        )
    if not statuses:
        lines.append("none configured")
    fired = session.execute(
        select(col(AlertNotification.rule), col(AlertNotification.summary))
        .where(col(AlertNotification.created_at) >= start, col(AlertNotification.kind) == "firing")
        .order_by(col(AlertNotification.created_at))
    ).all()
    lines.append("## Alerts that fired")
    lines += [f"{rule}: {summary}" for rule, summary in fired] or ["none"]
    period = "day" if schedule == "daily" else "week"
    subject = (
        f"[chatmon] {period} digest: {format_usd(this.cost_usd)} spent, {this.requests:,} requests"
    )
    return Digest(subject, lines)


def email_message(
    built: Digest, *, sender: str, recipients: list[str], key: str, monitor_url: str
) -> EmailMessage:
    """The digest as a multipart/alternative email whose ``Message-ID`` is ``key``'s (the
    same on every attempt of one delivery, as for alerts)."""
    mail = EmailMessage()
    mail["Subject"] = built.subject
    mail["From"] = sender
    mail["To"] = ", ".join(recipients)
    mail["Date"] = formatdate(localtime=False, usegmt=True)
    mail["Message-ID"] = message_id(key, sender=sender)
    mail["X-Chatmon-Digest"] = key
    mail.set_content(f"{built.subject}\n\n{built.text}\nMonitor: {monitor_url}\n")
    link = f'<p><a href="{html.escape(monitor_url, quote=True)}">Open the monitor</a></p>'
    mail.add_alternative(built.html.replace("</body>", link + "</body>"), subtype="html")
    return mail


def _mrkdwn(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_payload(built: Digest, *, key: str, monitor_url: str) -> dict[str, Any]:
    """The digest as an incoming-webhook message: a header, one section per heading, the
    monitor link and the dedupe ``key`` (in a context block and the metadata)."""
    sections: list[list[str]] = []
    for line in built.lines:
        if line.startswith("## ") or not sections:
            sections.append([f"*{_mrkdwn(line.removeprefix('## '))}*"])
        elif line:
            sections[-1].append(_mrkdwn(line))
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": built.subject[:150]}}
    ]
    blocks += [
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": "\n".join(section)[:SLACK_SECTION_CHARS]},
        }
        for section in sections
    ]
    link = f"<{monitor_url}|Open the monitor>"
    blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": link}})
    shown = f"digest key `{_mrkdwn(key)}`"
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": shown}]})
    metadata = {"event_type": "chatmon_digest", "event_payload": {"dedupe_key": key}}
    return {"text": built.subject, "blocks": blocks, "metadata": metadata}
