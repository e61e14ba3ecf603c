"""The actions on a message of the open conversation: regenerate, edit, switch alternative.

:class:`MessageActionsMixin` is a Reflex state mixin of
:class:`chatmon.states.chat.ChatState` (the page's ``chat.regenerate``,
``chat.start_edit``, ``chat.cancel_edit``, ``chat.submit_edit``,
``chat.show_alternative``). A regenerated reply or the reply to an edit streams like
any other (:class:`chatmon.states.chat_reply.ReplyMixin`).
"""

from __future__ import annotations

import reflex as rx

from chatmon import db
from chatmon.presenters.chat_screen import message_view, model_messages
from chatmon.services import branches, chat_saves, implicit_signals
from chatmon.services import conversations as convo
from chatmon.services.history import ModelMessage, check_user_message
from chatmon.settings import get_settings
from chatmon.states import args
from chatmon.states.chat_reply import ReplyMixin


class MessageActionsMixin(ReplyMixin, mixin=True):
    """Regenerating a reply, editing a question, showing another alternative."""

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
            question = await db.run(branches.reply_target, owner_id=owner, message_id=wanted)
        except convo.ConversationNotFound:
            return
        at = self._index_of(question.id or 0, "user")
        if question.conversation_id != conversation_id or at is None:
            return
        kept = self._shown()[: at + 1]
        request = self._admit(owner, model_messages(kept))
        if request is None:
            return
        replaced = await db.run(branches.mark_regenerated, owner_id=owner, message_id=wanted)
        if replaced:  # an implicit-dissatisfaction flag on the replaced reply's request
            implicit_signals.mark_regenerated(replaced)
        self._show(kept)
        self._accept(request, parent_id=question.id or 0)
        return type(self).stream_reply

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
        request = self._admit(
            owner, [*model_messages(kept), ModelMessage(role="user", content=text)]
        )
        if request is None:
            return
        try:
            saved, place = await db.run(
                chat_saves.save_edit, owner_id=owner, message_id=wanted, text=text
            )
        except convo.ConversationNotFound:
            return
        if saved.conversation_id != conversation_id:
            return
        self._show([*kept, message_view(saved, place)])
        self._accept(request, parent_id=saved.id or 0)
        await self._refresh_conversations(owner)
        return type(self).stream_reply

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
        shown = await db.run(branches.show_alternative, owner_id=owner, message_id=wanted, step=way)
        if shown is None or shown.conversation_id != conversation_id:
            return
        self.editing_id = 0
        self.feedback_form_for = 0
        await self._load_messages(owner, conversation_id)
