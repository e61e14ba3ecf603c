"""ChatState: the chat page's controller. Coordinates services; holds no I/O of its own.

Database calls run in a worker thread (``asyncio.to_thread``) so a slow disk never
stalls other users' streams. The reply itself streams in a background event, which
changes state only inside ``async with self``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import uuid

import reflex as rx
from reflex_base.registry import RegistrationContext
from reflex_base.utils.exceptions import ReflexRuntimeError

from chatmon import deps
from chatmon.db import session_scope
from chatmon.models import ChatMessage, Conversation
from chatmon.services import conversations as convo
from chatmon.services import events
from chatmon.services.events import Feedback
from chatmon.services.history import Turn, check_user_message
from chatmon.services.turn import TurnRequest, TurnResult
from chatmon.settings import get_settings
from chatmon.states.auth import AuthState

log = logging.getLogger(__name__)

# The asyncio task streaming each browser tab's reply, so Stop can cancel it at
# once, even while the provider has not sent a single token yet.
_inflight: dict[str, asyncio.Task] = {}

# How often an open tab looks at the circuit breaker, and the newest watch loop per
# tab (a reload starts a new one; the old one sees it and ends).
PROVIDER_POLL_SECONDS = 2.0
_provider_watchers: dict[str, str] = {}


def _provider_state() -> str:
    """The configured model's circuit breaker in this process: closed | half_open | open."""
    model_breaker = deps.llm_client().breaker
    return model_breaker.state.value if model_breaker else "closed"


def _tab_connected(token: str) -> bool:
    """Whether the tab with this client token still has its websocket to this worker.

    Background events run in the worker that holds the tab's websocket, so the
    worker's own token table answers (the lookup Reflex's shared states use).
    """
    try:
        namespace = RegistrationContext.get().app.event_namespace
    except (LookupError, ReflexRuntimeError):  # no running app (unit tests)
        return False
    return namespace is not None and token in namespace.token_to_sid


@dataclasses.dataclass
class MessageView:
    """One chat bubble."""

    id: int
    role: str
    content: str
    feedback: int = 0
    error_category: str = ""
    correlation_id: str = ""


@dataclasses.dataclass
class ConversationView:
    """One entry of the sidebar."""

    id: str
    title: str


def _message_view(message: ChatMessage) -> MessageView:
    return MessageView(
        id=message.id or 0,
        role=message.role,
        content=message.content,
        feedback=message.feedback or 0,
        error_category=message.error_category or "",
        correlation_id=message.correlation_id or "",
    )


def _conversation_view(conversation: Conversation) -> ConversationView:
    return ConversationView(id=conversation.id, title=conversation.title)


class ChatState(rx.State):
    """Conversations, the messages of the open one, and the reply in flight."""

    client_id: str = rx.LocalStorage("", name="chatmon_client_id")
    conversation_id: str = rx.LocalStorage("", name="chatmon_conversation_id")
    conversations: list[ConversationView] = []
    messages: list[MessageView] = []
    streaming_text: str = ""
    streaming: bool = False
    notice: str = ""
    temperature: float = get_settings().llm_temperature
    model_name: str = get_settings().llm_model
    is_demo: bool = get_settings().is_demo
    max_message_chars: int = get_settings().max_message_chars  # the composer's limit
    rename_title: str = ""
    provider_state: str = "closed"  # the model's circuit breaker, for the degraded banner

    # ----- loading ------------------------------------------------------------------
    @rx.event
    async def load(self):
        """Page load: identify this browser, then show its conversations."""
        if not (await self.get_state(AuthState)).may_chat():  # CHAT_PASSWORD is set
            return rx.redirect("/login?next=/")
        if not self.client_id:
            self.client_id = uuid.uuid4().hex
        await self._refresh_conversations()
        linked = self.router.url.query_parameters.get("conversation", "")
        if linked:  # "Open the conversation" on the monitor's request detail
            self.conversation_id = linked
        if self.conversation_id and not await self._load_messages(self.conversation_id):
            if linked:
                self.notice = "That conversation was started in another browser, or deleted."
            self.conversation_id = ""
            self.messages = []
        self.provider_state = _provider_state()

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
                misses = 0 if _tab_connected(token) else misses + 1
                current = _provider_state()
                if current != shown:
                    async with self:
                        self.provider_state = shown = current
                await asyncio.sleep(PROVIDER_POLL_SECONDS)
        finally:
            if _provider_watchers.get(token) == watch_id:
                del _provider_watchers[token]

    async def _refresh_conversations(self) -> None:
        owner = self.client_id

        def query() -> list[ConversationView]:
            with session_scope() as session:
                rows = convo.list_conversations(session=session, owner_id=owner)
                return [_conversation_view(row) for row in rows]

        self.conversations = await asyncio.to_thread(query)

    async def _load_messages(self, conversation_id: str) -> bool:
        owner = self.client_id

        def query() -> list[MessageView] | None:
            with session_scope() as session:
                try:
                    rows = convo.list_messages(
                        session=session, owner_id=owner, conversation_id=conversation_id
                    )
                except convo.ConversationNotFound:
                    return None
                return [_message_view(row) for row in rows]

        views = await asyncio.to_thread(query)
        if views is None:
            return False
        self.messages = views
        return True

    # ----- conversations ------------------------------------------------------------
    @rx.event
    async def select_conversation(self, conversation_id: str) -> None:
        """Open a conversation from the sidebar."""
        if self.streaming:
            return
        if await self._load_messages(conversation_id):
            self.conversation_id = conversation_id
            self.notice = ""

    @rx.event
    def new_conversation(self) -> None:
        """Start a fresh chat; it is saved when its first message is sent."""
        if self.streaming:
            return
        self.conversation_id = ""
        self.messages = []
        self.notice = ""

    @rx.event
    async def rename_conversation(self, form_data: dict) -> None:
        """Rename a conversation (from the sidebar's rename dialog)."""
        conversation_id = str(form_data.get("conversation_id", ""))
        title = str(form_data.get("title", "")).strip()
        if not title:
            return
        owner = self.client_id

        def write() -> None:
            with session_scope() as session:
                convo.rename_conversation(
                    session=session, owner_id=owner, conversation_id=conversation_id, title=title
                )

        try:
            await asyncio.to_thread(write)
        except convo.ConversationNotFound:
            return
        await self._refresh_conversations()

    @rx.event
    async def delete_conversation(self, conversation_id: str) -> None:
        """Delete a conversation and its messages."""
        if self.streaming and conversation_id == self.conversation_id:
            return
        owner = self.client_id

        def write() -> None:
            with session_scope() as session:
                convo.delete_conversation(
                    session=session, owner_id=owner, conversation_id=conversation_id
                )

        try:
            await asyncio.to_thread(write)
        except convo.ConversationNotFound:
            return
        if conversation_id == self.conversation_id:
            self.conversation_id = ""
            self.messages = []
        await self._refresh_conversations()

    @rx.event
    async def clear_chat(self) -> None:
        """Empty the open conversation."""
        if self.streaming:
            return
        self.notice = ""
        if not self.conversation_id:
            self.messages = []
            return
        owner, conversation_id = self.client_id, self.conversation_id

        def write() -> None:
            with session_scope() as session:
                convo.clear_messages(
                    session=session, owner_id=owner, conversation_id=conversation_id
                )

        try:
            await asyncio.to_thread(write)
        except convo.ConversationNotFound:
            self.conversation_id = ""
        self.messages = []
        await self._refresh_conversations()

    # ----- settings -----------------------------------------------------------------
    @rx.event
    def set_temperature(self, value: list[float] | float) -> None:
        """The slider reports a list of one value."""
        raw = value[0] if isinstance(value, list) else value
        self.temperature = round(min(2.0, max(0.0, float(raw))), 2)

    # ----- feedback -----------------------------------------------------------------
    @rx.event
    async def rate(self, message_id: int, rating: int) -> None:
        """Thumbs up (+1) / down (-1); clicking the same thumb again clears it."""
        index = next((i for i, m in enumerate(self.messages) if m.id == message_id), None)
        if index is None:
            return
        new_rating = 0 if self.messages[index].feedback == rating else rating
        owner = self.client_id

        def write() -> None:
            with session_scope() as session:
                convo.set_feedback(
                    session=session, owner_id=owner, message_id=message_id, rating=new_rating
                )

        try:
            await asyncio.to_thread(write)
        except (convo.ConversationNotFound, ValueError):
            return
        self.messages[index] = dataclasses.replace(self.messages[index], feedback=new_rating)
        events.publish_feedback(
            Feedback(
                correlation_id=self.messages[index].correlation_id,
                session_id=owner,
                rating=new_rating,
            )
        )

    # ----- sending ------------------------------------------------------------------
    @rx.event
    async def send_message(self, form_data: dict):
        """Validate and save the user's message, then stream the reply in the background."""
        if self.streaming:
            return
        if not (await self.get_state(AuthState)).may_chat():
            self.notice = "Please sign in to chat."
            return
        settings = get_settings()
        try:
            text = check_user_message(
                str(form_data.get("message", "")), max_chars=settings.max_message_chars
            )
        except ValueError as exc:
            self.notice = str(exc)
            return
        self.notice = ""
        saved = await self._save_user_message(text)
        self.messages.append(_message_view(saved))
        self.streaming = True
        self.streaming_text = ""
        await self._refresh_conversations()
        return [rx.set_value("message", ""), ChatState.stream_reply]

    async def _save_user_message(self, text: str) -> ChatMessage:
        owner, conversation_id = self.client_id, self.conversation_id

        def write() -> ChatMessage:
            with session_scope() as session:
                try:
                    convo.get_conversation(
                        session=session, owner_id=owner, conversation_id=conversation_id
                    )
                    target = conversation_id
                except convo.ConversationNotFound:
                    target = convo.create_conversation(session=session, owner_id=owner).id
                return convo.add_message(
                    session=session,
                    owner_id=owner,
                    conversation_id=target,
                    role="user",
                    content=text,
                )

        saved = await asyncio.to_thread(write)
        self.conversation_id = saved.conversation_id
        return saved

    @rx.event
    def stop(self) -> None:
        """Cancel the reply in flight; what has arrived so far is kept."""
        task = _inflight.get(self.router.session.client_token)
        if task is not None and not task.done():
            task.cancel()

    @rx.event(background=True)
    async def stream_reply(self):
        """Stream the model's reply into the page, then save it.

        The request path (rate limits, breaker, retries, the one LLMCall event) is
        :mod:`chatmon.services.turn`; this only forwards its text to the page.
        """
        async with self:
            token = self.router.session.client_token
            request = TurnRequest(
                session_id=self.client_id,
                conversation_id=self.conversation_id,
                turns=[
                    Turn(role=m.role, content=m.content)
                    for m in self.messages
                    if not m.error_category
                ],
                temperature=self.temperature,
            )
        reply = deps.turn_service().reply(request)
        _inflight[token] = asyncio.current_task()  # type: ignore[assignment]
        try:
            async with reply:
                async for _ in reply:
                    async with self:
                        self.streaming_text = reply.result.text
        except asyncio.CancelledError:
            pass  # Stop: what arrived is kept and marked "(stopped)"
        finally:
            _inflight.pop(token, None)
        await self._finish_reply(request=request, result=reply.result)

    async def _finish_reply(self, *, request: TurnRequest, result: TurnResult) -> None:
        """Save the reply (or the error notice) and show it as a finished bubble."""
        category = result.category
        if category is not None:
            log.warning(
                "llm call failed: category=%s correlation_id=%s", category, result.correlation_id
            )
        owner, conversation_id = request.session_id, request.conversation_id
        content = result.final_text()

        def write() -> ChatMessage | None:
            with session_scope() as session:
                try:
                    return convo.add_message(
                        session=session,
                        owner_id=owner,
                        conversation_id=conversation_id,
                        role="assistant",
                        content=content,
                        error_category=category.value if category else None,
                        correlation_id=result.correlation_id,
                    )
                except convo.ConversationNotFound:
                    return None

        saved = await asyncio.to_thread(write)
        async with self:
            if saved is not None and self.conversation_id == conversation_id:
                self.messages.append(_message_view(saved))
            self.streaming = False
            self.streaming_text = ""
            self.provider_state = _provider_state()  # this reply may have tripped the breaker
