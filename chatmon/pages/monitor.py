"""The monitor page (``/monitor``): is it up, is it fast, what does it cost, who is unhappy."""

from __future__ import annotations

import reflex as rx
from reflex_base.constants import Dirs
from reflex_base.utils.imports import ImportVar
from reflex_base.vars.base import Var, VarData

from chatmon.components.alerts_panel import alerts_panel
from chatmon.components.monitor_charts import charts
from chatmon.components.monitor_spend import budget_bars, top_spenders
from chatmon.components.monitor_table import request_detail, request_table
from chatmon.components.post_form import post_form, post_to_backend
from chatmon.components.versions_card import versions_card
from chatmon.presenters.window_input import WINDOW_CHOICES
from chatmon.states.auth import AuthState
from chatmon.states.monitor import REFRESH_SECONDS, MonitorState

# The backend's origin as the browser reaches it: the page itself in `make run`
# (one port), the backend port in `make dev` and in a static export.
BACKEND_ORIGIN = Var(
    _js_expr="getBackendURL(env.PING).origin",
    _var_data=VarData(
        imports={
            f"$/{Dirs.STATE_PATH}": [ImportVar(tag="getBackendURL")],
            "$/env.json": [ImportVar(tag="env", is_default=True)],
        }
    ),
).to(str)


def _window_button(window: str) -> rx.Component:
    return rx.button(
        window,
        on_click=MonitorState.set_window(window),
        variant=rx.cond(MonitorState.window == window, "solid", "soft"),
        size="1",
        id=f"window-{window}",
    )


def _custom_range() -> rx.Component:
    return rx.form(
        rx.hstack(
            rx.text("From", size="2"),
            rx.input(
                type="datetime-local",
                step="1",
                name="start",
                default_value=MonitorState.custom_start,
                id="custom-start",
                key=MonitorState.custom_start,
                size="1",
            ),
            rx.text("to", size="2"),
            rx.input(
                type="datetime-local",
                step="1",
                name="end",
                default_value=MonitorState.custom_end,
                id="custom-end",
                key=MonitorState.custom_end,
                size="1",
            ),
            rx.text("UTC", size="1", color=rx.color("gray", 10)),
            rx.button("Apply", type="submit", size="1", id="custom-apply"),
            align="center",
            spacing="2",
            wrap="wrap",
        ),
        on_submit=MonitorState.apply_custom_range,
        reset_on_submit=False,
    )


def _toolbar() -> rx.Component:
    return rx.hstack(
        rx.hstack(*[_window_button(w) for w in WINDOW_CHOICES], spacing="1", id="window-picker"),
        rx.cond(MonitorState.window == "custom", _custom_range()),
        rx.spacer(),
        rx.hstack(
            rx.switch(
                checked=MonitorState.auto_refresh,
                on_change=MonitorState.set_auto_refresh,
                id="auto-refresh",
                size="1",
            ),
            rx.text(f"Auto-refresh {REFRESH_SECONDS} s", size="2"),
            rx.cond(
                MonitorState.updated_at != "",
                rx.text(
                    "· updated ",
                    MonitorState.updated_at,
                    size="1",
                    color=rx.color("gray", 10),
                    id="updated-at",
                ),
            ),
            rx.icon_button(
                rx.icon("refresh-cw", size=14),
                on_click=MonitorState.refresh,
                size="1",
                variant="soft",
                loading=MonitorState.loading,
                id="refresh-button",
                aria_label="refresh",
            ),
            rx.button(
                rx.icon("download", size=14),
                "CSV",
                # Resolved in the browser at click time, so the backend's host is right
                # however the page was reached.
                on_click=rx.download(
                    url=BACKEND_ORIGIN + "/api/requests.csv?" + MonitorState.csv_query
                ),
                size="1",
                variant="soft",
                id="download-csv",
            ),
            align="center",
            spacing="2",
        ),
        align="center",
        width="100%",
        wrap="wrap",
        spacing="3",
    )


def _kpi(title: str, value: rx.Var, kpi_id: str, note: rx.Var | str = "") -> rx.Component:
    return rx.card(
        rx.text(title, size="1", color=rx.color("gray", 11)),
        rx.heading(value, size="5", id=kpi_id),
        rx.cond(note != "", rx.text(note, size="1", color=rx.color("amber", 11))),
        width="100%",
    )


def _kpis() -> rx.Component:
    k = MonitorState.kpis
    return rx.grid(
        _kpi("Requests", k.requests, "kpi-requests"),
        _kpi("Errors", k.errors, "kpi-errors"),
        _kpi("Error rate", k.error_rate, "kpi-error-rate"),
        _kpi("Latency p50", k.latency_p50, "kpi-latency-p50"),
        _kpi("Latency p95", k.latency_p95, "kpi-latency-p95"),
        _kpi("Latency p99", k.latency_p99, "kpi-latency-p99"),
        _kpi("Time to first token p95", k.ttft_p95, "kpi-ttft-p95"),
        _kpi("Input tokens", k.tokens_input, "kpi-tokens-input"),
        _kpi("Output tokens", k.tokens_output, "kpi-tokens-output"),
        _kpi("Cost", k.cost, "kpi-cost", k.unpriced),
        _kpi("Thumbs up / down", k.feedback_up + " / " + k.feedback_down, "kpi-feedback"),
        _kpi("Satisfaction", k.satisfaction, "kpi-satisfaction"),
        _kpi("Implicit signals", k.implicit_flagged, "kpi-implicit", k.implicit_detail),
        _kpi(
            "Replies streaming now",
            MonitorState.streams_in_progress.to(str),
            "kpi-streams-in-progress",
            MonitorState.capacity_note,
        ),
        _kpi(
            "Tabs connected now",
            MonitorState.websocket_connections.to(str),
            "kpi-websocket-connections",
        ),
        columns=rx.breakpoints(initial="2", sm="3", md="4", lg="6"),
        spacing="3",
        width="100%",
        id="kpis",
    )


def _empty_state() -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.icon("activity", size=32, color=rx.color("gray", 9)),
            rx.cond(
                MonitorState.has_any_request,
                rx.vstack(
                    rx.heading("No requests in this window", size="4"),
                    rx.text(
                        "Nothing was asked of the model in the selected period. Pick a longer "
                        "window above, or send a message from the chat and it shows up here "
                        "within a few seconds.",
                        color=rx.color("gray", 11),
                    ),
                    align="center",
                ),
                rx.vstack(
                    rx.heading("No requests recorded yet", size="4"),
                    rx.text(
                        "Every message sent from the chat is recorded here: latency, tokens, "
                        "cost, errors and the thumbs up or down it got. To see it work:",
                        color=rx.color("gray", 11),
                    ),
                    rx.el.ol(
                        rx.el.li(
                            "Open the chat and send a message (the demo model answers "
                            "without any key)."
                        ),
                        rx.el.li(
                            "Set LLM_MODEL, LLM_API_BASE and LLM_API_KEY to use your provider "
                            "(see .env.example), and LLM_PRICE_* if it is not in LiteLLM's "
                            "price list."
                        ),
                        rx.el.li(
                            "Come back here: this page refreshes itself every "
                            f"{REFRESH_SECONDS} seconds."
                        ),
                        style={"text_align": "left"},
                    ),
                    align="center",
                ),
            ),
            rx.link(rx.button("Open the chat", id="empty-open-chat"), href="/"),
            align="center",
            spacing="3",
            padding="24px",
        ),
        id="monitor-empty",
        width="100%",
    )


def _access() -> rx.Component:
    """Sign out; or, with MONITOR_AUTH=off, a badge that says anyone can see this page."""
    return rx.cond(
        AuthState.monitor_unprotected,
        rx.tooltip(
            rx.badge(
                rx.icon("shield-off", size=14),
                "Unprotected",
                color_scheme="red",
                size="2",
                id="unprotected-badge",
            ),
            content="MONITOR_AUTH=off: anyone who can reach chatmon sees this page and /api/*",
        ),
        post_form(
            rx.button(
                rx.icon("log-out", size=14),
                "Sign out",
                type="submit",
                size="1",
                variant="soft",
                color_scheme="gray",
                id="logout-button",
            ),
            **post_to_backend("/auth/logout"),
            id="logout-form",
        ),
    )


def _header() -> rx.Component:
    return rx.hstack(
        rx.hstack(
            rx.heading("chatmon", size="5"),
            rx.badge("Monitor", color_scheme="teal", size="2"),
            align="center",
            spacing="3",
        ),
        rx.hstack(
            rx.link("← Chat", href="/", id="back-to-chat", size="2"),
            # A server-rendered page behind the monitor login (chatmon/routes/feedback_page.py):
            # Reflex renders a same-site href as a React Router link; reloadDocument makes
            # it a full load, so the server answers instead of the client-side router.
            rx.el.a(
                "Review queue",
                href="/api/feedback/review",
                id="review-queue",
                custom_attrs={"reloadDocument": True},
                style={"font-size": "14px", "color": rx.color("accent", 11)},
            ),
            _access(),
            align="center",
            spacing="4",
        ),
        justify="between",
        align="center",
        width="100%",
        padding="12px 20px",
        border_bottom=f"1px solid {rx.color('gray', 5)}",
    )


def monitor_page() -> rx.Component:
    """Window picker, KPIs, charts and the request table (or what to do when empty)."""
    return rx.box(
        _header(),
        rx.vstack(
            _toolbar(),
            rx.cond(
                MonitorState.error != "",
                rx.callout(
                    MonitorState.error,
                    icon="triangle_alert",
                    color_scheme="red",
                    id="monitor-error",
                ),
            ),
            rx.cond(
                MonitorState.price_warning != "",
                rx.callout(
                    MonitorState.price_warning,
                    icon="circle_dollar_sign",
                    color_scheme="amber",
                    id="price-warning",
                ),
            ),
            rx.cond(
                MonitorState.is_empty,
                _empty_state(),
                rx.vstack(
                    budget_bars(),
                    _kpis(),
                    charts(),
                    top_spenders(),
                    request_table(),
                    spacing="4",
                    width="100%",
                ),
            ),
            versions_card(),
            alerts_panel(),
            spacing="4",
            padding="16px 20px 32px",
            width="100%",
            max_width="1400px",
            margin="0 auto",
        ),
        request_detail(),
        on_mount=MonitorState.mount,
        on_unmount=MonitorState.leave,
        id="monitor-page",
        width="100%",
    )
