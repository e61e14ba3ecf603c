"""The monitor's "Top spenders" panel: who or what the window's money went to.

Switchable between model, user, conversation and prompt version; each row's
"Requests" button narrows the request table below to that key's requests.
"""

from __future__ import annotations

import reflex as rx

from chatmon.presenters.spend import USAGE_BY_LABELS, BudgetBar, SpenderRow
from chatmon.states.monitor import MonitorState


def _row(row: SpenderRow, index: int) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.code(row.label, size="1"), title=row.key),
        rx.table.cell(row.cost, rx.cond(row.unpriced != "", rx.text(row.unpriced, size="1"))),
        rx.table.cell(row.requests),
        rx.table.cell(row.errors),
        rx.table.cell(row.feedback),
        rx.table.cell(
            rx.button(
                "Requests",
                on_click=MonitorState.show_requests_of(row.key),
                variant="ghost",
                size="1",
                id=f"spender-requests-{index}",
            )
        ),
        id=f"spender-{index}",
    )


def _grouping() -> rx.Component:
    return rx.segmented_control.root(
        *[rx.segmented_control.item(label, value=by) for by, label in USAGE_BY_LABELS.items()],
        value=MonitorState.usage_by,
        on_change=MonitorState.set_usage_by,
        size="1",
        id="usage-by",
    )


def top_spenders() -> rx.Component:
    """The panel (its CSV is /api/usage.csv with the same window and grouping)."""
    return rx.card(
        rx.vstack(
            rx.hstack(
                rx.text("Top spenders", weight="medium", size="3"),
                _grouping(),
                rx.link(
                    "CSV",
                    href="/api/usage.csv?by="
                    + MonitorState.usage_by
                    + "&"
                    + MonitorState.csv_query,
                    size="2",
                    id="usage-csv",
                    is_external=True,
                ),
                rx.cond(
                    MonitorState.usage_key != "",
                    rx.button(
                        "Show all requests",
                        on_click=MonitorState.clear_usage_filter,
                        variant="soft",
                        size="1",
                        id="usage-filter-clear",
                    ),
                ),
                align="center",
                spacing="3",
                wrap="wrap",
            ),
            rx.table.root(
                rx.table.header(
                    rx.table.row(
                        *[
                            rx.table.column_header_cell(title)
                            for title in ("Key", "Cost", "Requests", "Errors", "Up / down", "")
                        ]
                    )
                ),
                rx.table.body(rx.foreach(MonitorState.spenders, _row)),
                size="1",
                width="100%",
                id="top-spenders",
            ),
            spacing="3",
            width="100%",
        ),
        width="100%",
        overflow_x="auto",
    )


def _budget_bar(bar: BudgetBar) -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.hstack(
                rx.text(bar.title, weight="medium", size="2"),
                rx.text(bar.spent, size="2", id="budget-spent-" + bar.period),
                justify="between",
                width="100%",
            ),
            rx.progress(value=bar.percent.to(int), color_scheme=bar.color, width="100%"),
            rx.text(bar.forecast, size="1", color=rx.color("gray", 11)),
            rx.text(bar.action, size="1", color=rx.color("gray", 10)),
            spacing="2",
            width="100%",
        ),
        id="budget-" + bar.period,
        width="100%",
    )


def budget_bars() -> rx.Component:
    """Each configured budget: spend against the limit, the forecast, the action at 100 %."""
    return rx.cond(
        MonitorState.budgets.length() > 0,
        rx.grid(
            rx.foreach(MonitorState.budgets, _budget_bar),
            columns=rx.breakpoints(initial="1", md="2"),
            spacing="3",
            width="100%",
            id="budgets",
        ),
    )
