"""The dead-man's switch: tell a watcher outside chatmon that the alert loop is alive.

chatmon's own alerts cannot report chatmon's death: when the process, its host or its
database dies, the alert loop dies with them. So after every good check cycle (the
database answered, every rule was evaluated) the loop pings ``HEARTBEAT_URL`` (the
Healthchecks.io / Uptime Kuma / Cronitor convention: a GET to a secret URL), at most
once per ``HEARTBEAT_INTERVAL_SECONDS`` across every worker and instance (claimed in
the database, :mod:`chatmon.services.periodic`). When the pings stop, the watcher
pages. After a failed cycle it pings ``HEARTBEAT_URL`` + ``HEARTBEAT_FAIL_SUFFIX``
(``/fail``) so the watcher pages at once instead of waiting for its grace time; that
ping cannot be claimed (the database is usually what failed), so each process sends at
most one per interval.

A failed ping is logged without the URL (it is the secret that lets anyone ping),
counted in ``chatmon_heartbeat_pings_total``, recorded on the claim and retried at the
next check. Nothing here raises into the alert loop, and nothing blocks the event
loop: the ping is async under a hard deadline, the claim runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

import httpx
from pydantic import SecretStr
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from chatmon.observability import series
from chatmon.services import periodic
from chatmon.services.secrets import mask_secrets
from chatmon.settings import Settings

log = logging.getLogger(__name__)

CLAIM_NAME = "heartbeat"
PING_TIMEOUT = 10.0  # one connect, read or write
PING_DEADLINE = 15.0  # the whole ping, whatever the watcher does
USER_AGENT = "chatmon-heartbeat"


@dataclass(frozen=True)
class PingOutcome:
    """One ping this process sent."""

    kind: str  # success | fail
    error: str | None  # None: the watcher answered 2xx

    @property
    def ok(self) -> bool:
        return self.error is None


class Heartbeat:
    """Pings for one process; thread-safe enough for one alert loop (its only caller)."""

    def __init__(
        self,
        *,
        url: SecretStr,
        interval: float,
        engine: Engine,
        fail_suffix: str = "/fail",
        timeout: float = PING_TIMEOUT,
        deadline: float = PING_DEADLINE,
    ) -> None:
        self._url = url
        self._interval = interval
        self._engine = engine
        self._fail_suffix = fail_suffix
        self._timeout = min(timeout, deadline)
        self._deadline = deadline
        self._last_fail_ping: float | None = None

    @classmethod
    def from_settings(cls, settings: Settings, *, engine: Engine) -> Heartbeat | None:
        """The heartbeat the settings ask for, or None when HEARTBEAT_URL is unset."""
        if settings.heartbeat_url is None:
            return None
        return cls(
            url=settings.heartbeat_url,
            interval=settings.heartbeat_interval_seconds,
            engine=engine,
            fail_suffix=settings.heartbeat_fail_suffix,
        )

    async def after_check(self, *, ok: bool) -> PingOutcome | None:
        """Ping after a check cycle that went ``ok`` or not; None when no ping was due
        (another process pinged within the interval, or this one already sent a failure
        ping). Never raises."""
        try:
            if ok:
                return await self._success_ping()
            return await self._fail_ping()
        except Exception:
            log.exception("heartbeat failed unexpectedly")
            return None

    async def _success_ping(self) -> PingOutcome | None:
        try:
            token = await asyncio.to_thread(self._claim)
        except SQLAlchemyError as exc:
            # the check passed but the database is gone now: that is a failed cycle
            log.warning("heartbeat not claimed (database: %s)", type(exc).__name__)
            return await self._fail_ping()
        if token is None:
            return None
        error = await self._ping(self._url.get_secret_value(), kind="success")
        try:
            await asyncio.to_thread(self._finish, token, error)
        except SQLAlchemyError as exc:
            log.warning("heartbeat outcome not recorded (database: %s)", type(exc).__name__)
        return PingOutcome(kind="success", error=error)

    async def _fail_ping(self) -> PingOutcome | None:
        if not self._fail_suffix:
            return None  # no failure signal configured: the missing ping says it
        now = time.monotonic()
        if self._last_fail_ping is not None and now - self._last_fail_ping < self._interval:
            return None
        self._last_fail_ping = now
        error = await self._ping(self._url.get_secret_value() + self._fail_suffix, kind="fail")
        return PingOutcome(kind="fail", error=error)

    def _claim(self) -> str | None:
        with Session(self._engine) as session:
            token = periodic.claim(session=session, name=CLAIM_NAME, period=self._interval)
            session.commit()
            return token

    def _finish(self, token: str, error: str | None) -> None:
        with Session(self._engine) as session:
            periodic.finish(session=session, name=CLAIM_NAME, token=token, error=error)
            session.commit()

    async def _ping(self, url: str, *, kind: str) -> str | None:
        """GET ``url`` within the deadline; the safe error text, or None when answered 2xx."""
        error: str | None = None
        try:
            async with asyncio.timeout(self._deadline):
                async with httpx.AsyncClient(
                    timeout=self._timeout, headers={"User-Agent": USER_AGENT}
                ) as client:
                    response = await client.get(url)
            if not response.is_success:
                error = f"HTTP {response.status_code} from the heartbeat URL"
        except TimeoutError:
            error = f"no answer within the {self._deadline:g} s heartbeat deadline"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__} from the heartbeat URL"
        if error is not None:
            error = mask_secrets(error.replace(self._url.get_secret_value(), "***"))
            log.warning("heartbeat %s ping failed: %s", kind, error)
        result = "sent" if error is None else "failed"
        series.HEARTBEATS.labels(kind=kind, result=result).inc()
        return error
