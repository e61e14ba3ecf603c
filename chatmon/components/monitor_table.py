"""The monitor page's request table (filter, sort, page) and the request detail dialog."""

from __future__ import annotations

import reflex as rx

from chatmon.presenters.requests import DetailField, RequestRow
from chatmon.states.monitor import CATEGORIES, STATUSES, MonitorState

# (column in the request log, header) in display order; None: not sortable
COLUMNS: tuple[tuple[str | None, str], ...] = (
    ("started_at", "Started (UTC)"),
    ("model", "Model"),
    ("status", "Status"),
    (None, "Error"),
    ("latency_seconds", "Latency"),
    ("ttft_seconds", "TTFT"),
    ("input_tokens", "In"),
    ("output_tokens", "Out"),
    ("cost_usd", "Cost"),
    (None, "Rating"),
)


def _header_cell(column: str | None, title: str) -> rx.Component:
    if column is None:
        return rx.table.column_header_cell(title)
    arrow = rx.cond(MonitorState.sort == column, rx.cond(MonitorState.descending, " ↓", " ↑"), "")
    return rx.table.column_header_cell(
        rx.text(title, arrow, as_="span"),
        on_click=MonitorState.sort_by(column),
        cursor="pointer",
        id=f"sort-{column}",
        white_space="nowrap",
    )


def _status_badge(status: rx.Var[str]) -> rx.Component:
    return rx.badge(
        status,
        color_scheme=rx.match(status, ("ok", "green"), ("error", "red"), "gray"),
        variant="soft",
    )


def _row(row: rx.Var[RequestRow]) -> rx.Component:
    return rx.table.row(
        rx.table.cell(row.started_at, white_space="nowrap"),
        rx.table.cell(row.model),
        rx.table.cell(_status_badge(row.status)),
        rx.table.cell(row.error_category),
        rx.table.cell(row.latency),
        rx.table.cell(row.ttft),
        rx.table.cell(row.tokens_input),
        rx.table.cell(row.tokens_output),
        rx.table.cell(row.cost),
        rx.table.cell(row.feedback),
        on_click=MonitorState.open_detail(row.correlation_id),
        cursor="pointer",
        id="request-row-" + row.correlation_id,
        class_name="request-row",
        _hover={"background": rx.color("gray", 3)},
    )


def _filter(
    label: str, items: rx.Var | list[str], value: rx.Var, on_change, element_id: str
) -> rx.Component:
    return rx.hstack(
        rx.text(label, size="2", color=rx.color("gray", 11)),
        rx.el.select(
            rx.foreach(items, lambda item: rx.el.option(item, value=item)),
            value=value,
            on_change=on_change,
            id=element_id,
            class_name="monitor-filter",
        ),
        align="center",
        spacing="2",
    )


def filters() -> rx.Component:
    """Status, model and error-category filters of the table."""
    return rx.hstack(
        _filter(
            "Status",
            list(STATUSES),
            MonitorState.status_filter,
            MonitorState.set_status_filter,
            "filter-status",
        ),
        _filter(
            "Model",
            rx.Var.create(["all"]) + MonitorState.models,
            MonitorState.model_filter,
            MonitorState.set_model_filter,
            "filter-model",
        ),
        _filter(
            "Error",
            list(CATEGORIES),
            MonitorState.category_filter,
            MonitorState.set_category_filter,
            "filter-category",
        ),
        spacing="4",
        wrap="wrap",
    )


def request_table() -> rx.Component:
    """Recent requests: filters, sortable headers, rows that open their detail, paging."""
    return rx.card(
        rx.vstack(
            rx.hstack(
                rx.text("Requests", weight="medium", size="3"),
                filters(),
                justify="between",
                align="center",
                width="100%",
                wrap="wrap",
            ),
            rx.table.root(
                rx.table.header(rx.table.row(*[_header_cell(c, t) for c, t in COLUMNS])),
                rx.table.body(rx.foreach(MonitorState.rows, _row)),
                size="1",
                width="100%",
                id="requests-table",
            ),
            rx.cond(
                MonitorState.rows.length() == 0,
                rx.text("No request matches these filters.", color=rx.color("gray", 10), size="2"),
            ),
            rx.hstack(
                rx.button(
                    "Previous",
                    on_click=MonitorState.previous_page,
                    disabled=MonitorState.page == 0,
                    variant="soft",
                    size="1",
                    id="page-previous",
                ),
                rx.text(MonitorState.page_label, size="2", id="page-label"),
                rx.button(
                    "Next",
                    on_click=MonitorState.next_page,
                    disabled=MonitorState.page + 1 >= MonitorState.page_count,
                    variant="soft",
                    size="1",
                    id="page-next",
                ),
                align="center",
                spacing="3",
            ),
            spacing="3",
            width="100%",
        ),
        width="100%",
        overflow_x="auto",
    )


def _detail_field(item: rx.Var[DetailField]) -> rx.Component:
    return rx.data_list.item(
        rx.data_list.label(item.label),
        rx.data_list.value(item.value, class_name="detail-value"),
        class_name="detail-field",
    )


def request_detail() -> rx.Component:
    """Every recorded field of the clicked request, and a link to its conversation."""
    detail = MonitorState.detail
    return rx.dialog.root(
        rx.dialog.content(
            rx.dialog.title("Request " + detail.correlation_id),
            rx.cond(
                detail.error_message != "",
                rx.callout(
                    detail.error_message,
                    icon="triangle_alert",
                    color_scheme="red",
                    margin_bottom="12px",
                ),
            ),
            rx.data_list.root(rx.foreach(detail.fields, _detail_field), size="1"),
            rx.hstack(
                rx.cond(
                    detail.conversation_id != "",
                    rx.link(
                        "Open the conversation",
                        href="/?conversation=" + detail.conversation_id,
                        id="detail-conversation-link",
                    ),
                ),
                rx.cond(
                    detail.trace_url != "",
                    rx.link(
                        "Trace in Langfuse",
                        href=detail.trace_url,
                        is_external=True,
                        id="detail-trace-link",
                    ),
                ),
                rx.dialog.close(rx.button("Close", variant="soft", id="detail-close")),
                justify="between",
                align="center",
                margin_top="16px",
            ),
            id="request-detail",
            max_width="560px",
        ),
        open=MonitorState.detail_open,
        on_open_change=MonitorState.set_detail_open,
    )
