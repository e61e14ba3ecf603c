"""The list of past conversations, with new / rename / delete."""

from __future__ import annotations

import reflex as rx

from chatmon.presenters.chat_screen import ConversationView
from chatmon.states.chat import ChatState


def _rename_dialog(conversation: rx.Var[ConversationView]) -> rx.Component:
    return rx.dialog.root(
        rx.dialog.trigger(
            rx.icon_button(
                rx.icon("pencil", size=12),
                size="1",
                variant="ghost",
                aria_label="rename",
                id="rename-" + conversation.id,
            )
        ),
        rx.dialog.content(
            rx.dialog.title("Rename conversation"),
            rx.form(
                rx.input(type="hidden", name="conversation_id", value=conversation.id),
                rx.input(
                    name="title",
                    default_value=conversation.title,
                    id="rename-input",
                    max_length=200,
                    auto_focus=True,
                ),
                rx.hstack(
                    rx.dialog.close(rx.button("Cancel", variant="soft", type="button")),
                    rx.dialog.close(rx.button("Save", type="submit", id="rename-save")),
                    justify="end",
                    margin_top="12px",
                ),
                on_submit=ChatState.rename_conversation,
                reset_on_submit=False,
            ),
        ),
    )


def _conversation_row(conversation: rx.Var[ConversationView]) -> rx.Component:
    is_open = conversation.id == ChatState.conversation_id
    return rx.hstack(
        rx.text(
            conversation.title,
            size="2",
            trim="both",
            overflow="hidden",
            white_space="nowrap",
            text_overflow="ellipsis",
            flex="1",
            cursor="pointer",
            on_click=ChatState.select_conversation(conversation.id),
            class_name="conversation-title",
        ),
        _rename_dialog(conversation),
        rx.icon_button(
            rx.icon("trash-2", size=12),
            size="1",
            variant="ghost",
            color_scheme="red",
            aria_label="delete",
            id="delete-" + conversation.id,
            on_click=ChatState.delete_conversation(conversation.id),
        ),
        id="conversation-" + conversation.id,
        class_name="conversation-row",
        width="100%",
        padding="4px 8px",
        border_radius="6px",
        background=rx.cond(is_open, rx.color("accent", 4), "transparent"),
        align="center",
    )


def sidebar() -> rx.Component:
    """Past conversations, newest first."""
    return rx.vstack(
        rx.button(
            rx.icon("plus", size=14),
            "New chat",
            on_click=ChatState.new_conversation,
            id="new-chat",
            width="100%",
            variant="soft",
        ),
        rx.vstack(
            rx.foreach(ChatState.conversations, _conversation_row),
            id="conversation-list",
            width="100%",
            spacing="1",
            overflow_y="auto",
        ),
        width="240px",
        min_width="240px",
        height="100vh",
        padding="12px",
        border_right=f"1px solid {rx.color('gray', 5)}",
        display=["none", "none", "flex"],
    )
