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
from datetime import UTC, datetime

import reflex as rx
from sqlmodel import Session

from chatmon import access, db
from chatmon.presenters.alerts_panel import (
    AlertsPanel,
    AttemptRow,
    HistoryRow,
    RuleRow,
    load_panel,
)
from chatmon.services.alerts import AlertEngine, build_engine, silences
from chatmon.services.alerts.rules import Rule
from chatmon.settings import get_settings
from chatmon.states.args import form_text
from chatmon.states.auth import monitor_allowed

log = logging.getLogger(__name__)

REFRESH_SECONDS = 15


@functools.cache
def _alert_engine() -> AlertEngine:
    return build_engine(get_settings())


def _read(*, session: Session) -> AlertsPanel:
    return load_panel(session=session, engine=_alert_engine())


RULE_NAMES = [rule.value for rule in Rule]


def _silence(*, session: Session, rule: str, duration: str, reason: str, by: str) -> None:
    """Validate and add a silence (raises ValueError with a message for the panel)."""
    length = silences.parse_duration(duration)
    silences.add_silence(
        session=session, rule=rule, duration=length, reason=reason, by=by, now=datetime.now(UTC)
    )


def _unsilence(*, session: Session, rule: str) -> None:
    silences.clear_silences(session=session, rule=rule, now=datetime.now(UTC))


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
    silence_notice: str = ""  # the silence form's answer ("" until used)

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
            self._show(await db.run(_read))
        except Exception:
            log.exception("alerts panel: loading failed")
            self.error = "Could not read the alert state. Is the database reachable?"
        finally:
            self.loading = False

    @rx.event
    async def refresh(self) -> None:
        """Reload now (the panel's refresh button)."""
        await self._reload()

    def _monitor_user(self) -> str:
        """Who is signed in to the monitor, for the silence's "by" (MONITOR_AUTH=off: nobody)."""
        token = access.cookies_of(self.router.headers.cookie).get(access.SESSION_COOKIE)
        return access.monitor_user_for_token(token) or "monitor (no sign-in)"

    @rx.event
    async def silence_rule(self, form_data: dict) -> None:
        """The silence form: rule, duration (30m, 2h, 1d) and a reason. Any client can
        call this with anything: checked for access, then every field validated."""
        if not await monitor_allowed(self):
            return
        rule = form_text(form_data, "rule")
        duration = form_text(form_data, "duration")
        reason = form_text(form_data, "reason")
        if rule not in RULE_NAMES or duration is None or reason is None:
            self.silence_notice = "Choose a rule, a duration and a reason."
            return
        try:
            await db.run(
                _silence,
                rule=rule,
                duration=duration[:20],
                reason=reason[:500],
                by=self._monitor_user(),
            )
        except ValueError as exc:
            self.silence_notice = str(exc)
            return
        except Exception:
            log.exception("alerts panel: silencing failed")
            self.silence_notice = "Could not store the silence. Is the database reachable?"
            return
        self.silence_notice = f"{rule} silenced for {duration}."
        await self._reload()

    @rx.event
    async def unsilence_rule(self, rule: str) -> None:
        """End a rule's silences now (the rule row's button)."""
        if not await monitor_allowed(self):
            return
        if not isinstance(rule, str) or rule not in RULE_NAMES:
            return
        try:
            await db.run(_unsilence, rule=rule)
        except Exception:
            log.exception("alerts panel: unsilencing failed")
            self.silence_notice = "Could not end the silence. Is the database reachable?"
            return
        self.silence_notice = f"{rule} is no longer silenced."
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
                panel = await db.run(_read)
            except Exception:
                log.exception("alerts panel: refresh failed")
                continue
            async with self:
                if self._loop_id == loop_id:
                    self._show(panel)
