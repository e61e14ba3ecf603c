"""Plain-text tables of a check and of a channel test, for the command line."""

from __future__ import annotations

from collections.abc import Sequence

from chatmon.services.alerts.engine import CheckReport, DeliveryOutcome
from chatmon.services.alerts.messages import format_value

NO_CHANNELS = (
    "no channel configured: set SMTP_HOST, ALERT_EMAIL_FROM and ALERT_EMAIL_TO for email, "
    "SLACK_WEBHOOK_URL for Slack"
)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            str(cell).ljust(width) for cell, width in zip(cells, widths, strict=True)
        ).rstrip()

    return [line(header), line(["-" * width for width in widths]), *(line(row) for row in rows)]


def _delivery_result(outcome: DeliveryOutcome) -> str:
    result = "sent" if outcome.ok else f"FAILED: {outcome.error}"
    if not outcome.recorded:
        result += " (not recorded: another process had taken the delivery over)"
    return result


def format_check(report: CheckReport, *, channels: Sequence[str]) -> str:
    """Every rule's verdict, figure and action, then the deliveries this check made."""
    rows = [
        (
            outcome.finding.rule.value,
            outcome.finding.verdict.value,
            format_value(outcome.finding.rule, outcome.finding.value),
            outcome.action.value,
            outcome.finding.summary,
        )
        for outcome in report.rules
    ]
    lines = [f"alert check at {report.checked_at:%Y-%m-%d %H:%M:%S} UTC", ""]
    lines += _table(("rule", "verdict", "value", "action", "details"), rows)
    lines.append("")
    if report.deliveries:
        sent = [(d.rule, d.kind, d.channel, _delivery_result(d)) for d in report.deliveries]
        lines += _table(("rule", "message", "channel", "result"), sent)
    else:
        lines.append("no message was due")
    lines.append("channels: " + (", ".join(channels) if channels else NO_CHANNELS))
    return "\n".join(lines)


def format_test(outcomes: Sequence[DeliveryOutcome]) -> str:
    """One line per channel: sent, or why not."""
    return "\n".join(f"{o.channel}: {_delivery_result(o)}" for o in outcomes)
