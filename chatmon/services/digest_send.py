"""Sending the spend digest on its schedule, once per period across every process.

``DIGEST_SCHEDULE=daily`` sends the digest of the day that ended at ``DIGEST_HOUR``
(hours of ``BUDGET_TIMEZONE``) just after that hour; ``weekly`` sends the week's each
Monday at that hour. It goes by email and to Slack through the alert channels
(:mod:`chatmon.services.alerts.channels`: the same SMTP/TLS, login, webhook and send
deadlines), whichever are configured.

Every worker of every instance asks after each alert check; each channel's run is a
periodic claim of its own (``digest:<schedule>:<hour>:<channel>``,
:mod:`chatmon.services.periodic`), due at the next scheduled moment, so exactly one
process sends each period's digest to each channel, and a channel that fails does not
make the other send twice. A claim is a lease of :data:`LEASE_SECONDS`: a failed send
is recorded on the claim (``last_error``, ``chatmon_digests_total{result="failed"}``, a
warning in the log) and retried when the lease ends, by whichever process asks first; a
process that died mid-send is taken over the same way. Delivery is therefore at least
once, with a dedupe key per period and channel (the email's ``Message-ID``, a field of
the Slack payload).

"Now" is the database's clock, as for every claim, and the digest covers the period up to
the scheduled moment, not up to the send: a retry, or a send after downtime, says the same
thing. After downtime only the latest period is sent. A fresh install sends nothing until
the first scheduled moment. Nothing here raises into the alert loop, and nothing blocks
the event loop (the work runs in a worker thread).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from chatmon.observability import series
from chatmon.services import digest, periodic
from chatmon.services.alerts.channels import (
    DeliveryError,
    EmailChannel,
    SlackChannel,
    configured_channels,
)
from chatmon.services.alerts.db_clock import db_now
from chatmon.services.sql_time import to_utc
from chatmon.settings import Settings

log = logging.getLogger(__name__)

CLAIM_PREFIX = "digest"
LEASE_SECONDS = 300.0  # one run's claim (far over a send deadline); a failure retries after it
WEEKLY_ON = 0  # Monday (date.weekday())
STEPS = {"daily": timedelta(days=1), "weekly": timedelta(days=7)}

DigestChannel = EmailChannel | SlackChannel


@dataclass(frozen=True)
class Slots:
    """The scheduled moments around now (UTC): the latest one passed, and the next."""

    latest: datetime
    following: datetime


def slots(now: datetime, *, schedule: str, hour: int, zone: ZoneInfo) -> Slots:
    """The scheduled moments before and after ``now``: ``hour`` o'clock in ``zone`` each
    day, or each Monday. Counted in calendar days of ``zone``, so a daylight-saving
    change moves nothing: the digest still goes at 08:00 local time."""
    step = STEPS[schedule]
    local = to_utc(now).astimezone(zone)
    day = local.date()
    if schedule == "weekly":
        day -= timedelta(days=(day.weekday() - WEEKLY_ON) % 7)

    def at(moment: date) -> datetime:
        return datetime.combine(moment, time(hour), tzinfo=zone).astimezone(UTC)

    if at(day) > to_utc(now):
        day -= step
    return Slots(latest=at(day), following=at(day + step))


def claim_name(*, schedule: str, hour: int, channel: str) -> str:
    """The periodic claim of one channel's digest, e.g. ``digest:daily:08:email``. The hour
    is part of it: a new ``DIGEST_HOUR`` starts a row of its own, first due at the new
    hour, instead of one more digest at the old one."""
    return f"{CLAIM_PREFIX}:{schedule}:{hour:02d}:{channel}"


def delivery_key(*, schedule: str, slot: datetime, channel: str) -> str:
    """The dedupe key of one period's digest on one channel, e.g.
    ``chatmon-digest-daily-202612020800-email``."""
    return f"chatmon-digest-{schedule}-{to_utc(slot):%Y%m%d%H%M}-{channel}"


@dataclass(frozen=True)
class DigestOutcome:
    """One channel's send by this process."""

    channel: str
    key: str
    error: str | None  # None: delivered

    @property
    def ok(self) -> bool:
        return self.error is None


class DigestSender:
    """Sends the digest when it is due; the alert loop calls :meth:`run_if_due`."""

    def __init__(
        self, *, settings: Settings, engine: Engine, channels: list[DigestChannel] | None = None
    ) -> None:
        if settings.digest_schedule == "off":
            raise ValueError("DIGEST_SCHEDULE is off")
        self._settings = settings
        self._schedule = settings.digest_schedule
        self._hour = settings.digest_hour
        self._zone = ZoneInfo(settings.budget_timezone)
        self._engine = engine
        self._channels = channels if channels is not None else digest_channels(settings)

    @classmethod
    def from_settings(cls, settings: Settings, *, engine: Engine) -> DigestSender | None:
        """The sender the settings ask for, or None when DIGEST_SCHEDULE is off."""
        if settings.digest_schedule == "off":
            return None
        return cls(settings=settings, engine=engine)

    @property
    def channel_names(self) -> list[str]:
        return [channel.name for channel in self._channels]

    async def run_if_due(self) -> list[DigestOutcome]:
        """Send to every channel whose digest is due and not taken by another process;
        what this process sent (often nothing). Never raises."""
        try:
            return await asyncio.to_thread(self.run_due)
        except Exception:
            log.exception("digest run crashed; trying again at the next check")
            return []

    def run_due(self) -> list[DigestOutcome]:
        """:meth:`run_if_due`, blocking (in a worker thread, or the command line)."""
        try:
            with Session(self._engine) as session:
                now = session.execute(select(db_now())).scalar_one()
        except SQLAlchemyError as exc:
            log.warning("digest not checked (database: %s)", type(exc).__name__)
            return []
        moments = slots(now, schedule=self._schedule, hour=self._hour, zone=self._zone)
        built: digest.Digest | None = None
        outcomes = []
        for channel in self._channels:
            name = claim_name(schedule=self._schedule, hour=self._hour, channel=channel.name)
            try:
                token = self._claim(name, first_due=moments.following)
            except SQLAlchemyError as exc:
                log.warning("digest not claimed (database: %s)", type(exc).__name__)
                break
            if token is None:
                continue
            key = delivery_key(schedule=self._schedule, slot=moments.latest, channel=channel.name)
            try:
                built = built or self._build(moments.latest)
                error = deliver(channel, built, key=key, monitor_url=self._settings.monitor_url)
            except Exception as exc:  # recorded on the claim and retried after the lease
                log.exception("digest run failed on %s", channel.name)
                error = f"digest failed: {type(exc).__name__}"
            self._finish(name, token, error, next_due_at=moments.following)
            outcomes.append(DigestOutcome(channel=channel.name, key=key, error=error))
        return outcomes

    def send_now(self, *, now: datetime) -> list[DigestOutcome]:
        """Send the digest of the period ending ``now`` to every channel at once, claiming
        nothing (``python -m chatmon digest --send``: a preview in the real inboxes)."""
        built = self._build(now)
        stamp = f"{to_utc(now):%Y%m%d%H%M%S}"
        outcomes = []
        for channel in self._channels:
            key = f"chatmon-digest-manual-{stamp}-{channel.name}"
            error = deliver(channel, built, key=key, monitor_url=self._settings.monitor_url)
            outcomes.append(DigestOutcome(channel=channel.name, key=key, error=error))
        return outcomes

    def _build(self, end: datetime) -> digest.Digest:
        with Session(self._engine) as session:
            return digest.build(
                session=session, settings=self._settings, now=end, schedule=self._schedule
            )

    def _claim(self, name: str, *, first_due: datetime) -> str | None:
        with Session(self._engine) as session:
            token = periodic.claim(
                session=session, name=name, period=LEASE_SECONDS, first_due=first_due
            )
            session.commit()
            return token

    def _finish(self, name: str, token: str, error: str | None, *, next_due_at: datetime) -> None:
        try:
            with Session(self._engine) as session:
                periodic.finish(
                    session=session,
                    name=name,
                    token=token,
                    error=error,
                    retry_now=False,  # retried when the lease ends, not at every check
                    next_due_at=next_due_at,
                )
                session.commit()
        except SQLAlchemyError as exc:
            # the lease ends on its own: the digest is sent again then (at least once)
            log.warning("digest outcome not recorded (database: %s)", type(exc).__name__)


def digest_channels(settings: Settings) -> list[DigestChannel]:
    """The alert channels a digest goes to: email and Slack, when configured."""
    return [c for c in configured_channels(settings) if isinstance(c, EmailChannel | SlackChannel)]


def deliver(
    channel: DigestChannel, built: digest.Digest, *, key: str, monitor_url: str
) -> str | None:
    """Send ``built`` on ``channel``; the safe error text, or None when delivered. Counted
    in ``chatmon_digests_total`` and, when it fails, logged (never a secret: the
    channel's error text is made to be stored and shown)."""
    try:
        if isinstance(channel, EmailChannel):
            channel.send_mail(
                digest.email_message(
                    built,
                    sender=channel.sender,
                    recipients=channel.recipients,
                    key=key,
                    monitor_url=monitor_url,
                )
            )
        else:
            channel.post(digest.slack_payload(built, key=key, monitor_url=monitor_url))
    except DeliveryError as exc:
        series.DIGESTS.labels(channel=channel.name, result="failed").inc()
        log.warning("digest not sent by %s: %s", channel.name, exc)
        return str(exc)
    series.DIGESTS.labels(channel=channel.name, result="sent").inc()
    return None
