"""The Alerts panel of the monitor page: rule states, messages sent, delivery attempts."""

from __future__ import annotations

import reflex as rx

from chatmon.presenters.alerts_panel import AttemptRow, HistoryRow, RuleRow
from chatmon.states.alerts import RULE_NAMES, AlertsState


def _status_badge(status: rx.Var) -> rx.Component:
    return rx.badge(
        status,
        color_scheme=rx.match(
            status,
            ("firing", "red"),
            ("firing (suppressed)", "orange"),
            ("ok", "green"),
            "gray",
        ),
        variant="soft",
    )


def _header_row(*names: str) -> rx.Component:
    return rx.table.header(rx.table.row(*[rx.table.column_header_cell(n) for n in names]))


def _rule_row(row: RuleRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(row.title),
        rx.table.cell(_status_badge(row.status), class_name="alert-status"),
        rx.table.cell(row.value),
        rx.table.cell(row.threshold),
        rx.table.cell(row.since),
        rx.table.cell(row.last_message),
        rx.table.cell(rx.text(row.details, size="1", color=rx.color("gray", 11))),
        rx.table.cell(rx.text(row.last_week, size="1"), class_name="alert-last-week"),
        rx.table.cell(
            rx.cond(
                row.silenced != "",
                rx.hstack(
                    rx.text(row.silenced, size="1", class_name="alert-silenced"),
                    rx.button(
                        "Unsilence",
                        size="1",
                        variant="soft",
                        on_click=AlertsState.unsilence_rule(row.rule),
                        class_name="alert-unsilence",
                    ),
                    align="center",
                ),
            )
        ),
        id="alert-rule-" + row.rule,
    )


def _silence_form() -> rx.Component:
    """Silence a rule for a while, with a reason: its messages are recorded, not sent."""
    return rx.form(
        rx.hstack(
            rx.text("Silence", size="2", weight="medium"),
            rx.select(RULE_NAMES, name="rule", default_value=RULE_NAMES[0], size="1"),
            rx.text("for", size="2"),
            rx.input(name="duration", default_value="2h", size="1", width="5em", max_length=20),
            rx.input(
                name="reason",
                placeholder="why (who is on it, what is going on)",
                size="1",
                width="24em",
                max_length=200,
                id="silence-reason",
            ),
            rx.button("Silence", type="submit", size="1", id="silence-submit"),
            rx.text(AlertsState.silence_notice, size="1", id="silence-notice"),
            align="center",
            wrap="wrap",
        ),
        on_submit=AlertsState.silence_rule,
        id="silence-form",
    )


def _history_row(row: HistoryRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(row.at),
        rx.table.cell(row.rule),
        rx.table.cell(rx.badge(row.kind, variant="outline")),
        rx.table.cell(rx.text(row.summary, size="1")),
        rx.table.cell(rx.text(row.deliveries, size="1")),
        class_name="alert-history-row",
    )


def _attempt_row(row: AttemptRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(row.at),
        rx.table.cell(row.rule),
        rx.table.cell(row.channel),
        rx.table.cell(
            rx.badge(
                row.result,
                color_scheme=rx.cond(row.result == "sent", "green", "red"),
                variant="soft",
            )
        ),
        rx.table.cell(rx.text(row.error, size="1")),
        class_name="alert-attempt-row",
    )


def _section(title: str, body: rx.Component) -> rx.Component:
    return rx.vstack(rx.heading(title, size="3"), body, spacing="2", width="100%")


def alerts_panel() -> rx.Component:
    """The panel; it loads on mount and refreshes itself while shown."""
    return rx.card(
        rx.vstack(
            rx.hstack(
                rx.heading("Alerts", size="4"),
                rx.text(
                    "channels: ",
                    AlertsState.channels,
                    size="2",
                    color=rx.color("gray", 11),
                    id="alert-channels",
                ),
                rx.spacer(),
                rx.icon_button(
                    rx.icon("refresh-cw", size=14),
                    on_click=AlertsState.refresh,
                    size="1",
                    variant="soft",
                    loading=AlertsState.loading,
                    id="alerts-refresh",
                    aria_label="refresh alerts",
                ),
                align="center",
                width="100%",
            ),
            rx.cond(
                AlertsState.error != "",
                rx.callout(
                    AlertsState.error, icon="triangle_alert", color_scheme="red", id="alerts-error"
                ),
            ),
            rx.table.root(
                _header_row(
                    "Rule",
                    "State",
                    "Value",
                    "Threshold",
                    "Firing since",
                    "Last message",
                    "Details",
                    "Would have fired (7 d)",
                    "Silenced",
                ),
                rx.table.body(rx.foreach(AlertsState.rules, _rule_row)),
                size="1",
                width="100%",
                id="alert-rules",
            ),
            _silence_form(),
            _section(
                "Messages",
                rx.cond(
                    AlertsState.history.length() > 0,
                    rx.table.root(
                        _header_row("At (UTC)", "Rule", "Kind", "Summary", "Deliveries"),
                        rx.table.body(rx.foreach(AlertsState.history, _history_row)),
                        size="1",
                        width="100%",
                        id="alert-history",
                    ),
                    rx.text(
                        "No alert has fired yet.",
                        size="2",
                        color=rx.color("gray", 11),
                        id="alert-history-empty",
                    ),
                ),
            ),
            rx.cond(
                AlertsState.attempts.length() > 0,
                _section(
                    "Delivery attempts",
                    rx.table.root(
                        _header_row("At (UTC)", "Rule", "Channel", "Result", "Error"),
                        rx.table.body(rx.foreach(AlertsState.attempts, _attempt_row)),
                        size="1",
                        width="100%",
                        id="alert-attempts",
                    ),
                ),
            ),
            spacing="3",
            width="100%",
        ),
        on_mount=AlertsState.mount,
        on_unmount=AlertsState.unmount,
        id="alerts-panel",
        width="100%",
    )
