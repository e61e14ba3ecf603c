"""A chat bubble: avatar, Markdown body (never raw HTML), and the message's actions:
copy, edit and resend (the user's), regenerate and thumbs (replies), and ‹ n/m › between
alternatives."""

from __future__ import annotations

import reflex as rx

from chatmon.components.live_reply import live_text, page_message
from chatmon.presenters.chat_screen import MessageView
from chatmon.states.chat import ChatState

MESSAGES_ID = "messages"  # the chat page's scrolling list; the live reply keeps it at the bottom


def markdown_body(text: rx.Var[str] | str) -> rx.Component:
    """Markdown with raw HTML switched off, so a message can never run script."""
    return rx.markdown(text, use_raw=False, class_name="message-body")


def avatar(role: str) -> rx.Component:
    """A round icon for the user or the assistant."""
    icon = "user" if role == "user" else "bot"
    color = "indigo" if role == "user" else "teal"
    return rx.box(
        rx.icon(icon, size=18),
        class_name=f"avatar avatar-{role}",
        background=rx.color(color, 4),
        color=rx.color(color, 11),
        border_radius="50%",
        padding="6px",
        flex_shrink="0",
    )


def _thumb(message: rx.Var[MessageView], rating: int, icon: str) -> rx.Component:
    active = message.feedback == rating
    name = "up" if rating > 0 else "down"
    return rx.icon_button(
        rx.icon(icon, size=14),
        id=f"thumb-{name}-" + message.id.to(str),
        aria_label=f"thumbs {name}",
        size="1",
        variant=rx.cond(active, "solid", "ghost"),
        color_scheme=rx.cond(active, "green" if rating > 0 else "red", "gray"),
        on_click=ChatState.rate(message.id, rating),
        data_active=rx.cond(active, "true", "false"),
    )


def _action(icon: str, label: str, element_id: rx.Var[str], on_click: object) -> rx.Component:
    return rx.tooltip(
        rx.icon_button(
            rx.icon(icon, size=14),
            id=element_id,
            aria_label=label,
            size="1",
            variant="ghost",
            color_scheme="gray",
            on_click=on_click,
            disabled=ChatState.streaming,
        ),
        content=label,
    )


def _copy(message: rx.Var[MessageView]) -> rx.Component:
    return _action("copy", "Copy", "copy-" + message.id.to(str), rx.set_clipboard(message.content))


def _alternatives(message: rx.Var[MessageView]) -> rx.Component:
    """‹ 2/3 ›: flip between a reply's regenerations, or a question's edits."""
    key = message.id.to(str)
    return rx.cond(
        message.alt_count > 1,
        rx.hstack(
            rx.icon_button(
                rx.icon("chevron-left", size=14),
                id="alt-prev-" + key,
                aria_label="previous version",
                size="1",
                variant="ghost",
                color_scheme="gray",
                on_click=ChatState.show_alternative(message.id, -1),
                disabled=ChatState.streaming | (message.alt_index <= 1),
            ),
            rx.text(
                message.alt_index.to(str) + "/" + message.alt_count.to(str),
                id="alt-pos-" + key,
                size="1",
                color=rx.color("gray", 10),
            ),
            rx.icon_button(
                rx.icon("chevron-right", size=14),
                id="alt-next-" + key,
                aria_label="next version",
                size="1",
                variant="ghost",
                color_scheme="gray",
                on_click=ChatState.show_alternative(message.id, 1),
                disabled=ChatState.streaming | (message.alt_index >= message.alt_count),
            ),
            spacing="1",
            align="center",
            class_name="alternatives",
        ),
    )


def _user_actions(message: rx.Var[MessageView]) -> rx.Component:
    return rx.hstack(
        _alternatives(message),
        _copy(message),
        _action("pencil", "Edit", "edit-" + message.id.to(str), ChatState.start_edit(message.id)),
        spacing="2",
        align="center",
        justify="end",
        class_name="message-actions",
    )


def _edit_form(message: rx.Var[MessageView]) -> rx.Component:
    """The user's message, editable; sending it branches the conversation there."""
    return rx.form(
        rx.el.textarea(
            name="text",
            id="edit-text",
            default_value=message.content,
            max_length=ChatState.max_message_chars,
            rows=3,
            width="100%",
            auto_focus=True,
            padding="6px 8px",
            border_radius="8px",
            border=f"1px solid {rx.color('gray', 7)}",
        ),
        rx.hstack(
            rx.button("Save & send", type="submit", size="1", id="edit-send"),
            rx.button(
                "Cancel",
                type="button",
                size="1",
                variant="ghost",
                on_click=ChatState.cancel_edit,
                id="edit-cancel",
            ),
            spacing="2",
            justify="end",
        ),
        on_submit=ChatState.submit_edit,
        reset_on_submit=False,
        id="edit-form",
        width="100%",
        min_width="320px",
    )


def _feedback_row(message: rx.Var[MessageView]) -> rx.Component:
    return rx.hstack(
        _thumb(message, 1, "thumbs-up"),
        _thumb(message, -1, "thumbs-down"),
        _copy(message),
        _action(
            "refresh-cw",
            "Regenerate",
            "regenerate-" + message.id.to(str),
            ChatState.regenerate(message.id),
        ),
        _alternatives(message),
        rx.cond(
            message.error_category != "",
            rx.text(
                "error: " + message.error_category + " · ref " + message.correlation_id,
                size="1",
                color=rx.color("gray", 10),
                class_name="error-ref",
            ),
        ),
        spacing="2",
        align="center",
    )


def _reason_box(index: rx.Var[int], reason: rx.Var[str]) -> rx.Component:
    return rx.el.label(
        rx.el.input(type="checkbox", name="reason-" + index.to(str), value=reason),
        " " + reason,
        class_name="feedback-reason",
        margin_right="10px",
    )


def _feedback_form(message: rx.Var[MessageView]) -> rx.Component:
    """The optional form a rating opens: reasons (thumbs-down only) and a comment."""
    return rx.form(
        rx.cond(
            message.feedback == -1,
            rx.box(
                rx.text("What was wrong? (optional)", size="1"),
                rx.foreach(ChatState.reason_choices, lambda r, i: _reason_box(i, r)),
            ),
        ),
        rx.el.textarea(
            name="comment",
            id="feedback-comment",
            placeholder="Comment (optional)",
            max_length=ChatState.max_comment_chars,
            rows=2,
            width="100%",
        ),
        rx.hstack(
            rx.button("Send feedback", type="submit", size="1", id="feedback-send"),
            rx.button(
                "Close",
                type="button",
                size="1",
                variant="ghost",
                on_click=ChatState.close_feedback_form,
            ),
            spacing="2",
        ),
        on_submit=ChatState.submit_feedback,
        reset_on_submit=True,
        id="feedback-form",
        margin_top="6px",
    )


def _feedback_given(message: rx.Var[MessageView]) -> rx.Component:
    """What the user said with the rating, once sent."""
    return rx.cond(
        (message.feedback_reasons != "") | (message.feedback_comment != ""),
        rx.text(
            rx.cond(message.feedback_reasons != "", message.feedback_reasons + " · ", ""),
            message.feedback_comment,
            size="1",
            color=rx.color("gray", 10),
            class_name="feedback-given",
        ),
    )


def message_bubble(message: rx.Var[MessageView], *, per_frame: bool = False) -> rx.Component:
    """A saved message, as the state's list holds it (``per_frame``: see
    :func:`~chatmon.components.live_reply.page_message`)."""
    message = page_message(message, MessageView, per_frame=per_frame)
    is_user = message.role == "user"
    is_error = message.error_category != ""
    editing = is_user & (ChatState.editing_id == message.id)
    bubble = rx.box(
        rx.cond(editing, _edit_form(message), markdown_body(message.content)),
        rx.cond(
            is_user, rx.cond(editing, rx.fragment(), _user_actions(message)), _feedback_row(message)
        ),
        rx.cond(is_user, rx.fragment(), _feedback_given(message)),
        rx.cond(
            ChatState.feedback_form_for == message.id,
            _feedback_form(message),
            rx.fragment(),
        ),
        class_name=rx.cond(
            is_user,
            "bubble bubble-user",
            rx.cond(is_error, "bubble bubble-error", "bubble bubble-assistant"),
        ),
        background=rx.cond(
            is_user,
            rx.color("indigo", 3),
            rx.cond(is_error, rx.color("red", 3), rx.color("gray", 3)),
        ),
        border_radius="12px",
        padding="8px 14px",
        max_width="80%",
    )
    return rx.hstack(
        rx.cond(is_user, rx.fragment(), avatar("assistant")),
        bubble,
        rx.cond(is_user, avatar("user"), rx.fragment()),
        id="message-" + message.id.to(str),
        justify=rx.cond(is_user, "end", "start"),
        width="100%",
        align="start",
        spacing="2",
    )


@rx.memo
def streaming_bubble() -> rx.Component:
    """The reply while it streams, with a typing indicator until the first token.

    A React component of its own (``rx.memo``): only it re-renders per live frame,
    not the message list around it. The text comes from the live frames
    (:mod:`chatmon.components.live_reply`), read once here; the indicator hides itself
    by CSS (``assets/chat.css``) once the Markdown body has content.
    """
    return rx.hstack(
        avatar("assistant"),
        rx.box(
            markdown_body(live_text(MESSAGES_ID)),
            rx.hstack(rx.spinner(size="1"), rx.text("Thinking…", size="2"), id="typing-indicator"),
            id="streaming-reply",
            class_name="bubble bubble-assistant bubble-streaming",
            background=rx.color("gray", 3),
            border_radius="12px",
            padding="8px 14px",
            max_width="80%",
        ),
        width="100%",
        align="start",
        spacing="2",
    )
