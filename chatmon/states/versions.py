"""VersionsState: the monitor's "Did the change help?" card (part of the monitor page).

It loads when the card mounts, when its window changes and on its refresh button; the
read runs in a worker thread. Every handler checks monitor access first, and the only
argument (the window) must be one of :data:`chatmon.presenters.versions.CHOICES`.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time

import reflex as rx
from sqlmodel import Session

from chatmon.db import get_engine
from chatmon.presenters import versions as versions_view
from chatmon.presenters.versions import ChangeCard, VersionLine
from chatmon.services import stats
from chatmon.states.auth import monitor_allowed

log = logging.getLogger(__name__)


# The card reads the prompt-version rollups (plus the edge hours' rows) for each side of
# every change. One read per window per minute serves every monitor tab of the worker,
# and a refresh button pressed in a loop does not start a read each time.
CARD_TTL_SECONDS = 60.0
_cards: dict[str, tuple[float, versions_view.VersionsCard]] = {}
_read_lock = threading.Lock()


def _read(window: str) -> versions_view.VersionsCard:
    with _read_lock:  # one read at a time; those waiting find its result
        cached = _cards.get(window)
        if cached is not None and time.monotonic() - cached[0] < CARD_TTL_SECONDS:
            return cached[1]
        start, end = stats.last(stats.parse_window(window))
        with Session(get_engine()) as session:
            card = versions_view.load(session, start=start, end=end)
        _cards[window] = (time.monotonic(), card)
        return card


class VersionsState(rx.State):
    """Each prompt or model change of the window, before and after."""

    window: str = versions_view.DEFAULT
    changes: list[ChangeCard] = []
    versions: list[VersionLine] = []
    loaded: bool = False
    loading: bool = False
    error: str = ""

    async def _reload(self) -> None:
        if not await monitor_allowed(self):
            return
        self.loading = True
        try:
            card = await asyncio.to_thread(_read, self.window)
            self.changes, self.versions = card.changes, card.versions
            self.loaded, self.error = True, ""
        except Exception:
            log.exception("versions card: loading failed")
            self.error = "Could not read the prompt versions. Is the database reachable?"
        finally:
            self.loading = False

    @rx.event
    async def load(self) -> None:
        """The card is shown, or its refresh button was pressed."""
        await self._reload()

    @rx.event
    async def set_window(self, window: str) -> None:
        """Compare over the last 24 h or 7 days."""
        if isinstance(window, str) and window in versions_view.CHOICES:
            self.window = window
            await self._reload()
