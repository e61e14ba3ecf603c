"""The alert loop: one check every ALERT_CHECK_INTERVAL_SECONDS, for the server's life.

Registered with ``app.register_lifespan_task``, so every worker of every instance
runs it; the database claims in ``chatmon.services.alerts.store`` let exactly one of
them claim each transition (delivery is then at least once, with a stable dedupe key).
The check itself (SQL, SMTP, HTTP) runs in a worker thread:
the event loop that streams chat replies never waits on it. A failed check is
logged and the loop goes on.

After each check the heartbeat (``HEARTBEAT_URL``, :mod:`chatmon.services.heartbeat`)
hears how it went: a good check pings the outside watcher (once per interval across
workers), a failed one pings its failure URL. When this loop stops, so do the pings.
The synthetic probe (``PROBE_INTERVAL_SECONDS``, :mod:`chatmon.services.probe`) starts
after a check too, as a task of its own: a provider that hangs for minutes delays the
next probe, never the next check. The scheduled digest (``DIGEST_SCHEDULE``,
:mod:`chatmon.services.digest_send`) is asked after a check the same way.
"""

from __future__ import annotations

import asyncio
import logging
import random

from chatmon.observability import series
from chatmon.services import alert_clock, build
from chatmon.services.alerts import AlertEngine, CheckReport, build_engine
from chatmon.services.digest_send import DigestOutcome, DigestSender
from chatmon.services.heartbeat import Heartbeat
from chatmon.services.probe import Probe, ProbeOutcome
from chatmon.settings import get_settings

log = logging.getLogger(__name__)


async def check_once(engine: AlertEngine) -> CheckReport | None:
    """One check in a worker thread; None (and a logged error) if it failed.

    Either way ``alert_clock`` hears of it, so ``/health`` can tell a stuck or
    failing alert loop from a healthy one.
    """
    try:
        report = await asyncio.to_thread(engine.check)
    except Exception:
        log.exception("alert check failed; trying again at the next interval")
        alert_clock.record_alert_check(ok=False)
        return None
    alert_clock.record_alert_check(ok=True)
    return report


async def alert_monitor() -> None:
    """Run alert checks until the server shuts down (the task is then cancelled)."""
    settings = get_settings()
    running = await asyncio.to_thread(build.current)
    series.BUILD_INFO.labels(version=running.version, revision=running.revision).set(1)
    engine = build_engine(settings)
    heartbeat = Heartbeat.from_settings(settings, engine=engine.database)
    probe = Probe.from_settings(settings, engine=engine.database)
    probing: asyncio.Task[ProbeOutcome | None] | None = None
    digests = DigestSender.from_settings(settings, engine=engine.database)
    digesting: asyncio.Task[list[DigestOutcome]] | None = None
    interval = settings.alert_check_interval_seconds
    log.info(
        "alert checks every %s s on channels: %s; heartbeat %s; probe %s; digest %s",
        interval,
        ", ".join(engine.channel_names) or "none configured",
        f"every {settings.heartbeat_interval_seconds:g} s" if heartbeat else "off",
        f"every {settings.probe_interval_seconds:g} s" if probe else "off",
        f"{settings.digest_schedule} at {settings.digest_hour:02d}:00" if digests else "off",
    )
    # Workers start together; a random first delay spreads their checks over the interval.
    await asyncio.sleep(random.uniform(0, interval))
    try:
        while True:
            report = await check_once(engine)
            if heartbeat is not None:
                await heartbeat.after_check(ok=report is not None)
            if probe is not None and (probing is None or probing.done()):
                probing = asyncio.create_task(probe.run_if_due())
            if digests is not None and (digesting is None or digesting.done()):
                digesting = asyncio.create_task(digests.run_if_due())
            await asyncio.sleep(interval)
    finally:
        for task in (probing, digesting):
            if task is not None:
                task.cancel()
