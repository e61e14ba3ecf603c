"""The synthetic probe: a tiny real request through the chat path, so a revoked key or a
moved base URL is found by chatmon within one interval, not by the first user at 3 a.m.

Every ``PROBE_INTERVAL_SECONDS`` (off by default: each probe is a real, billed request)
one process, claimed in the database like the heartbeat (:mod:`chatmon.services.periodic`),
sends a fixed prompt with a cap of :data:`PROBE_MAX_TOKENS` through the same
:class:`~chatmon.services.llm.LLMClient` the chat uses: LiteLLM, the retries, the
model's circuit breaker (a dead provider opens it for users too, which is what users
would hit anyway). The outcome and its error category are recorded on the claim row with
the count of consecutive failures, which the ``probe_failed`` alert rule reads
(``alerts.inputs``); the
series ``chatmon_probe_success`` and ``chatmon_probe_duration_seconds`` carry it to
Prometheus (``ChatmonProbeFailing`` in deploy/alerts.yml).

Each probe is published as an :class:`~chatmon.services.events.LLMCall` with
``synthetic=True``, so the recorder writes it to ``llm_request`` like a user's request
(its tokens, cost, retries and error category are in the log). Synthetic rows are in
no hourly rollup and no user-facing figure: ``/api/stats``, the monitor's KPIs, charts
and table, ``/api/usage``, the cost budgets and the alert rules' inputs all leave
them out, and the request series (``chatmon_llm_*``) do not count them. Budgets do not
include the probe's cost: at most :data:`PROBE_MAX_TOKENS` output tokens a probe.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from chatmon.models import new_id
from chatmon.observability import series
from chatmon.observability.call_status import CallStatus
from chatmon.services import breaker, events, periodic
from chatmon.services.errors import LLMCallError
from chatmon.services.llm import LLMClient
from chatmon.services.stream_stats import StreamStats
from chatmon.settings import Settings

log = logging.getLogger(__name__)

CLAIM_NAME = "probe"
PROBE_MAX_TOKENS = 8
PROBE_PROMPT_VERSION = "probe"  # the prompt_version of the probe's rows
PROBE_MESSAGES = [
    {"role": "system", "content": "You are a health check. Answer with one word."},
    {"role": "user", "content": "Say OK."},
]


@dataclass(frozen=True)
class ProbeOutcome:
    """One probe this process ran."""

    category: str | None  # None: a reply arrived; else the error category (auth, timeout...)
    seconds: float
    consecutive_failures: int | None  # as recorded (None: the database did not take it)

    @property
    def ok(self) -> bool:
        return self.category is None


def probe_client(settings: Settings) -> LLMClient:
    """The chat's client with the probe's token cap, on the model's shared breaker."""
    cap = min(settings.llm_max_tokens or PROBE_MAX_TOKENS, PROBE_MAX_TOKENS)
    probe_settings = settings.model_copy(update={"llm_max_tokens": cap})
    model_breaker = breaker.for_model(
        settings.llm_model,
        failure_threshold=settings.breaker_failure_threshold,
        reset_seconds=settings.breaker_reset_seconds,
    )
    return LLMClient(probe_settings, breaker=model_breaker)


class Probe:
    """Runs the probe when it is due; the alert loop calls :meth:`run_if_due` after a check."""

    def __init__(self, *, settings: Settings, engine: Engine, client: LLMClient | None = None):
        if settings.probe_interval_seconds is None:
            raise ValueError("PROBE_INTERVAL_SECONDS is unset: the probe is off")
        self._interval = settings.probe_interval_seconds
        self._engine = engine
        self._client = client or probe_client(settings)

    @classmethod
    def from_settings(cls, settings: Settings, *, engine: Engine) -> Probe | None:
        """The probe the settings ask for, or None when PROBE_INTERVAL_SECONDS is unset."""
        if settings.probe_interval_seconds is None:
            return None
        return cls(settings=settings, engine=engine)

    async def run_if_due(self) -> ProbeOutcome | None:
        """Probe if no process did within the interval; None when not due (or the
        database could not say). Never raises."""
        try:
            token = await asyncio.to_thread(self._claim)
        except SQLAlchemyError as exc:
            log.warning("probe not claimed (database: %s)", type(exc).__name__)
            return None
        if token is None:
            return None
        try:
            category, seconds = await self._request()
        except Exception:
            log.exception("probe crashed")
            category, seconds = "unknown", 0.0
        failures = None
        try:
            failures = await asyncio.to_thread(self._finish, token, category)
        except SQLAlchemyError as exc:
            log.warning("probe outcome not recorded (database: %s)", type(exc).__name__)
        series.PROBE_SUCCESS.set(1 if category is None else 0)
        series.PROBE_DURATION.observe(seconds)
        if category is not None:
            log.warning("probe failed: %s (%s in a row)", category, failures or "?")
        return ProbeOutcome(category=category, seconds=seconds, consecutive_failures=failures)

    async def _request(self) -> tuple[str | None, float]:
        stats = StreamStats()
        started_at = datetime.now(UTC)
        started = time.perf_counter()
        category: str | None = None
        try:
            chunks = self._client.stream(messages=PROBE_MESSAGES, temperature=0.0, stats=stats)
            text = "".join([chunk async for chunk in chunks])
            if not text.strip():
                category = "unknown"  # an empty reply is no reply
        except LLMCallError as exc:
            category = exc.category.value
        seconds = time.perf_counter() - started
        self._publish(stats=stats, started_at=started_at, seconds=seconds, category=category)
        return category, seconds

    def _publish(
        self, *, stats: StreamStats, started_at: datetime, seconds: float, category: str | None
    ) -> None:
        """Hand the probe's request to the recorder (and every call listener) as synthetic."""
        events.publish_call(
            events.LLMCall(
                correlation_id=new_id(),
                session_id="",
                conversation_id="",
                model=self._client.model,
                provider=stats.provider,
                started_at=started_at,
                first_token_seconds=stats.first_token_seconds,
                total_seconds=seconds,
                input_tokens=stats.input_tokens,
                output_tokens=stats.output_tokens,
                cost_usd=stats.cost_usd,
                status=CallStatus.OK if category is None else CallStatus.ERROR,
                error_category=category,
                retries=stats.retries,
                temperature=0.0,
                prompt_version=PROBE_PROMPT_VERSION,
                synthetic=True,
            )
        )

    def _claim(self) -> str | None:
        with Session(self._engine) as session:
            token = periodic.claim(session=session, name=CLAIM_NAME, period=self._interval)
            session.commit()
            return token

    def _finish(self, token: str, category: str | None) -> int:
        with Session(self._engine) as session:
            periodic.finish(
                session=session, name=CLAIM_NAME, token=token, error=category, retry_now=False
            )
            session.commit()
            run = periodic.last_run(session=session, name=CLAIM_NAME)
            return 0 if run is None else run.consecutive_failures
