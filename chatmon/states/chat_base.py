"""The chat state's vars and the helpers every group of its handlers shares.

:class:`ChatBase` is a Reflex state mixin: :class:`chatmon.states.chat.ChatState` and
its handler mixins (``chat_reply``, ``chat_watch``, ``chat_actions``, ``chat_feedback``)
inherit it, and Reflex binds its vars to ``ChatState`` (the page's ``chat.<var>``),
backend-only ones (``_reply_*``) staying backend-only. What is on screen is worked
out by :mod:`chatmon.presenters.chat_screen`; the wrappers here set only the vars it
changes (Reflex resends every var set, even to the value it had).
"""

from __future__ import annotations

from typing import Any

import reflex as rx

from chatmon import db, deps
from chatmon.presenters import chat_screen
from chatmon.presenters.chat_screen import (
    MESSAGE_PAGE,
    ConversationView,
    MessageView,
    conversation_view,
    message_view,
)
from chatmon.services import branches, chat_messages
from chatmon.services import conversations as convo
from chatmon.services.feedback import MAX_COMMENT_CHARS, REASONS
from chatmon.services.history import ModelMessage
from chatmon.settings import get_settings
from chatmon.states.auth import AuthState
from chatmon.states.browser import owner_of
from chatmon.states.message_wire import compact_wire

# A message goes to the page without its default fields, nor a text the page already
# holds from the live frames (chatmon.states.message_wire); the state keeps it whole.
compact_wire(MessageView)

NO_IDENTITY_NOTICE = (
    "This browser did not keep chatmon's cookie, so your conversations cannot be saved. "
    "Allow cookies for this site and reload."
)
SAVE_FAILED_NOTICE = "Your last reply could not be saved; it is shown here but may be lost."


def current_provider_state() -> str:
    """The configured model's circuit breaker in this process: closed | half_open | open.

    With LLM_FALLBACK_MODELS, the best state of them all: a closed fallback answers.
    """
    clients = [deps.llm_client(), *deps.fallback_model_clients()]
    states = {client.breaker.state.value if client.breaker else "closed" for client in clients}
    return next((s for s in ("closed", "half_open") if s in states), "open")


class ChatBase(rx.State, mixin=True):
    """Conversations, the messages of the open one, and the reply in flight."""

    # Before server-issued identities the browser kept its id here. It is read once, to
    # move that browser's conversations to its new identity, and then cleared.
    legacy_client_id: str = rx.LocalStorage("", name="chatmon_client_id")
    conversation_id: str = rx.LocalStorage("", name="chatmon_conversation_id")
    conversations: list[ConversationView] = []
    # On screen, in this order: the loaded page (load, "Load earlier", a branch), then
    # what this tab added since: earlier turns, the last question, its answer
    # (chatmon.presenters.chat_screen).
    messages: list[MessageView] = []
    recent: list[MessageView] = []
    question: list[MessageView] = []  # 0 or 1
    answer: list[MessageView] = []  # 0 or 1
    has_earlier: bool = False  # older messages than the first shown exist ("Load earlier")
    streaming: bool = False
    notice: str = ""
    temperature: float = get_settings().llm_temperature
    model_name: str = get_settings().llm_model
    is_demo: bool = get_settings().is_demo
    max_message_chars: int = get_settings().max_message_chars  # the composer's limit
    rename_title: str = ""
    provider_state: str = "closed"  # the model's circuit breaker, for the degraded banner
    # The reply whose reason/comment form is open (0: none); set only by ``rate``.
    feedback_form_for: int = 0
    reason_choices: list[str] = list(REASONS)  # the form's choices, fixed
    max_comment_chars: int = MAX_COMMENT_CHARS
    # The user message whose edit box is open (0: none); set only by ``start_edit``.
    editing_id: int = 0
    # Server-only (never sent to the page, never settable by it): the accepted message
    # that ``stream_reply`` may answer, once; and the checkpoint row of the reply.
    _reply_ticket: str = ""
    _reply_accepted_at: float = 0.0  # wall-clock seconds, when the ticket was issued
    _reply_message_id: int = 0
    _reply_parent_id: int = branches.LEAF  # the message the accepted reply answers

    # ----- who is asking -------------------------------------------------------------
    def _owner(self) -> str | None:
        """The owner key of the browser behind this tab (None: no valid identity)."""
        return owner_of(self)

    async def _allowed_owner(self) -> str | None:
        """The owner key, when this browser may also chat (``CHAT_PASSWORD``); else None.

        Every handler that reads or changes conversations asks this itself: any of them
        can be called without the page (and its login redirect) ever loading.
        """
        if not (await self.get_state(AuthState)).may_chat():
            return None
        return self._owner()

    # ----- what is on screen: messages, recent, question, answer ---------------------
    def _screen(self, *, stored: bool = False) -> chat_screen.Screen:
        """The lists on screen, as Reflex hands them out (change-tracking proxies), or
        ``stored``: the lists it keeps, whose items a copy then holds as they are."""
        lists = {name: getattr(self, name) for name in chat_screen.LISTS}
        if stored:
            lists = {name: getattr(value, "__wrapped__", value) for name, value in lists.items()}
        return chat_screen.Screen(**lists, has_earlier=self.has_earlier)

    def _apply(self, changes: chat_screen.Changes) -> None:
        """Set exactly the vars ``changes`` names (each one set goes to the page)."""
        for name, value in changes.items():
            setattr(self, name, value)

    def _send_whole_texts(self) -> None:
        """Send again, text included, the replies this tab was sent by reference to the
        live frames (``chat_screen.with_whole_texts``): its page asked for a text it does
        not hold. Only what the tab's own state already shows; nothing when none is left."""
        self._apply(chat_screen.with_whole_texts(self._screen(stored=True)))

    def _shown(self) -> list[MessageView]:
        """Every message on screen, oldest first."""
        return self._screen().shown()

    def _show(self, messages: list[MessageView], *, has_earlier: bool | None = None) -> None:
        """Replace what is on screen (a load, a branch): all of it in ``messages``."""
        self._apply(chat_screen.show(self._screen(), messages, has_earlier=has_earlier))

    def _ask(self, message: MessageView) -> None:
        """Show the question this tab just sent (``chat_screen.ask``)."""
        self._apply(chat_screen.ask(self._screen(), message))

    def _answered(self, message: MessageView) -> None:
        """Show a finished reply (in ``answer``: the only var that changes)."""
        self._apply(chat_screen.answered(self._screen(), message))

    def _replace_shown(self, message_id: int, **changes: Any) -> MessageView | None:
        """Change fields of message ``message_id`` where it is shown (only that list
        goes to the page); None when it is not on screen."""
        # A copy of the stored list with the one message replaced: the var holds what
        # changing it in place would have left (no proxies of the other items).
        lists, changed = chat_screen.replace_shown(self._screen(stored=True), message_id, **changes)
        self._apply(lists)
        return changed

    def _index_of(self, message_id: int, role: str) -> int | None:
        """Where message ``message_id`` with that role is on screen (None: it is not)."""
        return chat_screen.index_of(self._shown(), message_id, role)

    def _model_messages(self) -> list[ModelMessage]:
        """The conversation as the model sees it: the finished, successful messages shown
        (the visible branch: alternatives are never on screen)."""
        return chat_screen.model_messages(self._shown())

    def _set_if_changed(self, **values: Any) -> None:
        """Set vars only when their value changes: Reflex sends every var set, even to
        the value it had."""
        for name, value in values.items():
            if getattr(self, name) != value:
                setattr(self, name, value)

    def _end_streaming(self) -> None:
        self.streaming = False
        self._reply_ticket = ""
        self._reply_message_id = 0

    # ----- loading ------------------------------------------------------------------
    async def _refresh_conversations(self, owner: str) -> None:
        rows = await db.run(convo.list_conversations, owner_id=owner)
        self.conversations = [conversation_view(row) for row in rows]

    async def _load_messages(self, owner: str, conversation_id: str) -> bool:
        """Show the conversation's newest ``MESSAGE_PAGE`` messages; False if not this owner's."""
        page = await self._message_page(owner, conversation_id, before_id=None)
        if page is None:
            return False
        messages, has_earlier = page
        self._show(messages, has_earlier=has_earlier)
        self._set_if_changed(editing_id=0)
        return True

    async def _message_page(
        self, owner: str, conversation_id: str, *, before_id: int | None
    ) -> tuple[list[MessageView], bool] | None:
        """Up to ``MESSAGE_PAGE`` messages before ``before_id`` and whether more exist."""
        try:
            rows, places = await db.run(
                chat_messages.list_visible,
                owner_id=owner,
                conversation_id=conversation_id,
                limit=MESSAGE_PAGE + 1,
                before_id=before_id,
            )
        except convo.ConversationNotFound:
            return None
        views = [message_view(row, places.get(row.id or 0)) for row in rows]
        return views[-MESSAGE_PAGE:], len(views) > MESSAGE_PAGE

    async def _reload_open_conversation(self, owner: str) -> None:
        if self.conversation_id:
            await self._load_messages(owner, self.conversation_id)
        await self._refresh_conversations(owner)
