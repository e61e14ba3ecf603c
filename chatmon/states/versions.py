"""VersionsState: the monitor's "Did the change help?" card (part of the monitor page).

It loads when the card mounts, when its window changes and on its refresh button; the
read runs in a worker thread. Every handler checks monitor access first, and the only
argument (the window) must be one of :data:`versions_view.CHOICES`.
"""

from __future__ import annotations

import asyncio
import logging

import reflex as rx
from sqlmodel import Session

from chatmon.db import get_engine
from chatmon.services import stats, versions_view
from chatmon.services.versions_view import ChangeCard, VersionLine
from chatmon.states.auth import monitor_allowed

log = logging.getLogger(__name__)


def _read(window: str) -> versions_view.VersionsCard:
    start, end = stats.last(stats.parse_window(window))
    with Session(get_engine()) as session:
        return versions_view.load(session, start=start, end=end)


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
