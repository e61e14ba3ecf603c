"""ChatState: the chat page's controller. Coordinates services; holds no I/O of its own.

Database calls run in a worker thread (``db.run``) so a slow disk never stalls other
users' streams. The reply itself streams in a background event, which changes state
only inside ``async with self``.

Every handler can be called by any client, in any order, with any arguments: each one
checks who is asking (the server-issued identity cookie, :mod:`chatmon.states.browser`)
and the shape of what it was sent (:mod:`chatmon.states.args`) on its own.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import reflex as rx

from chatmon import db, deps
from chatmon.models import ChatMessage, Conversation, utc_now
from chatmon.services import conversations as convo
from chatmon.services import events, implicit_signals
from chatmon.services.call_status import CallStatus
from chatmon.services.errors import user_message
from chatmon.services.events import Feedback, LLMCall
from chatmon.services.feedback import MAX_COMMENT_CHARS, REASONS
from chatmon.services.history import Position, Turn, check_user_message
from chatmon.services.identity import IDENTITY_PATH, legacy_owner_key
from chatmon.services.turn import ReplyStream, TurnRequest, TurnResult
from chatmon.settings import get_settings
from chatmon.states import args
from chatmon.states.auth import AuthState
from chatmon.states.browser import client_ip_of, owner_of
from chatmon.states.live import LivePublisher
from chatmon.states.message_wire import compact_wire
from chatmon.states.tabs import tab_connected

# A conversation opens with its newest messages; "Load earlier" adds a page at a time,
# and a tab that keeps chatting drops its oldest beyond MAX_ON_SCREEN (they stay one
# "Load earlier" away). Never fewer than the history the model is sent.
MESSAGE_PAGE = max(50, get_settings().max_history_messages)
MAX_ON_SCREEN = 4 * MESSAGE_PAGE
# Reflex resends a whole var on every change, so the messages a tab adds do not go to
# the loaded page ``messages``: a send sets ``question`` (the new message alone; the
# turn before it moves to ``recent``), a finished reply sets ``answer`` (the reply
# alone). Past RECENT_MAX messages in ``recent``, everything folds into ``messages``
# (one resend of the page every RECENT_MAX / 2 turns), so ``recent`` stays small.
RECENT_MAX = 8

log = logging.getLogger(__name__)

# The asyncio task streaming each browser tab's reply, so Stop can cancel it at
# once, even while the provider has not sent a single token yet.
_inflight: dict[str, asyncio.Task] = {}

# How often an open tab looks at the circuit breaker, and the newest watch loop per
# tab (a reload starts a new one; the old one sees it and ends).
PROVIDER_POLL_SECONDS = 2.0
_provider_watchers: dict[str, str] = {}

# A streaming reply is saved every CHECKPOINT_SECONDS (the text so far, and a sign of
# life); one not saved for STALE_REPLY_SECONDS has lost its writer (a worker that died)
# and is marked interrupted by the next page load of its browser.
CHECKPOINT_SECONDS = 2.0
STALE_REPLY_SECONDS = 10.0
NO_IDENTITY_NOTICE = (
    "This browser did not keep chatmon's cookie, so your conversations cannot be saved. "
    "Allow cookies for this site and reload."
)
SAVE_FAILED_NOTICE = "Your last reply could not be saved; it is shown here but may be lost."


def _provider_state() -> str:
    """The configured model's circuit breaker in this process: closed | half_open | open.

    With LLM_FALLBACK_MODELS, the best state of them all: a closed fallback answers.
    """
    clients = [deps.llm_client(), *deps.fallback_model_clients()]
    states = {client.breaker.state.value if client.breaker else "closed" for client in clients}
    return next((s for s in ("closed", "half_open") if s in states), "open")


@compact_wire  # to the page without default fields, nor a text it already holds
@dataclasses.dataclass
class MessageView:
    """One chat bubble."""

    id: int
    role: str
    content: str
    feedback: int = 0
    feedback_reasons: str = ""  # "wrong,unsafe" (feedback.REASONS order); "" none
    feedback_comment: str = ""
    error_category: str = ""
    correlation_id: str = ""
    status: str = ""  # "" complete, "interrupted" cut short by a server restart
    # its place among its alternatives (regenerated replies, edited questions): 1 of 1
    alt_index: int = 1
    alt_count: int = 1
    # The page holds the first live_chars of content from live frame live_seq (-1: no).
    live_seq: int = -1
    live_chars: int = 0


@dataclasses.dataclass
class ConversationView:
    """One entry of the sidebar."""

    id: str
    title: str


def _message_view(message: ChatMessage, position: Position | None = None) -> MessageView:
    place = position or Position(1, 1)
    return MessageView(
        id=message.id or 0,
        role=message.role,
        content=message.content,
        feedback=message.feedback or 0,
        feedback_reasons=message.feedback_reasons or "",
        feedback_comment=message.feedback_comment or "",
        error_category=message.error_category or "",
        correlation_id=message.correlation_id or "",
        status=message.status or "",
        alt_index=place.index,
        alt_count=place.count,
    )


def _conversation_view(conversation: Conversation) -> ConversationView:
    return ConversationView(id=conversation.id, title=conversation.title)


class ChatState(rx.State):
    """Conversations, the messages of the open one, and the reply in flight."""

    @classmethod
    def get_name(cls) -> str:
        """``chat``, not Reflex's module-derived ``chatmon___states___chat____chat_state``.

        The state's full name heads every update of this state (a send, a finished
        reply): ~35 bytes each saved. Unique in this app (as ``LiveState``'s ``live``).
        """
        return "chat"

    # Reflex refuses a state member that shadows one of its methods unless it is marked
    # as a deliberate override (the mark Reflex's own ``_override_base_method`` sets).
    get_name.__func__.__override_base_method__ = True  # type: ignore[attr-defined]  # a function attribute Reflex reads

    # Before server-issued identities the browser kept its id here. It is read once, to
    # move that browser's conversations to its new identity, and then cleared.
    legacy_client_id: str = rx.LocalStorage("", name="chatmon_client_id")
    conversation_id: str = rx.LocalStorage("", name="chatmon_conversation_id")
    conversations: list[ConversationView] = []
    # On screen, in this order: the loaded page (load, "Load earlier", a branch), then
    # what this tab added since: earlier turns, the last question, its answer (RECENT_MAX).
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
    _reply_parent_id: int = convo.LEAF  # the message the accepted reply answers

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

    # ----- loading ------------------------------------------------------------------
    @rx.event
    async def load(self):
        """Page load: identify this browser, then show its conversations."""
        if not (await self.get_state(AuthState)).may_chat():  # CHAT_PASSWORD is set
            return rx.redirect("/login?next=/")
        owner = self._owner()
        if owner is None:  # a page not served by this backend (static export): ask once
            self.notice = NO_IDENTITY_NOTICE
            return rx.call_script(_ask_for_identity_script(self.router.headers.host))
        await self._adopt_legacy_id(owner)
        await self._recover_interrupted(owner)
        await self._refresh_conversations(owner)
        linked = args.record_id(self.router.url.query_parameters.get("conversation", ""))
        if linked:  # "Open the conversation" on the monitor's request detail
            self.conversation_id = linked
        if self.conversation_id and not await self._load_messages(owner, self.conversation_id):
            if linked:
                self.notice = "That conversation was started in another browser, or deleted."
            self.conversation_id = ""
            self._show([], has_earlier=False)
        self.provider_state = _provider_state()
        if self.streaming:  # a reply of this tab still runs elsewhere: watch it end
            await self._hide_what_the_reply_replaces()
            return ChatState.watch_reply

    async def _adopt_legacy_id(self, owner: str) -> None:
        """Move the conversations of a pre-upgrade browser id to this identity, once."""
        legacy, self.legacy_client_id = self.legacy_client_id, ""
        legacy_owner = legacy_owner_key(legacy)
        if legacy_owner is None:
            return
        moved = await db.run(
            convo.adopt_legacy_conversations, legacy_owner=legacy_owner, owner_id=owner
        )
        if moved:
            log.info("moved %d conversations of a pre-upgrade browser id to its identity", moved)

    async def _recover_interrupted(self, owner: str) -> None:
        """Finish what a dead worker left: mark its replies interrupted, free the composer.

        A reply of this browser not checkpointed for ``STALE_REPLY_SECONDS`` lost its
        writer; it is kept as saved (with a note), and its request is recorded as
        ``interrupted``. This tab's busy flag is cleared when its own reply is gone.
        """
        stale_before = utc_now() - timedelta(seconds=STALE_REPLY_SECONDS)
        claimed = await db.run(
            convo.interrupt_stale_replies, owner_id=owner, stale_before=stale_before
        )
        for message in claimed:
            _publish_interrupted(message, owner=owner)
        if self.streaming and not await self._reply_alive():
            self._end_streaming()

    async def _reply_alive(self) -> bool:
        """Whether this tab's streaming reply still has a writer (here or on another worker)."""
        if self.router.session.client_token in _inflight:
            return True
        message_id = self._reply_message_id
        if not message_id:  # accepted, its stream not started: a worker died in between?
            return time.time() - self._reply_accepted_at < STALE_REPLY_SECONDS
        row = await db.run(_get_message, message_id=message_id)
        return row is not None and row.status == convo.STREAMING  # stale ones were just flipped

    async def _hide_what_the_reply_replaces(self) -> None:
        """A tab reloaded while its regenerated reply (or the reply to an edit) streams:
        show the conversation up to the message it answers, as before the reload, not
        the alternative it is replacing."""
        if not self._reply_message_id:
            return
        row = await db.run(_get_message, message_id=self._reply_message_id)
        shown = self._shown()
        at = next((i for i, m in enumerate(shown) if row and m.id == row.parent_id), None)
        if at is not None:
            self._show(shown[: at + 1])

    def _end_streaming(self) -> None:
        self.streaming = False
        self._reply_ticket = ""
        self._reply_message_id = 0

    @rx.event(background=True)
    async def watch_reply(self):
        """While this tab's reply streams in another worker, look until it ends or dies.

        Any client may call it: it only ever frees this tab's own composer, and only
        once the reply has finished or its writer is gone.
        """
        for _ in range(int(10 * STALE_REPLY_SECONDS / CHECKPOINT_SECONDS)):
            await asyncio.sleep(CHECKPOINT_SECONDS)
            async with self:
                owner = self._owner()
                if owner is None or not self.streaming:
                    return
                await self._recover_interrupted(owner)
                if not self.streaming:
                    await self._reload_open_conversation(owner)
                    return

    @rx.event(background=True)
    async def watch_provider(self):
        """Keep ``provider_state`` current while this tab is open, for the degraded banner.

        The breaker lives in this process, so looking costs nothing; the state lock is
        taken only when the state changes. Started by the banner's ``on_mount`` (each
        render of the page); ends when the tab has been gone for two looks in a row or
        a newer render of the same tab has started its own loop.
        """
        async with self:
            token = self.router.session.client_token
            shown = self.provider_state
        watch_id = uuid.uuid4().hex
        _provider_watchers[token] = watch_id
        misses = 0
        try:
            while _provider_watchers.get(token) == watch_id and misses < 2:
                misses = 0 if tab_connected(token) else misses + 1
                current = _provider_state()
                if current != shown:
                    async with self:
                        self.provider_state = shown = current
                await asyncio.sleep(PROVIDER_POLL_SECONDS)
        finally:
            if _provider_watchers.get(token) == watch_id:
                del _provider_watchers[token]

    async def _refresh_conversations(self, owner: str) -> None:
        rows = await db.run(convo.list_conversations, owner_id=owner)
        self.conversations = [_conversation_view(row) for row in rows]

    async def _load_messages(self, owner: str, conversation_id: str) -> bool:
        """Show the conversation's newest ``MESSAGE_PAGE`` messages; False if not this owner's."""
        page = await self._message_page(owner, conversation_id, before_id=None)
        if page is None:
            return False
        messages, has_earlier = page
        self._show(messages, has_earlier=has_earlier)
        self._set_if_changed(editing_id=0)
        return True

    # ----- what is on screen: messages, recent, question, answer ---------------------
    def _shown(self) -> list[MessageView]:
        """Every message on screen, oldest first."""
        return [*self.messages, *self.recent, *self.question, *self.answer]

    def _show(self, messages: list[MessageView], *, has_earlier: bool | None = None) -> None:
        """Replace what is on screen (a load, a branch): all of it in ``messages``."""
        self.messages = messages
        for name in ("recent", "question", "answer"):
            self._set_if_changed(**{name: []})
        if has_earlier is not None:
            self._set_if_changed(has_earlier=has_earlier)

    def _ask(self, message: MessageView) -> None:
        """Show the question this tab just sent (in ``question``).

        The last turn's question and answer move to ``recent`` first (a resend of
        ``recent`` only); past ``RECENT_MAX`` everything moves to ``messages``.
        """
        done = [*self.question, *self.answer]
        if self._fold_if_full():
            pass
        elif done and len(self.recent) + len(done) <= RECENT_MAX:
            self.recent = [*self.recent, *done]
            self.question, self.answer = [], []
        elif done:
            self._show(self._shown())
        self.question = [message]

    def _answered(self, message: MessageView) -> None:
        """Show a finished reply (in ``answer``: the only var that changes)."""
        if not self._fold_if_full() and self.answer:  # not expected: a reply follows a question
            self._show(self._shown())
        self.answer = [message]

    def _fold_if_full(self) -> bool:
        """A tab at ``MAX_ON_SCREEN`` keeps its newest ``MESSAGE_PAGE`` (the rest stays one
        "Load earlier" away), all in ``messages``; True when it did."""
        shown = self._shown()
        if len(shown) < MAX_ON_SCREEN:
            return False
        self._show(shown[-MESSAGE_PAGE + 1 :], has_earlier=True)
        return True

    def _replace_shown(self, message_id: int, **changes: Any) -> MessageView | None:
        """Change fields of message ``message_id`` where it is shown (only that list
        goes to the page); None when it is not on screen."""
        for name in ("answer", "question", "recent", "messages"):
            views: list[MessageView] = getattr(self, name)
            index = next((i for i, m in enumerate(views) if m.id == message_id), None)
            if index is not None:
                views[index] = dataclasses.replace(views[index], **changes)
                return views[index]
        return None

    def _set_if_changed(self, **values: Any) -> None:
        """Set vars only when their value changes: Reflex sends every var set, even to
        the value it had."""
        for name, value in values.items():
            if getattr(self, name) != value:
                setattr(self, name, value)

    async def _message_page(
        self, owner: str, conversation_id: str, *, before_id: int | None
    ) -> tuple[list[MessageView], bool] | None:
        """Up to ``MESSAGE_PAGE`` messages before ``before_id`` and whether more exist."""
        try:
            rows, places = await db.run(
                convo.list_visible,
                owner_id=owner,
                conversation_id=conversation_id,
                limit=MESSAGE_PAGE + 1,
                before_id=before_id,
            )
        except convo.ConversationNotFound:
            return None
        views = [_message_view(row, places.get(row.id or 0)) for row in rows]
        return views[-MESSAGE_PAGE:], len(views) > MESSAGE_PAGE

    @rx.event
    async def load_earlier(self) -> None:
        """The "Load earlier" control: the page of messages before the first one shown."""
        owner, conversation_id = await self._allowed_owner(), args.record_id(self.conversation_id)
        shown = self._shown()
        if owner is None or conversation_id is None or not shown or not self.has_earlier:
            return
        page = await self._message_page(owner, conversation_id, before_id=shown[0].id)
        if page is None:
            return
        earlier, self.has_earlier = page
        self.messages = earlier + self.messages

    async def _reload_open_conversation(self, owner: str) -> None:
        if self.conversation_id:
            await self._load_messages(owner, self.conversation_id)
        await self._refresh_conversations(owner)

    # ----- conversations ------------------------------------------------------------
    @rx.event
    async def select_conversation(self, conversation_id: str) -> None:
        """Open a conversation from the sidebar."""
        owner, wanted = await self._allowed_owner(), args.record_id(conversation_id)
        if self.streaming or owner is None or wanted is None:
            return
        if await self._load_messages(owner, wanted):
            self.conversation_id = wanted
            self.notice = ""

    @rx.event
    def new_conversation(self) -> None:
        """Start a fresh chat; it is saved when its first message is sent."""
        if self.streaming:
            return
        self.conversation_id = ""
        self._show([], has_earlier=False)
        self.notice = ""

    @rx.event
    async def rename_conversation(self, form_data: dict) -> None:
        """Rename a conversation (from the sidebar's rename dialog)."""
        owner = await self._allowed_owner()
        conversation_id = args.record_id(
            form_data.get("conversation_id") if isinstance(form_data, dict) else None
        )
        title = (args.form_text(form_data, "title") or "")[: convo.TITLE_MAX_CHARS * 4].strip()
        if owner is None or conversation_id is None or not title:
            return
        try:
            await db.run(
                convo.rename_conversation,
                owner_id=owner,
                conversation_id=conversation_id,
                title=title,
            )
        except convo.ConversationNotFound:
            return
        await self._refresh_conversations(owner)

    @rx.event
    async def delete_conversation(self, conversation_id: str) -> None:
        """Delete a conversation and its messages."""
        owner, target = await self._allowed_owner(), args.record_id(conversation_id)
        if owner is None or target is None:
            return
        if self.streaming and target == self.conversation_id:
            return
        try:
            await db.run(convo.delete_conversation, owner_id=owner, conversation_id=target)
        except convo.ConversationNotFound:
            return
        if target == self.conversation_id:
            self.conversation_id = ""
            self._show([], has_earlier=False)
        await self._refresh_conversations(owner)

    @rx.event
    async def clear_chat(self) -> None:
        """Empty the open conversation."""
        owner = await self._allowed_owner()
        if self.streaming or owner is None:
            return
        self.notice = ""
        conversation_id = args.record_id(self.conversation_id)
        if conversation_id is None:
            self.conversation_id = ""
            self._show([], has_earlier=False)
            return
        try:
            await db.run(convo.clear_messages, owner_id=owner, conversation_id=conversation_id)
        except convo.ConversationNotFound:
            self.conversation_id = ""
        self._show([], has_earlier=False)
        await self._refresh_conversations(owner)

    # ----- settings -----------------------------------------------------------------
    @rx.event
    def set_temperature(self, value: list[float] | float) -> None:
        """The slider reports a list of one value; anything but a finite number is ignored."""
        number = args.finite_number(value)
        if number is not None:
            self.temperature = round(min(2.0, max(0.0, number)), 2)

    # ----- feedback -----------------------------------------------------------------
    @rx.event
    async def rate(self, message_id: int, rating: int) -> None:
        """Thumbs up (+1) / down (-1); clicking the same thumb again clears it."""
        owner, wanted = await self._allowed_owner(), args.whole_number(message_id)
        if owner is None or wanted is None or args.whole_number(rating) not in (-1, 1):
            return
        shown = next((m for m in self._shown() if m.id == wanted), None)
        if shown is None:
            return
        new_rating = 0 if shown.feedback == rating else rating
        try:
            await db.run(convo.set_feedback, owner_id=owner, message_id=wanted, rating=new_rating)
        except (convo.ConversationNotFound, ValueError):
            return
        self._replace_shown(wanted, feedback=new_rating, feedback_reasons="", feedback_comment="")
        # a rating opens the optional form for reasons (thumbs-down) and a comment
        self.feedback_form_for = wanted if new_rating else 0
        events.publish_feedback(
            Feedback(
                correlation_id=shown.correlation_id,
                session_id=owner,
                rating=new_rating,
            )
        )

    @rx.event
    def close_feedback_form(self) -> None:
        """Dismiss the reason/comment form (the rating stays)."""
        self.feedback_form_for = 0

    @rx.event
    async def submit_feedback(self, form_data: dict) -> None:
        """Reasons (thumbs-down only) and a comment for the reply whose form is open.

        The form sends ``reason-<n>`` fields whose values must each be one of
        ``feedback.REASONS`` and a ``comment`` of at most ``MAX_COMMENT_CHARS``; anything
        else, a reply that is not this browser's or not rated, is ignored.
        """
        owner, wanted = await self._allowed_owner(), self.feedback_form_for
        comment_text = args.form_text(form_data, "comment")
        if owner is None or not wanted or comment_text is None or not isinstance(form_data, dict):
            return
        comment = args.feedback_comment(comment_text)
        chosen = args.feedback_reasons(
            [v for k, v in form_data.items() if isinstance(k, str) and k.startswith("reason-")]
        )
        if comment is None or chosen is None:
            return
        shown = next((m for m in self._shown() if m.id == wanted), None)
        if shown is None or shown.feedback not in (-1, 1):
            return
        rating = shown.feedback
        reasons = chosen if rating == -1 else ()
        try:
            await db.run(
                convo.set_feedback,
                owner_id=owner,
                message_id=wanted,
                rating=rating,
                reasons=reasons,
                comment=comment,
            )
        except (convo.ConversationNotFound, ValueError):
            return
        self._replace_shown(wanted, feedback_reasons=",".join(reasons), feedback_comment=comment)
        self.feedback_form_for = 0
        events.publish_feedback(
            Feedback(
                correlation_id=shown.correlation_id,
                session_id=owner,
                rating=rating,
                reasons=reasons,
                comment=comment,
                rating_changed=False,
            )
        )

    # ----- sending ------------------------------------------------------------------
    @rx.event
    async def send_message(self, form_data: dict):
        """Check, count and save the user's message, then stream the reply in the background.

        The rate limits are counted before anything is saved: a refused message is not
        stored, and stays in the composer.
        """
        if self.streaming:
            return
        if not (await self.get_state(AuthState)).may_chat():
            self.notice = "Please sign in to chat."
            return
        owner = self._owner()
        if owner is None:
            self.notice = NO_IDENTITY_NOTICE
            return
        settings = get_settings()
        try:
            text = check_user_message(
                args.form_text(form_data, "message") or "", max_chars=settings.max_message_chars
            )
        except ValueError as exc:
            self.notice = str(exc)
            return
        shown = self._shown()
        request = self._admit(owner, [*_turns(shown), Turn(role="user", content=text)])
        if request is None:
            return
        saved, reply_row, listed = await db.run(
            _save_user_message,
            owner_id=owner,
            conversation_id=args.record_id(self.conversation_id) or "",
            text=text,
            parent_id=shown[-1].id if shown else convo.LEAF,
            correlation_id=request.correlation_id,
            top_id=self.conversations[0].id if self.conversations else "",
        )
        self._set_if_changed(conversation_id=saved.conversation_id)
        self._ask(_message_view(saved))
        self._accept(request, parent_id=saved.id or 0, reply_id=reply_row.id or 0)
        if listed is not None:  # a new conversation, or one that moves to the top
            self.conversations = [_conversation_view(row) for row in listed]
        return ChatState.stream_reply  # the page empties the composer (components.composer)

    def _turns(self) -> list[Turn]:
        """The conversation as the model sees it: the finished, successful messages shown
        (the visible branch: alternatives are never on screen)."""
        return _turns(self._shown())

    def _admit(self, owner: str, turns: list[Turn]) -> TurnRequest | None:
        """A request for ``turns`` counted against the rate limits, or None (refused: the
        notice says why)."""
        request = TurnRequest(
            session_id=owner,
            conversation_id=self.conversation_id,
            turns=turns,
            temperature=self.temperature,
        )
        refusal = deps.turn_service().admit(request, client_ip=client_ip_of(self))
        if refusal is not None:
            self.notice = user_message(refusal.category, retry_after=refusal.retry_after)
            return None
        self._set_if_changed(notice="")
        return request

    def _accept(self, request: TurnRequest, *, parent_id: int, reply_id: int = 0) -> None:
        """Hand ``stream_reply`` its one-time ticket: a reply to message ``parent_id``
        (``reply_id``: its row, when already saved; else ``stream_reply`` saves it)."""
        self.streaming = True
        self._set_if_changed(editing_id=0, feedback_form_for=0)
        self._reply_ticket = request.correlation_id
        self._reply_accepted_at = time.time()
        self._reply_message_id = reply_id
        self._reply_parent_id = parent_id

    def _index_of(self, message_id: int, role: str) -> int | None:
        """Where message ``message_id`` with that role is on screen (None: it is not)."""
        return next(
            (i for i, m in enumerate(self._shown()) if m.id == message_id and m.role == role),
            None,
        )

    # ----- message actions ----------------------------------------------------------
    @rx.event
    async def regenerate(self, message_id: int):
        """Another reply to the question that reply ``message_id`` answers.

        The old reply (and whatever followed it) stays as an alternative, one click of
        "‹" away; the new one is a request of its own. Only a reply of this browser's
        open conversation, on screen, while nothing streams.
        """
        owner, wanted = await self._allowed_owner(), args.whole_number(message_id)
        conversation_id = args.record_id(self.conversation_id)
        if self.streaming or owner is None or wanted is None or conversation_id is None:
            return
        if self._index_of(wanted, "assistant") is None:
            return
        try:
            question = await db.run(convo.reply_target, owner_id=owner, message_id=wanted)
        except convo.ConversationNotFound:
            return
        at = self._index_of(question.id or 0, "user")
        if question.conversation_id != conversation_id or at is None:
            return
        kept = self._shown()[: at + 1]
        request = self._admit(owner, _turns(kept))
        if request is None:
            return
        replaced = await db.run(convo.mark_regenerated, owner_id=owner, message_id=wanted)
        if replaced:  # an implicit-dissatisfaction flag on the replaced reply's request
            implicit_signals.mark_regenerated(replaced)
        self._show(kept)
        self._accept(request, parent_id=question.id or 0)
        return ChatState.stream_reply

    @rx.event
    def start_edit(self, message_id: int) -> None:
        """Open the edit box of one of the user's messages on screen."""
        wanted = args.whole_number(message_id)
        if self.streaming or wanted is None or self._index_of(wanted, "user") is None:
            return
        self.editing_id = wanted
        self.feedback_form_for = 0

    @rx.event
    def cancel_edit(self) -> None:
        """Close the edit box; nothing changes."""
        self.editing_id = 0

    @rx.event
    async def submit_edit(self, form_data: dict):
        """Send the edited message (field ``text``) instead of the one being edited.

        The conversation branches there: the old message and what followed it stay as
        an alternative. The text is checked like the composer's (``MAX_MESSAGE_CHARS``).
        """
        owner, wanted = await self._allowed_owner(), self.editing_id
        conversation_id = args.record_id(self.conversation_id)
        if self.streaming or owner is None or not wanted or conversation_id is None:
            return
        at = self._index_of(wanted, "user")
        if at is None:
            return
        try:
            text = check_user_message(
                args.form_text(form_data, "text") or "",
                max_chars=get_settings().max_message_chars,
            )
        except ValueError as exc:
            self.notice = str(exc)
            return
        kept = self._shown()[:at]
        request = self._admit(owner, [*_turns(kept), Turn(role="user", content=text)])
        if request is None:
            return
        try:
            saved, place = await db.run(_save_edit, owner_id=owner, message_id=wanted, text=text)
        except convo.ConversationNotFound:
            return
        if saved.conversation_id != conversation_id:
            return
        self._show([*kept, _message_view(saved, place)])
        self._accept(request, parent_id=saved.id or 0)
        await self._refresh_conversations(owner)
        return ChatState.stream_reply

    @rx.event
    async def show_alternative(self, message_id: int, step: int) -> None:
        """‹ (-1) / › (+1): show the previous or next alternative of message ``message_id``
        (a regenerated reply, an edited question) and the branch that follows it."""
        owner, wanted = await self._allowed_owner(), args.whole_number(message_id)
        conversation_id = args.record_id(self.conversation_id)
        way = args.whole_number(step)
        if self.streaming or owner is None or wanted is None or conversation_id is None:
            return
        if way not in (-1, 1) or not any(m.id == wanted for m in self._shown()):
            return
        shown = await db.run(convo.show_alternative, owner_id=owner, message_id=wanted, step=way)
        if shown is None or shown.conversation_id != conversation_id:
            return
        self.editing_id = 0
        self.feedback_form_for = 0
        await self._load_messages(owner, conversation_id)

    @rx.event
    async def export_markdown(self):
        """Download the open conversation (its visible branch) as a Markdown file."""
        owner, conversation_id = await self._allowed_owner(), args.record_id(self.conversation_id)
        if owner is None or conversation_id is None:
            return None
        try:
            name, text = await db.run(
                convo.conversation_markdown,
                owner_id=owner,
                conversation_id=conversation_id,
                exported_at=datetime.now(UTC),
            )
        except convo.ConversationNotFound:
            return None
        return rx.download(data=text, filename=name, mime_type="text/markdown")

    @rx.event
    def stop(self) -> None:
        """Cancel the reply in flight; what has arrived so far is kept."""
        task = _inflight.get(self.router.session.client_token)
        if task is not None and not task.done():
            task.cancel()

    @rx.event(background=True)
    async def stream_reply(self):
        """Stream the model's reply into the page, saving it as it goes.

        Runs only as the continuation of an accepted ``send_message``: it takes that
        message's one-time ticket, so calling it directly (or twice) does nothing. The
        request path (breaker, retries, the one LLMCall event) is
        :mod:`chatmon.services.turn`; this forwards its text to the page and keeps the
        reply saved every ``CHECKPOINT_SECONDS``.
        """
        async with self:
            ticket, self._reply_ticket = self._reply_ticket, ""
            parent_id, self._reply_parent_id = self._reply_parent_id, convo.LEAF
            owner = self._owner()
            if not ticket or not self.streaming or owner is None:
                return
            token = self.router.session.client_token
            request = TurnRequest(
                session_id=owner,
                conversation_id=self.conversation_id,
                turns=self._turns(),
                temperature=self.temperature,
                correlation_id=ticket,
            )
            # A send saved the reply's row with the question; a regenerated reply or the
            # reply to an edit saves it here, while this tab's state is held: one lock
            # (and one update to the page) before the model is asked, not two.
            message_id = self._reply_message_id
            if not message_id:
                try:
                    checkpoint = await db.run(
                        convo.start_reply,
                        owner_id=owner,
                        conversation_id=request.conversation_id,
                        correlation_id=ticket,
                        parent_id=parent_id,
                    )
                except Exception:  # the database is unreachable: say so, keep the composer usable
                    log.exception("could not start saving a reply; not asking the model")
                    self.notice = SAVE_FAILED_NOTICE
                    self._end_streaming()
                    return
                message_id = self._reply_message_id = checkpoint.id or 0
        reply = deps.turn_service().reply(request)
        _inflight[token] = asyncio.current_task()  # type: ignore[assignment]  # a background event always runs in a task
        saver = asyncio.create_task(_keep_checkpointing(message_id, reply))
        live = LivePublisher(token=token, reply=request.correlation_id)
        try:
            # The text goes to the page as coalesced, append-only frames beside the
            # state (chatmon.states.live); the state changes once, at the end.
            async with reply, live:
                async for text in reply:
                    live.push(text)
        except asyncio.CancelledError:
            pass  # Stop: what arrived is kept and marked "(stopped)"
        finally:
            _inflight.pop(token, None)
            saver.cancel()
            await self._finish_reply(
                request=request, result=reply.result, message_id=message_id, live=live
            )

    async def _finish_reply(
        self, *, request: TurnRequest, result: TurnResult, message_id: int, live: LivePublisher
    ) -> None:
        """Save the reply (or the error notice) and show it as a finished bubble.

        Whatever happens while saving, the composer is usable again afterwards.
        """
        category = result.category
        if category is not None:
            log.warning(
                "llm call failed: category=%s correlation_id=%s", category, result.correlation_id
            )
        content = result.final_text()
        saved, notice, position = True, "", Position(1, 1)
        try:
            saved, position = await db.run(
                _save_finished,
                message_id=message_id,
                content=content,
                error_category=category.value if category else None,
            )
        except Exception:
            log.exception("could not save a finished reply (its last checkpoint stays)")
            notice = SAVE_FAILED_NOTICE
        async with self:
            if saved and self.conversation_id == request.conversation_id:
                self._answered(
                    MessageView(
                        id=message_id,
                        role="assistant",
                        content=content,
                        error_category=category.value if category else "",
                        correlation_id=result.correlation_id,
                        alt_index=position.index,
                        alt_count=position.count,
                        **live.page_holds(content),  # its text is not sent twice
                    )
                )
            self._set_if_changed(notice=notice or result.notice or self.notice)
            self._end_streaming()
            if (state := _provider_state()) != self.provider_state:  # tripped by this reply?
                self.provider_state = state


def _ask_for_identity_script(backend_host: str) -> str:
    """JavaScript that gets this backend's identity cookie and reloads, once per tab.

    The cookie is set by the response (HttpOnly): the script never sees its value.
    """
    url = json.dumps(f"//{backend_host}{IDENTITY_PATH}")
    return (
        "(() => { if (sessionStorage.getItem('chatmon_identity_asked')) return;"
        " sessionStorage.setItem('chatmon_identity_asked', '1');"
        f" fetch({url}, {{method: 'POST', credentials: 'include'}})"
        ".then((r) => { if (r.ok) window.location.reload(); }); })()"
    )


def _get_message(*, session, message_id: int) -> ChatMessage | None:
    return session.get(ChatMessage, message_id)


def _turns(messages: list[MessageView]) -> list[Turn]:
    """What the model is sent of ``messages``: the finished, successful ones."""
    return [
        Turn(role=m.role, content=m.content)
        for m in messages
        if not m.error_category and not m.status
    ]


def _save_finished(
    *, session, message_id: int, content: str, error_category: str | None
) -> tuple[bool, Position]:
    """Save the finished reply, then read its place among its alternatives (a
    regenerated reply is "2 of 2"; a reply counts only once finished): one trip to a
    worker thread instead of two."""
    saved = convo.save_reply(
        session=session,
        message_id=message_id,
        content=content,
        done=True,
        error_category=error_category,
    )
    session.commit()  # the reply is saved whatever reading its place does next
    message = session.get(ChatMessage, message_id) if saved else None
    if message is None:
        return saved, Position(1, 1)
    try:
        return saved, convo.position_of(session=session, message=message)
    except Exception:  # noqa: BLE001 - only the ‹ › control is missing then
        log.warning("could not read a reply's alternatives", exc_info=True)
        session.rollback()  # nothing left to undo: the reply was committed above
        return saved, Position(1, 1)


def _save_edit(
    *, session, owner_id: str, message_id: int, text: str
) -> tuple[ChatMessage, Position]:
    saved = convo.edit_message(session=session, owner_id=owner_id, message_id=message_id, text=text)
    return saved, convo.position_of(session=session, message=saved)


def _save_user_message(
    *,
    session,
    owner_id: str,
    conversation_id: str,
    text: str,
    parent_id: int,
    correlation_id: str,
    top_id: str,
) -> tuple[ChatMessage, ChatMessage, list[Conversation] | None]:
    """The user's message after ``parent_id``, in its conversation (a new one when there
    is none yet); the checkpoint row of its reply (``convo.start_reply``); and the
    owner's conversation list when the sidebar must change: the conversation is new or
    not the one on top (``top_id``), else None. One transaction, one trip to a worker
    thread, before the model is asked."""
    conversation = convo.get_or_create_conversation(
        session=session, owner_id=owner_id, conversation_id=conversation_id
    )
    saved = convo.add_message(
        session=session,
        owner_id=owner_id,
        conversation_id=conversation.id,
        role="user",
        content=text,
        parent_id=parent_id,
    )
    reply = convo.start_reply(
        session=session,
        owner_id=owner_id,
        conversation_id=conversation.id,
        correlation_id=correlation_id,
        parent_id=saved.id,
    )
    listed = (
        None
        if conversation.id == top_id
        else convo.list_conversations(session=session, owner_id=owner_id)
    )
    return saved, reply, listed


async def _keep_checkpointing(message_id: int, reply: ReplyStream) -> None:
    """Save the reply's text so far every ``CHECKPOINT_SECONDS`` (also a sign of life:
    a reply not saved for ``STALE_REPLY_SECONDS`` is taken for interrupted)."""
    while True:
        await asyncio.sleep(CHECKPOINT_SECONDS)
        try:
            await db.run(
                convo.save_reply, message_id=message_id, content=reply.result.text, done=False
            )
        except Exception:  # noqa: BLE001 - a missed checkpoint is retried at the next one
            log.warning("could not checkpoint a streaming reply", exc_info=True)


def _publish_interrupted(message: ChatMessage, *, owner: str) -> None:
    """Record a reply whose worker died mid-stream as one request with status interrupted."""
    created = message.created_at
    ended = message.updated_at or created
    events.publish_call(
        LLMCall(
            correlation_id=message.correlation_id or uuid.uuid4().hex[:16],
            session_id=owner,
            conversation_id=message.conversation_id,
            model=get_settings().llm_model,
            provider=None,
            started_at=created,
            first_token_seconds=None,
            total_seconds=max((ended - created).total_seconds(), 0.0),
            input_tokens=None,
            output_tokens=None,
            cost_usd=None,
            status=CallStatus.INTERRUPTED,
            error_category=None,
            retries=0,
            temperature=0.0,
            prompt_version="",
        )
    )
