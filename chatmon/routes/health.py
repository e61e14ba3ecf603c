"""GET /health: can chatmon serve, and will it tell someone when it cannot?

``status``:
  * ``down`` (HTTP 503): the database does not answer a query. Conversations cannot
    load or save and nothing is recorded: take this instance out of rotation.
  * ``degraded`` (HTTP 200): chat works but something needs a person: a configured
    model's circuit breaker is open or half-open (the provider is failing;
    ``checks.llm.breakers`` has every model's, LLM_FALLBACK_MODELS included), Langfuse is
    configured but unreachable (traces are being lost), the alert checker has not
    run for three check intervals or its last run failed (alerts would not fire), or
    this worker's recorder dropped request-log events in the last 15 minutes, or the
    heartbeat's latest ping or the synthetic probe's latest request failed
    (``checks.watchers``: the probe's error category, failures in a row); or the
    model's price is unknown (``checks.pricing``: cost figures and cost alerts cannot
    see its requests; the message names the fix).
  * ``starting`` (HTTP 200): this worker has not finished its LiteLLM warm-up
    (``chatmon.tasks.warm_up``); a reply sent now would wait for it. Balancers should ask
    ``/health/ready`` instead, which answers 503 meanwhile.
  * ``ok`` (HTTP 200): none of the above. No alert channel configured or the demo
    model are reported in ``checks`` but do not degrade: they are choices.

``checks.capacity`` shows the replies streaming and the tabs connected right now, summed
over the workers, beside the worker count and CPU cores (see docs/scaling.md).

``GET /health/ready``: 200 once this worker is warmed up and the database answers,
else 503; it also shows the synthetic probe's latest run (which does not make it
unready). ``GET /health/live``: 200 while the process answers at all.

The response never holds a secret: no key, password, token or webhook URL, only
whether each is set. Every check is bounded in time; Langfuse's reachability is
probed in the background and cached, so a hung Langfuse never slows /health.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import text
from starlette.requests import Request
from starlette.responses import JSONResponse

from chatmon import metrics
from chatmon.db import get_engine
from chatmon.services import alert_clock, build, pricing, readiness, recorder, tracing
from chatmon.services.watchers import watchers_check
from chatmon.settings import Settings, get_settings

LANGFUSE_CLOUD = "https://cloud.langfuse.com"
LANGFUSE_PROBE_TTL = 30.0  # seconds a reachability result is reused
LANGFUSE_PROBE_WAIT = 1.0  # longest /health waits for a fresh probe
ALERT_STALE_INTERVALS = 3
DATABASE_TIMEOUT = 5.0  # a database that does not answer in time counts as down
RECENT_DROP_SECONDS = 15 * 60  # dropped request-log events degrade health this long


def _database_check() -> dict[str, Any]:
    started = time.perf_counter()
    try:
        with get_engine().connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any failure means the database is unreachable
        return {"status": "down", "error": type(exc).__name__}
    return {"status": "ok", "latency_ms": round((time.perf_counter() - started) * 1000, 1)}


def _breaker_states() -> dict[str, str]:
    try:
        from chatmon.services import breaker
    except ImportError:  # pragma: no cover - the breaker module is optional
        return {}
    return breaker.snapshot()


def configured_models(settings: Settings) -> list[str]:
    """Every model this configuration can send a request to: LLM_MODEL, then
    LLM_FALLBACK_MODELS in order, then BUDGET_FALLBACK_MODEL."""
    models = [settings.llm_model, *(f.model for f in settings.fallback_models)]
    budget_model = settings.budget_fallback_model
    return models + ([budget_model] if budget_model and budget_model not in models else [])


def _llm_check(settings: Settings) -> dict[str, Any]:
    if settings.is_demo:
        return {"status": "demo", "model": settings.llm_model, "configured": False}
    states = _breaker_states()
    # every configured model's, closed until its first request created its breaker
    breakers = {model: states.get(model, "closed") for model in configured_models(settings)}
    failing = [state for state in breakers.values() if state in ("open", "half_open")]
    return {
        "status": "degraded" if failing else "ok",
        "model": settings.llm_model,
        "configured": True,
        "api_base_set": settings.llm_api_base is not None,
        "api_key_set": settings.llm_api_key is not None,
        "breaker": breakers[settings.llm_model],
        "breakers": breakers,
        "fallbacks": [
            {
                "model": fallback.model,
                "api_base_set": fallback.api_base is not None,
                "api_key_set": fallback.api_key is not None,
                "breaker": breakers[fallback.model],
            }
            for fallback in settings.fallback_models
        ],
    }


class _LangfuseProbe:
    """Background, cached reachability check of the Langfuse host."""

    def __init__(self) -> None:
        self.result: str | None = None  # "ok" | "unreachable"
        self.checked_at = 0.0
        self._task: asyncio.Task[None] | None = None

    async def status(self, settings: Settings) -> str:
        fresh = time.monotonic() - self.checked_at < LANGFUSE_PROBE_TTL
        if self.result is not None and fresh:
            return self.result
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._probe(settings))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._task), LANGFUSE_PROBE_WAIT)
        return self.result or "checking"

    async def _probe(self, settings: Settings) -> None:
        url = (settings.langfuse_host or LANGFUSE_CLOUD) + "/api/public/health"
        try:
            async with httpx.AsyncClient(timeout=settings.langfuse_timeout) as client:
                response = await client.get(url)
            self.result = "ok" if response.status_code < 500 else "unreachable"
        except httpx.HTTPError:
            self.result = "unreachable"
        self.checked_at = time.monotonic()


_langfuse_probe = _LangfuseProbe()


async def _langfuse_check(settings: Settings) -> dict[str, Any]:
    if not settings.langfuse_enabled:
        configured = bool(settings.langfuse_public_key and settings.langfuse_secret_key)
        return {"status": "disabled", "keys_set": configured}
    check: dict[str, Any] = {
        "status": await _langfuse_probe.status(settings),
        "host": settings.langfuse_host or LANGFUSE_CLOUD,
    }
    active = tracing.tracer()
    if active is not None:
        check.update(sent=active.sent_calls, dropped=active.dropped)
    return check


def _alert_channels(settings: Settings) -> list[str]:
    channels = []
    if getattr(settings, "smtp_host", None) and getattr(settings, "alert_email_to", None):
        channels.append("email")
    if getattr(settings, "slack_webhook_url", None):
        channels.append("slack")
    if getattr(settings, "alert_webhook_url", None):
        channels.append("webhook")
    if getattr(settings, "pagerduty_routing_key", None):
        channels.append("pagerduty")
    return channels


def _alerts_check(settings: Settings) -> dict[str, Any]:
    channels = _alert_channels(settings)
    interval = float(getattr(settings, "alert_check_interval_seconds", 60.0))
    last = alert_clock.last_alert_check()
    check: dict[str, Any] = {
        "channels": channels,
        "check_interval_seconds": interval,
        "last_check": last.at.isoformat() if last else None,
    }
    if last is None:
        check["status"] = "waiting" if channels else "not_configured"
        return check
    age = (datetime.now(UTC) - last.at).total_seconds()
    check["last_check_age_seconds"] = round(age, 1)
    check["last_check_ok"] = last.ok
    if age > ALERT_STALE_INTERVALS * interval:
        check["status"] = "stale"
    elif not last.ok:
        check["status"] = "failing"
    else:
        check["status"] = "ok" if channels else "not_configured"
    return check


def _recorder_check() -> dict[str, Any]:
    """This worker's request-log writer: events waiting, and events it had to drop."""
    stats = recorder.get_recorder().stats
    check: dict[str, Any] = {"pending": recorder.get_recorder().pending, "dropped": stats.dropped}
    recent = (
        stats.last_drop_at is not None and time.time() - stats.last_drop_at < RECENT_DROP_SECONDS
    )
    check["status"] = "dropping" if recent else "ok"
    return check


async def _pricing_check(settings: Settings) -> dict[str, Any]:
    """Whether the configured model's cost is known (see ``chatmon.services.pricing``).

    In a thread: the first look-up may wait for LiteLLM's import; later ones are cached.
    """
    price = await asyncio.to_thread(pricing.price_of, settings)
    check: dict[str, Any] = {
        "status": "ok" if price.known else "unpriced",
        "model": price.model,
        "source": price.source,
        "input_per_1m": price.input_per_1m,
        "output_per_1m": price.output_per_1m,
    }
    if not price.known:
        check["message"] = price.warning()
    return check


def overall_status(checks: dict[str, dict[str, Any]], *, warmed: bool = True) -> str:
    """``down`` / ``starting`` / ``degraded`` / ``ok`` (see module docstring)."""
    if checks["database"]["status"] != "ok":
        return "down"
    if not warmed:
        return "starting"
    if (
        checks["llm"]["status"] == "degraded"
        or checks["langfuse"]["status"] == "unreachable"
        or checks["alerts"]["status"] in ("stale", "failing")
        or checks.get("recorder", {}).get("status") == "dropping"
        or checks.get("watchers", {}).get("status") == "failing"
        or checks.get("pricing", {}).get("status") == "unpriced"
    ):
        return "degraded"
    return "ok"


async def _database() -> dict[str, Any]:
    try:
        return await asyncio.wait_for(asyncio.to_thread(_database_check), DATABASE_TIMEOUT)
    except TimeoutError:
        return {"status": "down", "error": "timeout"}


async def _watchers(settings: Settings) -> dict[str, Any]:
    """Heartbeat and probe, as recorded in the database (skipped if it does not answer)."""
    try:
        return await asyncio.wait_for(
            asyncio.to_thread(watchers_check, settings, engine=get_engine()), DATABASE_TIMEOUT
        )
    except Exception as exc:  # noqa: BLE001 - the database check already says it is down
        return {"status": "unknown", "error": type(exc).__name__}


async def _capacity_check() -> dict[str, Any]:
    check: dict[str, Any] = {"status": "ok", "cpu_cores": os.cpu_count() or 1}
    check.update(await asyncio.to_thread(metrics.capacity_snapshot))
    return check


async def health(_request: Request) -> JSONResponse:
    """Health with a real database query; 503 only when down."""
    settings = get_settings()
    checks = {
        "database": await _database(),
        "llm": _llm_check(settings),
        "langfuse": await _langfuse_check(settings),
        "alerts": _alerts_check(settings),
        "recorder": _recorder_check(),
        "pricing": await _pricing_check(settings),
        "capacity": await _capacity_check(),
        "watchers": await _watchers(settings),
    }
    status = overall_status(checks, warmed=readiness.warmed())
    running = await asyncio.to_thread(build.current)
    body = {
        "status": status,
        "version": running.version,
        "revision": running.revision,
        "checks": checks,
    }
    return JSONResponse(body, status_code=503 if status == "down" else 200)


async def health_ready(_request: Request) -> JSONResponse:
    """200 once this worker has warmed up and the database answers; 503 until then.

    The synthetic probe's latest run is shown (``checks.probe``) but does not make a
    worker unready: the provider is shared by every instance, so a revoked key would take
    them all out of the balancer, and the site would be down instead of each chat saying
    what is wrong. The probe pages through ``probe_failed`` instead.
    """
    warmed = readiness.warmed()
    database = await _database() if warmed else {"status": "not_checked"}
    ready = warmed and database["status"] == "ok"
    checks: dict[str, Any] = {"warmed_up": warmed, "database": database}
    if ready:
        checks["probe"] = (await _watchers(get_settings())).get("probe", {"status": "unknown"})
    body = {
        "status": "ready" if ready else ("starting" if not warmed else "down"),
        "checks": checks,
    }
    return JSONResponse(body, status_code=200 if ready else 503)


async def health_live(_request: Request) -> JSONResponse:
    """200 while the process answers requests (no dependency is checked)."""
    return JSONResponse({"status": "alive"})
