"""The chat's turn: a sent message, its reply streamed into the page, saved as it goes.

:class:`ReplyMixin` is a Reflex state mixin of :class:`chatmon.states.chat.ChatState`:
its handlers are the page's ``chat.send_message``, ``chat.stream_reply`` and
``chat.stop``. The request path itself (breaker, retries, the one LLMCall event) is
:mod:`chatmon.services.turn`; the saves are :mod:`chatmon.services.chat_saves`.
"""

from __future__ import annotations

import asyncio
import logging
import time

import reflex as rx

from chatmon import db, deps
from chatmon.presenters.chat_screen import (
    MessageView,
    conversation_view,
    message_view,
    model_messages,
)
from chatmon.services import branches, chat_messages, chat_saves, reply_checkpoints
from chatmon.services.errors import user_message
from chatmon.services.history import ModelMessage, Position, check_user_message
from chatmon.services.turn import TurnRequest, TurnResult
from chatmon.settings import get_settings
from chatmon.states import args
from chatmon.states.auth import AuthState
from chatmon.states.browser import client_ip_of
from chatmon.states.chat_base import (
    NO_IDENTITY_NOTICE,
    SAVE_FAILED_NOTICE,
    ChatBase,
    current_provider_state,
)
from chatmon.states.live import LivePublisher

log = logging.getLogger(__name__)

# The asyncio task streaming each browser tab's reply, so Stop can cancel it at
# once, even while the provider has not sent a single token yet.
_inflight: dict[str, asyncio.Task] = {}


class ReplyMixin(ChatBase, mixin=True):
    """Sending a message and streaming its reply."""

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
        request = self._admit(
            owner, [*model_messages(shown), ModelMessage(role="user", content=text)]
        )
        if request is None:
            return
        saved, reply_row, listed = await db.run(
            chat_saves.save_user_message,
            owner_id=owner,
            conversation_id=args.record_id(self.conversation_id) or "",
            text=text,
            parent_id=shown[-1].id if shown else branches.LEAF,
            correlation_id=request.correlation_id,
            top_id=self.conversations[0].id if self.conversations else "",
        )
        self._set_if_changed(conversation_id=saved.conversation_id)
        self._ask(message_view(saved))
        self._accept(request, parent_id=saved.id or 0, reply_id=reply_row.id or 0)
        if listed is not None:  # a new conversation, or one that moves to the top
            self.conversations = [conversation_view(row) for row in listed]
        return type(self).stream_reply  # the page empties the composer (components.composer)

    def _admit(self, owner: str, history: list[ModelMessage]) -> TurnRequest | None:
        """A request for ``history`` counted against the rate limits, or None (refused: the
        notice says why)."""
        request = TurnRequest(
            session_id=owner,
            conversation_id=self.conversation_id,
            history=history,
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
            parent_id, self._reply_parent_id = self._reply_parent_id, branches.LEAF
            owner = self._owner()
            if not ticket or not self.streaming or owner is None:
                return
            token = self.router.session.client_token
            request = TurnRequest(
                session_id=owner,
                conversation_id=self.conversation_id,
                history=self._model_messages(),
                temperature=self.temperature,
                correlation_id=ticket,
            )
            # A send saved the reply's row with the question; a regenerated reply or the
            # reply to an edit saves it here, while this tab's state is held: one lock
            # (and one update to the page) before the model is asked, not two.
            message_id = self._reply_message_id
            # Saved with a question just sent: its only reply (1 of 1), nothing to read.
            place = Position(1, 1) if message_id else None
            if not message_id:
                try:
                    checkpoint = await db.run(
                        chat_messages.start_reply,
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
        reply_checkpoints.keep_saved(message_id, lambda: reply.result.text)
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
            reply_checkpoints.stop_saving(message_id)
            await self._finish_reply(
                request=request, result=reply.result, message_id=message_id, live=live, place=place
            )

    async def _finish_reply(
        self,
        *,
        request: TurnRequest,
        result: TurnResult,
        message_id: int,
        live: LivePublisher,
        place: Position | None,
    ) -> None:
        """Save the reply (or the error notice) and show it as a finished bubble; ``place``:
        its place among its alternatives when known (else read from the database).

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
                chat_saves.save_finished,
                message_id=message_id,
                content=content,
                error_category=category.value if category else None,
                place=place,
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
            if (state := current_provider_state()) != self.provider_state:  # tripped by this reply?
                self.provider_state = state


def reply_in_flight(token: str) -> bool:
    """Whether this worker streams a reply of the browser tab ``token``."""
    return token in _inflight
