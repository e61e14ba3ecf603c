"""One alert check: gather figures, judge every rule, claim transitions, deliver.

Blocking by design (SQL, smtplib, httpx's sync client): the lifespan task runs
:meth:`AlertEngine.check` in a worker thread, the CLI calls it directly. Channels
deliver in parallel threads of their own, so a hanging SMTP server never delays
Slack, and one channel's failure never touches the other's deliveries.

Every worker of every instance runs checks; the database claims in
:mod:`chatmon.services.alerts.store` make sure each transition is acted on once and
each delivery is held by one process at a time. Delivery itself is at least once: a
process that dies between sending and recording is taken over when its lease ends,
and its message is sent again with the same dedupe key.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from chatmon.models import AlertNotification
from chatmon.observability import series
from chatmon.services.alert_routing import Routing
from chatmon.services.alerts import changes, context, inputs, silences, store
from chatmon.services.alerts.catalog import evaluate
from chatmon.services.alerts.channels import Channel, DeliveryError
from chatmon.services.alerts.lifecycle import Action, plan
from chatmon.services.alerts.messages import (
    AlertMessage,
    build_message,
    channel_test_message,
    delivery_key,
)
from chatmon.services.alerts.rules import Finding, Observations, Rule, Thresholds
from chatmon.services.prompts import SystemPromptSource
from chatmon.settings import Settings

log = logging.getLogger(__name__)

# A delivery being sent is its claimer's for this long, on the database's clock (then a
# crashed sender's delivery is taken over). Four times a channel's SEND_DEADLINE (30 s):
# the claim's commit, reading the message and recording the outcome fit in the rest.
# Every channel's deadline must be shorter (checked when an engine is made).
# Failed deliveries stop being retried after MAX_RETRY_AGE.
SEND_LEASE = timedelta(minutes=2)
MAX_RETRY_AGE = timedelta(hours=24)
MAX_BACKOFF = timedelta(minutes=5)


@dataclass(frozen=True)
class RuleOutcome:
    """One rule's result in one check: the finding, and what this process did about it."""

    finding: Finding
    action: Action


@dataclass(frozen=True)
class DeliveryOutcome:
    """One delivery attempt made by this process."""

    rule: str
    kind: str
    channel: str
    error: str | None  # None: sent
    recorded: bool = True  # False: the lease had passed to another process, whose outcome stands

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class CheckReport:
    """What one check saw and did (printed by ``python -m chatmon alerts check``)."""

    checked_at: datetime
    rules: list[RuleOutcome] = field(default_factory=list)
    deliveries: list[DeliveryOutcome] = field(default_factory=list)


def retry_delay(*, attempts: int, interval: float) -> timedelta:
    """Wait before retrying a failed delivery: the next check, then doubling, up to 5 min
    (or one interval, if checks are further apart than that)."""
    delay = timedelta(seconds=interval * 2 ** max(attempts - 1, 0))
    return min(delay, max(MAX_BACKOFF, timedelta(seconds=interval)))


class AlertEngine:
    """Checks and delivers alerts for one process. Thread-safe: it keeps no state."""

    def __init__(
        self,
        *,
        db_engine: Engine,
        settings: Settings,
        channels: Sequence[Channel],
        breaker_snapshot: Callable[[], dict[str, str]] = dict,
        clock: Callable[[], datetime] = inputs.now_utc,
        lease: timedelta = SEND_LEASE,
    ) -> None:
        """``clock`` is this host's, for judging rules; leases and retry times are on the
        database's clock. Raises ValueError if a channel's send deadline is not shorter
        than ``lease``: a send could then outlive the lease and race its taker."""
        for channel in channels:
            if channel.deadline >= lease.total_seconds():
                raise ValueError(
                    f"the {channel.name} channel's send deadline ({channel.deadline:g} s) must"
                    f" be shorter than the delivery lease ({lease.total_seconds():g} s)"
                )
        self._lease = lease
        self._db_engine = db_engine
        self._settings = settings
        self._channels = {channel.name: channel for channel in channels}
        self._breaker_snapshot = breaker_snapshot
        self._clock = clock
        self.limits = Thresholds.from_settings(settings)
        self.cooldown = timedelta(hours=settings.alert_cooldown_hours)
        self.routing = Routing.from_settings(settings, rules=[rule.value for rule in Rule])
        self._prompts = SystemPromptSource(settings.system_prompt_path)

    @property
    def channel_names(self) -> list[str]:
        return list(self._channels)

    @property
    def breaker_lookback(self) -> timedelta:
        """How recent a ``circuit_open`` refusal must be to count as an open breaker."""
        return timedelta(seconds=max(2 * self._settings.alert_check_interval_seconds, 60))

    @property
    def database(self) -> Engine:
        """The database this engine checks against (the heartbeat claims its pings there)."""
        return self._db_engine

    def _session(self) -> Session:
        return Session(self._db_engine, expire_on_commit=False)

    # ------------------------------------------------------------------------- checking

    def observe(self, now: datetime | None = None) -> tuple[Observations, list[Finding]]:
        """The figures and every rule's finding, without changing anything."""
        now = now or self._clock()
        lookback = self.breaker_lookback
        with self._session() as session:
            obs = inputs.gather(
                session=session,
                limits=self.limits,
                now=now,
                open_breakers=self._breaker_snapshot(),
                breaker_lookback=lookback,
            )
        return obs, evaluate(obs, self.limits)

    def check(self) -> CheckReport:
        """Evaluate every rule once, act on transitions, and deliver what is due."""
        now = self._clock()
        with self._session() as session:
            store.ensure_rules(session=session, rules=[rule.value for rule in Rule], now=now)
            session.commit()
        self._record_changes(now)
        obs, findings = self.observe(now)
        outcomes = [self._act(finding, obs) for finding in findings]
        return CheckReport(checked_at=now, rules=outcomes, deliveries=self.deliver_due(now))

    def _record_changes(self, now: datetime) -> None:
        channels = list(self._channels)
        current = changes.fingerprint(self._settings, prompts=self._prompts, channels=channels)
        with self._session() as session:
            changes.record(session=session, current=current, now=now)
            session.commit()

    def _act(self, finding: Finding, obs: Observations) -> RuleOutcome:
        now = obs.now
        with self._session() as session:
            seen = store.rule_state(session=session, rule=finding.rule.value)
            step = plan(seen, finding, now=now, cooldown=self.cooldown)
            if step.action is Action.NONE:
                return RuleOutcome(finding, Action.NONE)
            message = self._message(session, step.action, finding, obs, seen.firing_since)
            if not store.claim_transition(
                session=session, rule=finding.rule.value, seen=seen, new=step.state, now=now
            ):
                session.rollback()  # another worker acted on this finding first
                return RuleOutcome(finding, Action.NONE)
            silenced: list[str] = []
            if message is not None:
                channels = self.routing.channels_for(finding.rule.value, self._channels)
                silence = silences.active_silences(session=session, now=now).get(finding.rule.value)
                if silence is not None:  # recorded, with the silence noted; sent nowhere
                    summary = f"({silence.note()}) {message.summary}"
                    message = dataclasses.replace(message, summary=summary)
                    silenced, channels = channels, []
                store.add_notification(
                    session=session,
                    message=message,
                    value=finding.value,
                    threshold=finding.threshold,
                    channels=channels,
                    now=now,
                )
            session.commit()
        self._count_suppressed(finding, step.action)
        for name in silenced:
            labels = {"rule": finding.rule.value, "channel": name, "result": "suppressed"}
            series.ALERTS.labels(**labels).inc()
        log.info("alert %s %s: %s", finding.rule.value, step.action.value, finding.summary)
        return RuleOutcome(finding, step.action)

    def _message(
        self,
        session: Session,
        action: Action,
        finding: Finding,
        obs: Observations,
        firing_since: datetime | None,
    ) -> AlertMessage | None:
        if not action.sends:
            return None
        if action is Action.FIRE:
            firing_since = obs.now
        evidence = inputs.evidence(session=session, finding=finding, obs=obs, limits=self.limits)
        message = build_message(
            kind=action.message_kind,
            finding=finding,
            evidence=evidence,
            window_minutes=self.limits.window_minutes,
            checked_at=obs.now,
            firing_since=firing_since,
            monitor_url=self._settings.monitor_url,
        )
        return context.annotate(
            message,
            session=session,
            routing=self.routing,
            now=obs.now,
            firing_since=firing_since,
            window_minutes=self.limits.window_minutes,
        )

    def _count_suppressed(self, finding: Finding, action: Action) -> None:
        if action is Action.SUPPRESS:
            for name in self._channels:
                labels = {"rule": finding.rule.value, "channel": name, "result": "suppressed"}
                series.ALERTS.labels(**labels).inc()

    # ------------------------------------------------------------------------- delivering

    def deliver_due(self, now: datetime | None = None) -> list[DeliveryOutcome]:
        """Send every delivery due on this process's channels, each channel in a thread."""
        now = now or self._clock()
        with self._session() as session:
            due = store.due_deliveries(
                session=session, channels=self._channels, now=now, max_age=MAX_RETRY_AGE
            )
        if not due:
            return []
        by_channel: dict[str, list[store.DueDelivery]] = {}
        for item in due:
            by_channel.setdefault(item.channel, []).append(item)
        with ThreadPoolExecutor(max_workers=len(by_channel)) as pool:
            batches = pool.map(self._deliver_all, by_channel.values())
            return [outcome for batch in batches for outcome in batch]

    def _deliver_all(self, items: list[store.DueDelivery]) -> list[DeliveryOutcome]:
        outcomes = []
        for item in items:
            outcome = self._deliver_one(item)
            if outcome is not None:
                outcomes.append(outcome)
        return outcomes

    def _deliver_one(self, item: store.DueDelivery) -> DeliveryOutcome | None:
        """Claim, send, record. The claim is taken just before the send, not for the whole
        batch: a channel with a queue of slow deliveries must not outlive its own leases.
        The outcome is recorded only if this claim still holds the delivery."""
        with self._session() as session:
            claim = store.claim_delivery(
                session=session,
                notification_id=item.notification_id,
                channel=item.channel,
                lease=self._lease,
                now=self._clock(),
            )
            session.commit()
            if claim is None:
                return None  # another process is on it, or already sent it
            out = store.outgoing(
                session=session, notification_id=item.notification_id, channel=item.channel
            )
        error = self._send(self._channels[item.channel], out.message, out.key)
        delay = retry_delay(
            attempts=claim.attempt, interval=self._settings.alert_check_interval_seconds
        )
        with self._session() as session:
            recorded = store.finish_delivery(
                session=session, claim=claim, error=error, retry_after=delay, now=self._clock()
            )
            session.commit()
        if not recorded:
            log.warning(
                "alert %s to %s: lease lost before recording (%s); another process took over",
                item.rule,
                item.channel,
                "sent" if error is None else "failed",
            )
        return DeliveryOutcome(
            rule=item.rule,
            kind=out.message.kind,
            channel=item.channel,
            error=error,
            recorded=recorded,
        )

    def _send(self, channel: Channel, message: AlertMessage, key: str) -> str | None:
        """Send and count; returns the safe error text, or None when sent."""
        try:
            channel.send(message, key=key)
        except DeliveryError as exc:
            error: str | None = str(exc)
        except Exception as exc:
            log.exception("alert channel %s crashed", channel.name)
            error = f"unexpected {type(exc).__name__}"
        else:
            error = None
        result = "sent" if error is None else "failed"
        series.ALERTS.labels(rule=message.rule, channel=channel.name, result=result).inc()
        if error is not None:
            log.warning("alert %s to %s failed: %s", message.rule, channel.name, error)
        return error

    # ------------------------------------------------------------------------- testing

    def send_test(self) -> list[DeliveryOutcome]:
        """A test message to every channel, now, in parallel; never retried.

        Recorded in the alert history when the database is reachable; a test of the
        channels does not depend on it. Its deliveries are created already claimed by
        this call, so no check ever takes them over.
        """
        now = self._clock()
        message = channel_test_message(checked_at=now, monitor_url=self._settings.monitor_url)
        token = store.new_claim_token()
        note = self._record_test(message, now, token)
        keys = {name: self._test_key(note, name) for name in self._channels}
        with ThreadPoolExecutor(max_workers=max(len(self._channels), 1)) as pool:
            errors = list(
                pool.map(lambda ch: self._send(ch, message, keys[ch.name]), self._channels.values())
            )
        outcomes = [
            DeliveryOutcome(rule="test", kind="test", channel=name, error=error)
            for name, error in zip(self._channels, errors, strict=True)
        ]
        if note is not None and note.id is not None:
            self._record_test_results(note.id, token, outcomes)
        return outcomes

    @staticmethod
    def _test_key(note: AlertNotification | None, channel: str) -> str:
        if note is None or note.id is None:  # not recorded: a key of its own all the same
            return f"chatmon-test-{uuid.uuid4().hex}-{channel}"
        return delivery_key(notification_id=note.id, created_at=note.created_at, channel=channel)

    def _record_test(
        self, message: AlertMessage, now: datetime, token: str
    ) -> AlertNotification | None:
        try:
            with self._session() as session:
                note = store.add_notification(
                    session=session,
                    message=message,
                    value=None,
                    threshold=None,
                    channels=self._channels,
                    now=now,
                    claimed_by=token,
                )
                session.commit()
                return note
        except SQLAlchemyError as exc:
            log.warning("test message not recorded (database: %s)", type(exc).__name__)
            return None

    def _record_test_results(
        self, note_id: int, token: str, outcomes: list[DeliveryOutcome]
    ) -> None:
        with self._session() as session:
            for outcome in outcomes:
                claim = store.Claim(note_id, outcome.channel, rule="test", attempt=1, token=token)
                store.finish_delivery(
                    session=session,
                    claim=claim,
                    error=outcome.error,
                    retry_after=None,
                    now=self._clock(),
                )
            session.commit()
