"""The chat page (``/``)."""

from __future__ import annotations

import reflex as rx

from chatmon.components.composer import clear_after_send
from chatmon.components.live_reply import live_sync
from chatmon.components.message_bubble import MESSAGES_ID, message_bubble, streaming_bubble
from chatmon.components.sidebar import sidebar
from chatmon.services.demo import DEMO_HINT
from chatmon.states.chat import ChatState


def _model_badge() -> rx.Component:
    return rx.cond(
        ChatState.is_demo,
        rx.tooltip(
            rx.badge("Demo model", color_scheme="amber", id="model-name", size="2"),
            content=DEMO_HINT,
        ),
        rx.badge(ChatState.model_name, color_scheme="teal", id="model-name", size="2"),
    )


def _temperature_control() -> rx.Component:
    return rx.hstack(
        rx.text("Temperature", size="2"),
        rx.slider(
            default_value=[ChatState.temperature],
            min=0.0,
            max=2.0,
            step=0.05,
            on_value_commit=ChatState.set_temperature,
            width="120px",
            id="temperature-slider",
        ),
        rx.text(ChatState.temperature, size="2", id="temperature-value", min_width="3ch"),
        align="center",
        spacing="2",
    )


def _header() -> rx.Component:
    return rx.hstack(
        rx.hstack(
            rx.heading("chatmon", size="5"),
            _model_badge(),
            align="center",
            spacing="3",
        ),
        rx.hstack(
            _temperature_control(),
            rx.button(
                rx.icon("eraser", size=14),
                "Clear chat",
                on_click=ChatState.clear_chat,
                variant="soft",
                color_scheme="gray",
                id="clear-chat",
                disabled=ChatState.streaming,
            ),
            rx.button(
                rx.icon("download", size=14),
                "Export",
                on_click=ChatState.export_markdown,
                variant="soft",
                color_scheme="gray",
                id="export-chat",
                title="Download this conversation as Markdown",
                disabled=ChatState.conversation_id == "",
            ),
            rx.link(
                rx.button(
                    rx.icon("activity", size=14), "Monitor", variant="soft", color_scheme="gray"
                ),
                href="/monitor",
                id="monitor-link",
            ),
            align="center",
            spacing="4",
        ),
        justify="between",
        align="center",
        width="100%",
        padding="12px 20px",
        border_bottom=f"1px solid {rx.color('gray', 5)}",
        wrap="wrap",
    )


def _provider_banner() -> rx.Component:
    """Shown while the model's circuit breaker is open or half-open (updates without reload)."""
    return rx.cond(
        ChatState.provider_state != "closed",
        rx.callout(
            rx.cond(
                ChatState.provider_state == "open",
                "Provider degraded: the model provider keeps failing, so new messages are "
                "paused briefly while it recovers. Your conversation is safe.",
                "Provider degraded: checking whether the model provider has recovered.",
            ),
            icon="triangle_alert",
            color_scheme="amber",
            size="1",
            id="provider-banner",
            data_state=ChatState.provider_state,
            width="100%",
            border_radius="0",
        ),
    )


def _empty_state() -> rx.Component:
    return rx.center(
        rx.vstack(
            rx.icon("messages-square", size=36, color=rx.color("gray", 9)),
            rx.text("Ask anything to start a conversation.", color=rx.color("gray", 10)),
            rx.cond(ChatState.is_demo, rx.text(DEMO_HINT, size="1", color=rx.color("gray", 9))),
            align="center",
        ),
        height="100%",
        id="empty-chat",
    )


def _messages() -> rx.Component:
    return rx.auto_scroll(
        rx.cond(
            (ChatState.messages.length() == 0)
            & (ChatState.recent.length() == 0)
            & (ChatState.question.length() == 0)
            & ~ChatState.streaming,
            _empty_state(),
            rx.vstack(
                rx.cond(
                    ChatState.has_earlier,
                    rx.button(
                        rx.icon("chevrons-up", size=14),
                        "Load earlier messages",
                        on_click=ChatState.load_earlier,
                        variant="soft",
                        color_scheme="gray",
                        size="1",
                        id="load-earlier",
                        align_self="center",
                    ),
                ),
                # the loaded page, then this tab's new messages (see ChatState.recent):
                # a send resends only the last two lists, a finished reply only the last
                live_sync(),  # first: the lists below may need the frames it applies
                rx.foreach(ChatState.messages, message_bubble),
                rx.foreach(ChatState.recent, lambda m: message_bubble(m, per_frame=True)),
                rx.foreach(ChatState.question, message_bubble),
                rx.cond(ChatState.streaming, streaming_bubble()),
                rx.foreach(ChatState.answer, lambda m: message_bubble(m, per_frame=True)),
                spacing="4",
                width="100%",
                max_width="860px",
                margin="0 auto",
            ),
        ),
        id=MESSAGES_ID,
        flex="1",
        overflow_y="auto",
        padding="20px",
        width="100%",
    )


def _composer() -> rx.Component:
    return rx.form(
        rx.vstack(
            rx.hstack(
                rx.text_area(
                    name="message",
                    id="message",
                    placeholder="Type a message… (Enter to send, Shift+Enter for a new line)",
                    disabled=ChatState.streaming,
                    enter_key_submit=True,
                    auto_focus=True,
                    rows="2",
                    flex="1",
                    resize="vertical",
                    # composer.js counts against it and stops an over-long message
                    custom_attrs={"data-max-chars": ChatState.max_message_chars},
                ),
                rx.cond(
                    ChatState.streaming,
                    rx.button(
                        rx.icon("square", size=14),
                        "Stop",
                        type="button",
                        on_click=ChatState.stop,
                        color_scheme="red",
                        id="stop-button",
                    ),
                    rx.button(rx.icon("send", size=14), "Send", type="submit", id="send-button"),
                ),
                width="100%",
                align="end",
            ),
            rx.hstack(
                rx.box(
                    rx.cond(
                        ChatState.notice != "",
                        rx.text(ChatState.notice, color=rx.color("red", 11), size="2", id="notice"),
                    ),
                    # filled by composer.js, in the page: over-long text never leaves it
                    rx.text(
                        color=rx.color("red", 11),
                        size="2",
                        id="composer-too-long",
                        aria_live="polite",
                    ),
                ),
                rx.text(
                    size="1",
                    id="composer-counter",
                    color=rx.color("gray", 10),
                    white_space="nowrap",
                    style={"&[data-over='true']": {"color": rx.color("red", 11)}},
                ),
                justify="between",
                width="100%",
            ),
            rx.script(src="/composer.js"),
            clear_after_send("message"),  # once the send is accepted
            width="100%",
            max_width="860px",
            margin="0 auto",
        ),
        on_submit=ChatState.send_message,
        reset_on_submit=False,
        width="100%",
        padding="12px 20px 20px",
    )


def chat_page() -> rx.Component:
    """Sidebar, header, messages and composer."""
    return rx.hstack(
        sidebar(),
        rx.vstack(
            _header(),
            rx.box(_provider_banner(), width="100%", on_mount=ChatState.watch_provider),
            _messages(),
            _composer(),
            # a marker for tests and scripts: this tab's on_load has finished
            rx.cond(rx.State.is_hydrated, rx.el.span(id="chat-loaded", hidden=True)),
            height="100vh",
            width="100%",
            spacing="0",
        ),
        spacing="0",
        width="100%",
    )
