"""Two more HTTP channels: a generic JSON webhook and PagerDuty's Events API v2.

Both ride on the Slack channel's machinery (:mod:`chatmon.services.alerts.channels`): a
POST on an event loop of its own, cancelled at the hard send deadline, errors that name
what failed and never the URL or the routing key. Like every channel they run in the
engine's worker threads, and a failure is recorded and retried by the engine.

Two keys, for two kinds of deduplication:

- the **delivery key** (``chatmon-42-…-webhook``, from ``messages.delivery_key``) is the
  same on every attempt of one notification: a receiver that sees it twice is seeing a
  retry (at-least-once delivery) and drops the repeat;
- the **episode key** (``chatmon-error_rate-20261126140712``: rule and firing start) is
  shared by an episode's firing, reminders and resolved message. PagerDuty needs exactly
  that as its ``dedup_key``: a trigger opens (or, repeated, joins) one incident, and the
  resolve with the same key closes it.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import asdict, dataclass
from typing import Any

import httpx
from pydantic import SecretStr

from chatmon.services.alerts.channels import (
    SEND_DEADLINE,
    SLACK_TIMEOUT,
    Channel,
    DeliveryError,
    _deadline_error,
    _DeadlinePassed,
    _on_own_loop,
    _safe,
)
from chatmon.services.alerts.messages import AlertMessage, facts, subject
from chatmon.settings import Settings

WEBHOOK_PAYLOAD_VERSION = "1"
USER_AGENT = "chatmon-alerts"
PAGERDUTY_SEVERITIES = {"critical": "critical", "warning": "warning"}  # else "info"


def episode_key(message: AlertMessage) -> str:
    """The key shared by one episode's messages: rule and the moment it started firing."""
    if not message.firing_since:
        return f"chatmon-{message.rule}-{message.kind}-{message.checked_at}"
    return f"chatmon-{message.rule}-{re.sub(r'[^0-9]', '', message.firing_since)}"


def _iso(stamp: str | None) -> str | None:
    """``2026-11-26 14:07:12 UTC`` (how messages show times) as ISO 8601."""
    if not stamp:
        return None
    return stamp.removesuffix(" UTC").replace(" ", "T") + "Z"


def webhook_payload(message: AlertMessage, *, key: str) -> dict[str, Any]:
    """The generic webhook's JSON (documented in the README, version 1): every fact of
    the message, machine-readable, with both keys."""
    data = asdict(message)
    data["top_error_categories"] = [
        {"category": name, "count": count} for name, count in message.top_error_categories
    ]
    return {
        "version": WEBHOOK_PAYLOAD_VERSION,
        "source": "chatmon",
        "dedupe_key": key,
        "episode_key": episode_key(message),
        "status": "resolved" if message.kind == "resolved" else message.kind,
        "subject": subject(message),
        **data,
        "checked_at": _iso(message.checked_at),
        "firing_since": _iso(message.firing_since),
    }


def _post(
    url: str, payload: dict[str, Any], *, headers: dict[str, str], timeout: float, deadline: float
) -> httpx.Response:
    async def post() -> httpx.Response:
        async with httpx.AsyncClient(timeout=min(timeout, deadline)) as client:
            return await client.post(url, json=payload, headers=headers)

    return _on_own_loop(post(), deadline)


@dataclass
class WebhookChannel:
    """Any HTTP endpoint that takes JSON: one POST, success is HTTP 2xx. The delivery key
    also travels as the ``Idempotency-Key`` header."""

    url: SecretStr
    timeout: float = SLACK_TIMEOUT
    deadline: float = SEND_DEADLINE
    name: str = "webhook"

    def send(self, message: AlertMessage, *, key: str) -> None:
        url = self.url.get_secret_value()
        headers = {"User-Agent": USER_AGENT, "Idempotency-Key": key}
        try:
            response = _post(
                url,
                webhook_payload(message, key=key),
                headers=headers,
                timeout=self.timeout,
                deadline=self.deadline,
            )
        except _DeadlinePassed:
            raise _deadline_error(self.deadline, "the webhook") from None
        except httpx.HTTPError as exc:
            raise DeliveryError(_safe(f"{type(exc).__name__} from the webhook", url)) from None
        if not response.is_success:
            body = response.text.strip().replace("\n", " ")[:100]
            raise DeliveryError(_safe(f"HTTP {response.status_code} from the webhook: {body}", url))


def pagerduty_event(
    message: AlertMessage, *, routing_key: str, action: str, dedup_key: str
) -> dict[str, Any]:
    """One Events API v2 event: ``trigger`` (with the payload) or ``resolve``."""
    event: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": action,
        "dedup_key": dedup_key,
    }
    if action == "trigger":
        details: dict[str, Any] = dict(facts(message))
        if message.top_error_categories:
            details["Top error categories"] = dict(message.top_error_categories)
        if message.correlation_ids:
            details[message.correlation_label] = message.correlation_ids
        event.update(
            payload={
                "summary": subject(message)[:1024],
                "source": "chatmon",
                "severity": PAGERDUTY_SEVERITIES.get(message.severity, "info"),
                "timestamp": _iso(message.checked_at),
                "component": "chatmon",
                "group": message.rule,
                "class": message.rule,
                "custom_details": details,
            },
            client="chatmon",
            client_url=message.monitor_url,
            links=[{"href": message.monitor_url, "text": "Open the monitor"}],
        )
    return event


@dataclass
class PagerDutyChannel:
    """PagerDuty Events API v2: firing and reminders ``trigger``, resolved ``resolve``,
    all with the episode's ``dedup_key``; success is HTTP 202. The channel test triggers
    an ``info`` event and resolves it at once, so nobody is left with an open incident."""

    routing_key: SecretStr
    events_url: str = "https://events.pagerduty.com/v2/enqueue"
    timeout: float = SLACK_TIMEOUT
    deadline: float = SEND_DEADLINE
    name: str = "pagerduty"

    def send(self, message: AlertMessage, *, key: str) -> None:
        routing_key = self.routing_key.get_secret_value()
        if message.kind == "test":
            dedup = f"chatmon-test-{uuid.uuid4().hex}"
            self._enqueue(
                pagerduty_event(message, routing_key=routing_key, action="trigger", dedup_key=dedup)
            )
            self._enqueue(
                pagerduty_event(message, routing_key=routing_key, action="resolve", dedup_key=dedup)
            )
            return
        action = "resolve" if message.kind == "resolved" else "trigger"
        event = pagerduty_event(
            message, routing_key=routing_key, action=action, dedup_key=episode_key(message)
        )
        self._enqueue(event)

    def _enqueue(self, event: dict[str, Any]) -> None:
        secret = self.routing_key.get_secret_value()
        headers = {"User-Agent": USER_AGENT}
        try:
            response = _post(
                self.events_url,
                event,
                headers=headers,
                timeout=self.timeout,
                deadline=self.deadline,
            )
        except _DeadlinePassed:
            raise _deadline_error(self.deadline, "PagerDuty") from None
        except httpx.HTTPError as exc:
            raise DeliveryError(_safe(f"{type(exc).__name__} from PagerDuty", secret)) from None
        if response.status_code != 202:
            try:
                reply = response.json()
                detail = f"{reply.get('message', '')} {'; '.join(reply.get('errors') or [])}"
            except ValueError:
                detail = response.text[:100]
            text = f"HTTP {response.status_code} from PagerDuty: {detail.strip()}"
            raise DeliveryError(_safe(text, secret))


def http_channels(settings: Settings) -> list[Channel]:
    """The webhook (ALERT_WEBHOOK_URL) and PagerDuty (PAGERDUTY_ROUTING_KEY) channels the
    settings turn on (possibly none)."""
    channels: list[Channel] = []
    if settings.alert_webhook_url is not None:
        channels.append(WebhookChannel(url=settings.alert_webhook_url))
    if settings.pagerduty_routing_key is not None:
        channels.append(
            PagerDutyChannel(
                routing_key=settings.pagerduty_routing_key, events_url=settings.pagerduty_events_url
            )
        )
    return channels
