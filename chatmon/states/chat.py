"""ChatState: the chat page's controller. Coordinates services; holds no I/O of its own.

Database calls run in a worker thread (``db.run``) so a slow disk never stalls other
users' streams. The reply itself streams in a background event, which changes state
only inside ``async with self``.

Every handler can be called by any client, in any order, with any arguments: each one
checks who is asking (the server-issued identity cookie, :mod:`chatmon.states.browser`)
and the shape of what it was sent (:mod:`chatmon.states.args`) on its own.

The state is one Reflex state, ``chat``, assembled from mixins, one concern each (their
vars and handlers are bound to ``ChatState``: the page and clients still say
``chat.<name>``):

- :mod:`.chat_base`: the vars and the helpers every handler shares; what is on screen is
  worked out by :mod:`chatmon.presenters.chat_screen`;
- :mod:`.chat_reply`: sending a message and streaming its reply;
- :mod:`.chat_watch`: a reply streaming in another worker, dead workers' replies, the
  model's breaker;
- :mod:`.chat_actions`: regenerate, edit, switch alternative;
- :mod:`.chat_feedback`: ratings, reasons and comments;
- here: the page load and the conversations (sidebar, "Load earlier", export, settings).
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

import reflex as rx

from chatmon import db
from chatmon.presenters.chat_screen import ConversationView, MessageView
from chatmon.services import conversation_export
from chatmon.services import conversations as convo
from chatmon.services.identity import IDENTITY_PATH, legacy_owner_key
from chatmon.states import args, live
from chatmon.states.auth import AuthState
from chatmon.states.chat_actions import MessageActionsMixin
from chatmon.states.chat_base import NO_IDENTITY_NOTICE, current_provider_state
from chatmon.states.chat_feedback import FeedbackMixin
from chatmon.states.chat_watch import WatchMixin

log = logging.getLogger(__name__)

# States pickled before the split (Redis, several workers) name the views by this module.
__all__ = ["ChatState", "ConversationView", "MessageView"]


class ChatState(MessageActionsMixin, FeedbackMixin, WatchMixin, rx.State):
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
        self.provider_state = current_provider_state()
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

    @rx.event
    async def export_markdown(self):
        """Download the open conversation (its visible branch) as a Markdown file."""
        owner, conversation_id = await self._allowed_owner(), args.record_id(self.conversation_id)
        if owner is None or conversation_id is None:
            return None
        try:
            name, text = await db.run(
                conversation_export.conversation_markdown,
                owner_id=owner,
                conversation_id=conversation_id,
                exported_at=datetime.now(UTC),
            )
        except convo.ConversationNotFound:
            return None
        return rx.download(data=text, filename=name, mime_type="text/markdown")

    # ----- settings -----------------------------------------------------------------
    @rx.event
    def set_temperature(self, value: list[float] | float) -> None:
        """The slider reports a list of one value; anything but a finite number is ignored."""
        number = args.finite_number(value)
        if number is not None:
            self.temperature = round(min(2.0, max(0.0, number)), 2)


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


async def _send_whole_texts(live_state: rx.State) -> None:
    """For ``LiveState.resync``: this tab's finished replies again, text included."""
    chat = await live_state.get_state(ChatState)
    chat._send_whole_texts()


live.on_missing_text(_send_whole_texts)
