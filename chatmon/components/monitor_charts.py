"""The monitor page's charts (Reflex's recharts components), fed by MonitorState."""

from __future__ import annotations

import reflex as rx

from chatmon.states.monitor import MonitorState

HEIGHT = 240
BLUE, RED, AMBER, GREEN, VIOLET, GRAY = (
    "#3b82f6",
    "#ef4444",
    "#f59e0b",
    "#10b981",
    "#8b5cf6",
    "#6b7280",
)


# Dots mark the points while there are few of them (a lone point has no line to show it).
_DOTS = rx.cond(MonitorState.series.length() <= 72, {"r": 2}, False)


# No animation: the page refreshes every few seconds, and a chart that re-grows from
# zero on each refresh is distracting (and half drawn when someone looks).
def _bar(**props: object) -> rx.Component:
    return rx.recharts.bar(is_animation_active=False, **props)


def _line(**props: object) -> rx.Component:
    return rx.recharts.line(is_animation_active=False, **props)


def _area(**props: object) -> rx.Component:
    return rx.recharts.area(is_animation_active=False, **props)


def _marker(marker: rx.Var, y_axis_id: str | None = None) -> rx.Component:
    """A change (version, model, system prompt, alert configuration) at its bucket.
    A chart whose y axes have ids draws it only against one of them."""
    axis = {} if y_axis_id is None else {"y_axis_id": y_axis_id}
    return rx.recharts.reference_line(
        **axis,
        x=marker["time"],
        stroke=VIOLET,
        stroke_dasharray="2 3",
        label=marker["kind"],
        if_overflow="extendDomain",
        class_name="change-marker",
    )


def _axes(*extra: rx.Component, marker_axis: str | None = None) -> list[rx.Component]:
    """Grid, time axis, tooltip and legend, and the window's change markers."""
    return [
        rx.recharts.cartesian_grid(stroke_dasharray="3 3", vertical=False),
        rx.recharts.x_axis(data_key="time", min_tick_gap=24, font_size=11),
        *extra,
        rx.recharts.graphing_tooltip(),
        rx.recharts.legend(),
        rx.foreach(MonitorState.markers, lambda m: _marker(m, marker_axis)),
    ]


def changes_list() -> rx.Component:
    """The change markers spelled out: what changed, when (UTC)."""
    return rx.cond(
        MonitorState.markers.length() > 0,
        rx.card(
            rx.text(
                "Changes in this window (dashed lines on the charts)", weight="medium", size="2"
            ),
            rx.foreach(
                MonitorState.markers,
                lambda m: rx.text(m["at"], " · ", m["label"], size="1", class_name="change-row"),
            ),
            id="chart-changes",
            width="100%",
        ),
    )


def chart_card(title: str, chart: rx.Component, chart_id: str) -> rx.Component:
    """A titled card holding one chart."""
    return rx.card(
        rx.text(title, weight="medium", size="2", margin_bottom="8px"),
        chart,
        id=chart_id,
        width="100%",
    )


def requests_chart() -> rx.Component:
    """Requests per time bucket, the failed ones stacked on top in red."""
    return chart_card(
        "Requests and errors",
        rx.recharts.bar_chart(
            _bar(data_key="ok_or_stopped", name="ok / stopped", fill=BLUE, stack_id="r"),
            _bar(data_key="errors", name="errors", fill=RED, stack_id="r"),
            *_axes(rx.recharts.y_axis(allow_decimals=False, font_size=11, width=60)),
            data=MonitorState.series,
            width="100%",
            height=HEIGHT,
        ),
        "chart-requests",
    )


def latency_chart() -> rx.Component:
    """p50 / p95 / p99 latency and p95 time to first token per bucket, in seconds."""
    return chart_card(
        "Latency percentiles (s)",
        rx.recharts.line_chart(
            _line(data_key="p50", name="p50", stroke=GREEN, dot=_DOTS, connect_nulls=True),
            _line(data_key="p95", name="p95", stroke=AMBER, dot=_DOTS, connect_nulls=True),
            _line(data_key="p99", name="p99", stroke=RED, dot=_DOTS, connect_nulls=True),
            _line(
                data_key="ttft_p95",
                name="TTFT p95",
                stroke=VIOLET,
                dot=_DOTS,
                connect_nulls=True,
                stroke_dasharray="4 2",
            ),
            *_axes(rx.recharts.y_axis(font_size=11)),
            data=MonitorState.series,
            width="100%",
            height=HEIGHT,
        ),
        "chart-latency",
    )


def cost_chart() -> rx.Component:
    """Cost per bucket (bars) and the running total (line, right axis), in USD."""
    return chart_card(
        "Cost (USD) and cumulative",
        rx.recharts.composed_chart(
            _bar(data_key="cost", name="cost", fill=AMBER, y_axis_id="left"),
            _line(
                data_key="cost_cumulative",
                name="cumulative",
                stroke=GRAY,
                dot=False,
                y_axis_id="right",
            ),
            *_axes(
                rx.recharts.y_axis(y_axis_id="left", font_size=11),
                rx.recharts.y_axis(y_axis_id="right", orientation="right", font_size=11),
                marker_axis="left",
            ),
            data=MonitorState.series,
            width="100%",
            height=HEIGHT,
        ),
        "chart-cost",
    )


def tokens_chart() -> rx.Component:
    """Input and output tokens per bucket, stacked."""
    return chart_card(
        "Tokens",
        rx.recharts.area_chart(
            _area(data_key="tokens_input", name="input", stack_id="t", stroke=BLUE, fill=BLUE),
            _area(data_key="tokens_output", name="output", stack_id="t", stroke=GREEN, fill=GREEN),
            *_axes(rx.recharts.y_axis(font_size=11, width=80)),
            data=MonitorState.series,
            width="100%",
            height=HEIGHT,
        ),
        "chart-tokens",
    )


def errors_by_category_chart() -> rx.Component:
    """Failed requests per error category over the window."""
    return chart_card(
        "Errors by category",
        rx.cond(
            MonitorState.errors_by_category.length() > 0,
            rx.recharts.bar_chart(
                _bar(data_key="count", name="errors", fill=RED),
                rx.recharts.x_axis(type_="number", allow_decimals=False, font_size=11),
                rx.recharts.y_axis(data_key="category", type_="category", width=130, font_size=11),
                rx.recharts.graphing_tooltip(),
                data=MonitorState.errors_by_category,
                layout="vertical",
                width="100%",
                height=HEIGHT,
            ),
            rx.center(
                rx.text("No errors in this window.", color=rx.color("gray", 10)),
                height=f"{HEIGHT}px",
            ),
        ),
        "chart-errors-by-category",
    )


def cost_by_model_chart() -> rx.Component:
    """Cost per model over the window (models without a price show $0 here)."""
    return chart_card(
        "Cost by model (USD)",
        rx.recharts.bar_chart(
            _bar(data_key="cost", name="cost", fill=AMBER),
            rx.recharts.x_axis(type_="number", font_size=11),
            rx.recharts.y_axis(data_key="model", type_="category", width=210, font_size=11),
            rx.recharts.graphing_tooltip(),
            data=MonitorState.cost_by_model,
            layout="vertical",
            width="100%",
            height=HEIGHT,
        ),
        "chart-cost-by-model",
    )


def charts() -> rx.Component:
    """Every chart, two per row on wide screens."""
    return rx.grid(
        requests_chart(),
        latency_chart(),
        cost_chart(),
        tokens_chart(),
        errors_by_category_chart(),
        cost_by_model_chart(),
        changes_list(),
        columns=rx.breakpoints(initial="1", md="2"),
        spacing="4",
        width="100%",
    )
