"""The state of the watchers outside the request path, for /health: the heartbeat's latest
ping, the synthetic probe's latest result and the scheduled digest's latest send on each
channel, as recorded in ``periodic_claim`` by
whichever process ran them (so every worker answers the same)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session

from chatmon.services import periodic
from chatmon.services.digest_send import claim_name, digest_channels
from chatmon.settings import Settings


def _run(session: Session, name: str) -> dict[str, Any]:
    run = periodic.last_run(session=session, name=name)
    if run is None or run.result is None:
        return {"status": "waiting", "last_run": None}
    return {
        "status": "ok" if run.result == periodic.SENT else "failing",
        "last_run": run.at.isoformat() if run.at else None,
        "error": run.error,  # a category or a safe error text, never a URL
        "consecutive_failures": run.consecutive_failures,
    }


def watchers_check(settings: Settings, *, engine: Engine) -> dict[str, Any]:
    """``{"status", "heartbeat", "probe", "digest"}``; status ``failing`` when a configured one
    failed its latest run (blocking: call it in a thread)."""
    check: dict[str, Any] = {}
    with Session(engine) as session:
        for name, configured in (
            ("heartbeat", settings.heartbeat_url is not None),
            ("probe", settings.probe_interval_seconds is not None),
        ):
            check[name] = _run(session, name) if configured else {"status": "not_configured"}
        check["digest"] = _digest(session, settings)
    failing = any(part["status"] == "failing" for part in check.values())
    check["status"] = "failing" if failing else "ok"
    return check


def _digest(session: Session, settings: Settings) -> dict[str, Any]:
    """The digest's latest send per channel; failing when one channel's latest failed."""
    if settings.digest_schedule == "off":
        return {"status": "not_configured"}
    channels = {
        channel.name: _run(
            session,
            claim_name(
                schedule=settings.digest_schedule, hour=settings.digest_hour, channel=channel.name
            ),
        )
        for channel in digest_channels(settings)
    }
    statuses = {run["status"] for run in channels.values()}
    status = "failing" if "failing" in statuses else "ok" if "ok" in statuses else "waiting"
    return {"status": status, "schedule": settings.digest_schedule, "channels": channels}
