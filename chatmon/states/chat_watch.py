"""What an open chat tab keeps an eye on: a reply streaming elsewhere, the model's breaker.

:class:`WatchMixin` is a Reflex state mixin of :class:`chatmon.states.chat.ChatState`
(the page's ``chat.watch_reply`` and ``chat.watch_provider``), with the recovery of
replies whose worker died, which the page load and ``watch_reply`` both run.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import timedelta

import reflex as rx

from chatmon import db
from chatmon.models import utc_now
from chatmon.services import branches, chat_messages, chat_saves
from chatmon.services.interrupted import publish_interrupted
from chatmon.services.reply_checkpoints import CHECKPOINT_SECONDS
from chatmon.settings import get_settings
from chatmon.states.chat_base import ChatBase, current_provider_state
from chatmon.states.chat_reply import reply_in_flight
from chatmon.states.tabs import tab_connected

# A reply not checkpointed (chatmon.states.chat_reply) for STALE_REPLY_SECONDS has lost
# its writer (a worker that died) and is marked interrupted by the next page load of
# its browser.
STALE_REPLY_SECONDS = 10.0

# How often an open tab looks at the circuit breaker, and the newest watch loop per
# tab (a reload starts a new one; the old one sees it and ends).
PROVIDER_POLL_SECONDS = 2.0
_provider_watchers: dict[str, str] = {}


class WatchMixin(ChatBase, mixin=True):
    """A tab's reply streaming in another worker, dead workers' replies, the breaker."""

    async def _recover_interrupted(self, owner: str) -> None:
        """Finish what a dead worker left: mark its replies interrupted, free the composer.

        A reply of this browser not checkpointed for ``STALE_REPLY_SECONDS`` lost its
        writer; it is kept as saved (with a note), and its request is recorded as
        ``interrupted``. This tab's busy flag is cleared when its own reply is gone.
        """
        stale_before = utc_now() - timedelta(seconds=STALE_REPLY_SECONDS)
        claimed = await db.run(
            chat_messages.interrupt_stale_replies, owner_id=owner, stale_before=stale_before
        )
        for message in claimed:
            publish_interrupted(message, owner=owner, model=get_settings().llm_model)
        if self.streaming and not await self._reply_alive():
            self._end_streaming()

    async def _reply_alive(self) -> bool:
        """Whether this tab's streaming reply still has a writer (here or on another worker)."""
        if reply_in_flight(self.router.session.client_token):
            return True
        message_id = self._reply_message_id
        if not message_id:  # accepted, its stream not started: a worker died in between?
            return time.time() - self._reply_accepted_at < STALE_REPLY_SECONDS
        row = await db.run(chat_saves.get_message, message_id=message_id)
        return row is not None and row.status == branches.STREAMING  # stale ones were just flipped

    async def _hide_what_the_reply_replaces(self) -> None:
        """A tab reloaded while its regenerated reply (or the reply to an edit) streams:
        show the conversation up to the message it answers, as before the reload, not
        the alternative it is replacing."""
        if not self._reply_message_id:
            return
        row = await db.run(chat_saves.get_message, message_id=self._reply_message_id)
        shown = self._shown()
        at = next((i for i, m in enumerate(shown) if row and m.id == row.parent_id), None)
        if at is not None:
            self._show(shown[: at + 1])

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
                current = current_provider_state()
                if current != shown:
                    async with self:
                        self.provider_state = shown = current
                await asyncio.sleep(PROVIDER_POLL_SECONDS)
        finally:
            if _provider_watchers.get(token) == watch_id:
                del _provider_watchers[token]
