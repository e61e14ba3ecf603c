"""AlertsState: the Alerts panel's controller (part of the monitor page).

Reads run in a worker thread. While the panel is mounted it reloads every
``REFRESH_SECONDS`` in a background event, which stops when the panel unmounts, the
tab disconnects or a newer loop (a reload of the page) takes over.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import uuid

import reflex as rx
from sqlmodel import Session

from chatmon.db import get_engine
from chatmon.services.alerts import AlertEngine, build_engine
from chatmon.services.alerts.panel import AlertsPanel, AttemptRow, HistoryRow, RuleRow, load_panel
from chatmon.settings import get_settings
from chatmon.states.auth import monitor_allowed

log = logging.getLogger(__name__)

REFRESH_SECONDS = 15


@functools.cache
def _alert_engine() -> AlertEngine:
    return build_engine(get_settings())


def _read() -> AlertsPanel:
    with Session(get_engine()) as session:
        return load_panel(session=session, engine=_alert_engine())


def _client_connected(token: str) -> bool:
    """Whether the browser tab behind ``token`` still has its websocket open here."""
    try:
        from reflex.utils.prerequisites import get_and_validate_app

        namespace = get_and_validate_app().app.event_namespace
    except Exception:  # noqa: BLE001 - cannot tell: the unmount still stops the loop
        return True
    return namespace is None or token in namespace.token_to_sid


class AlertsState(rx.State):
    """Every rule's state and the recent history of alert messages and deliveries."""

    rules: list[RuleRow] = []
    history: list[HistoryRow] = []
    attempts: list[AttemptRow] = []
    channels: str = ""
    error: str = ""
    loading: bool = False

    _loop_id: str = ""

    def _show(self, panel: AlertsPanel) -> None:
        self.rules = panel.rules
        self.history = panel.history
        self.attempts = panel.attempts
        self.channels = panel.channels
        self.error = ""

    async def _reload(self) -> None:
        if not await monitor_allowed(self):
            return
        self.loading = True
        try:
            self._show(await asyncio.to_thread(_read))
        except Exception:
            log.exception("alerts panel: loading failed")
            self.error = "Could not read the alert state. Is the database reachable?"
        finally:
            self.loading = False

    @rx.event
    async def refresh(self) -> None:
        """Reload now (the panel's refresh button)."""
        await self._reload()

    @rx.event
    async def mount(self):
        """The panel appeared: read it, then keep it fresh."""
        await self._reload()
        self._loop_id = uuid.uuid4().hex
        return AlertsState.refresh_loop(self._loop_id)

    @rx.event
    def unmount(self) -> None:
        """The panel went away: stop refreshing."""
        self._loop_id = ""

    @rx.event(background=True)
    async def refresh_loop(self, loop_id: str):
        """Reload every REFRESH_SECONDS while this loop is the current one."""
        token = self.router.session.client_token
        while True:
            await asyncio.sleep(REFRESH_SECONDS)
            async with self:
                if self._loop_id != loop_id:
                    return
                if not _client_connected(token) or not await monitor_allowed(self):
                    self._loop_id = ""
                    return
            try:
                panel = await asyncio.to_thread(_read)
            except Exception:
                log.exception("alerts panel: refresh failed")
                continue
            async with self:
                if self._loop_id == loop_id:
                    self._show(panel)
