"""The figures the rules judge, read from the request log through ``stats``.

Everything comes from the database, which every worker and instance shares, so
they all see the same error rate, latency and cost. The one exception is the
circuit breaker: its state lives in each process (``breaker.snapshot()``). A model
counts as open when this process's breaker is open *or* when any process refused a
request with ``circuit_open`` in the last ``breaker_lookback`` — the database half
is what lets a worker (or ``python -m chatmon alerts check``) whose own breaker is
closed agree with the worker whose breaker opened, instead of resolving its alert.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session, col

from chatmon.models import AlertNotification, AlertRuleState, LLMRequest
from chatmon.observability.call_status import CallStatus
from chatmon.services import budget, feedback, implicit_counts, periodic, stats, usage
from chatmon.services.alerts.feedback_rules import VersionFeedback
from chatmon.services.alerts.messages import Evidence
from chatmon.services.alerts.rules import Finding, Observations, Rule, Thresholds, format_usd
from chatmon.services.sql_time import to_utc
from chatmon.services.usage_keys import short_key

CIRCUIT_OPEN = "circuit_open"
SAMPLE_IDS = 5
TOP_CATEGORIES = 3


def utc_midnight(now: datetime) -> datetime:
    """00:00 UTC of ``now``'s day."""
    return to_utc(now).replace(hour=0, minute=0, second=0, microsecond=0)


def _cost(session: Session, start: datetime, end: datetime) -> float:
    if end <= start:
        return 0.0
    return stats.window_summary(session=session, start=start, end=end).cost_usd


def _last_request_at(session: Session) -> datetime | None:
    query = select(func.max(LLMRequest.started_at)).where(col(LLMRequest.synthetic).is_(False))
    return session.execute(query).scalar_one_or_none()


def _watching_since(session: Session) -> datetime | None:
    return session.execute(select(func.min(AlertRuleState.created_at))).scalar_one_or_none()


def refusing_models(*, session: Session, start: datetime, end: datetime) -> set[str]:
    """Models any process refused a request for with ``circuit_open`` in the window."""
    query = (
        select(col(LLMRequest.model))
        .where(col(LLMRequest.started_at) >= start, col(LLMRequest.started_at) < end)
        .where(col(LLMRequest.error_category) == CIRCUIT_OPEN)
        .where(col(LLMRequest.synthetic).is_(False))
        .distinct()
    )
    return set(session.execute(query).scalars())


def fallback_inputs(
    *, session: Session, start: datetime, end: datetime
) -> tuple[tuple[str, int], ...]:
    """Requests of ``[start, end)`` that went to a fallback model, per model, most first."""
    r = LLMRequest
    query = (
        select(col(r.model), func.count())
        .where(col(r.started_at) >= start, col(r.started_at) < end)
        .where(col(r.fallback).is_(True), col(r.synthetic).is_(False))
        .group_by(col(r.model))
    )
    counts = [(str(model), int(count)) for model, count in session.execute(query)]
    return tuple(sorted(counts, key=lambda kv: (-kv[1], kv[0])))


def gather(
    *,
    session: Session,
    limits: Thresholds,
    now: datetime,
    open_breakers: dict[str, str],
    breaker_lookback: timedelta,
) -> Observations:
    """One check's :class:`Observations`.

    Args:
        open_breakers: this process's ``breaker.snapshot()`` (model -> state).
        breaker_lookback: how recent a ``circuit_open`` refusal must be to count.
    """
    now = to_utc(now)
    window = stats.window_summary(
        session=session, start=now - timedelta(minutes=limits.window_minutes), end=now
    )
    here = {model for model, state in open_breakers.items() if state == "open"}
    elsewhere = refusing_models(session=session, start=now - breaker_lookback, end=now)
    last = _last_request_at(session)
    since = _watching_since(session)
    probe = periodic.last_run(session=session, name="probe")  # chatmon.services.probe
    probe_failing = probe is not None and probe.result == periodic.FAILED
    counted = judged_errors(window.requests, window.errors, window.errors_by_category)
    fallbacks = (
        fallback_inputs(
            session=session, start=now - timedelta(minutes=limits.window_minutes), end=now
        )
        if limits.fallback_percent is not None
        else ()
    )
    return Observations(
        now=now,
        window_requests=counted.requests,
        window_errors=counted.errors,
        window_error_rate=counted.rate,
        window_refused=counted.refused,
        window_user_errors=counted.user_caused,
        window_latency_p95=window.latency_p95,
        cost_last_hour=_cost(session, now - timedelta(hours=1), now),
        cost_today=_cost(session, utc_midnight(now), now),
        open_breakers=tuple(sorted(here | elsewhere)),
        last_request_at=None if last is None else to_utc(last),
        watching_since=None if since is None else to_utc(since),
        errors_by_category=dict(window.errors_by_category),
        probe_failures=probe.consecutive_failures if probe is not None and probe_failing else 0,
        probe_error=probe.error if probe is not None and probe_failing else None,
        window_fallbacks=sum(count for _model, count in fallbacks),
        fallback_by_model=fallbacks,
        feedback_by_version=feedback_inputs(
            session=session, start=now - timedelta(hours=limits.feedback_window_hours), end=now
        ),
        **budget_inputs(session=session, config=limits.budget, now=now),
    )


def feedback_inputs(
    *, session: Session, start: datetime, end: datetime
) -> tuple[VersionFeedback, ...]:
    """Thumbs up/down and the thumbs-down reasons per prompt version, for requests that
    started in ``[start, end)`` (a rating has no time of its own: it is its request's),
    and the unrated requests flagged with implicit signals (``implicit_signals``)."""
    r = LLMRequest
    query = (
        select(col(r.prompt_version), col(r.feedback), col(r.feedback_reasons), func.count())
        .where(col(r.started_at) >= start, col(r.started_at) < end)
        .where(col(r.feedback).in_((1, -1)), col(r.synthetic).is_(False))
        .group_by(col(r.prompt_version), col(r.feedback), col(r.feedback_reasons))
    )
    flagged, signals = implicit_counts.unrated_flags_by_version(
        session=session, start=start, end=end
    )
    ups: Counter[str] = Counter()
    downs: Counter[str] = Counter()
    reasons: dict[str, Counter[str]] = {}
    for version, rating, stored, count in session.execute(query):
        if rating == 1:
            ups[version] += count
            continue
        downs[version] += count
        named = reasons.setdefault(version, Counter())
        for reason in feedback.decode_reasons(stored):
            named[reason] += count
    return tuple(
        VersionFeedback(
            prompt_version=version,
            ups=ups[version],
            downs=downs[version],
            reasons=_most_first(reasons.get(version, Counter())),
            flagged=flagged[version],
            signals=_most_first(signals.get(version, Counter())),
        )
        for version in sorted(set(ups) | set(downs) | set(flagged))
    )


def _most_first(counts: Counter[str]) -> tuple[tuple[str, int], ...]:
    return tuple(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


# Failures the error-rate rule does not count (see judged_errors).
REFUSALS = ("rate_limited_local", "budget_exceeded")  # chatmon said no, on purpose
USER_CAUSED = ("bad_request", "context_length")  # the provider rightly refused the request


@dataclass(frozen=True)
class JudgedErrors:
    requests: int
    errors: int
    rate: float  # percent
    refused: int
    user_caused: int


def judged_errors(requests: int, errors: int, by_category: dict[str, int]) -> JudgedErrors:
    """The error rate that says whether the provider or chatmon is failing.

    chatmon's own refusals (its rate limits, a budget refusal) never reached the
    provider: they leave the count altogether, so a flood of refused requests neither
    pages nor dilutes a real outage. Errors the request caused (a bad request, a
    conversation longer than the context) were the provider working as it should: they
    stay requests but are not failures. Both are counted for the message instead.
    """
    refused = sum(by_category.get(name, 0) for name in REFUSALS)
    user_caused = sum(by_category.get(name, 0) for name in USER_CAUSED)
    judged = max(requests - refused, 0)
    failed = max(errors - refused - user_caused, 0)
    rate = failed / judged * 100.0 if judged else 0.0
    return JudgedErrors(judged, failed, rate, refused, user_caused)


def budget_inputs(*, session: Session, config: Any, now: datetime) -> dict[str, Any]:
    """The budget statuses and the last hour's top drivers (no budget: nothing)."""
    if config is None or not (config.daily_usd or config.monthly_usd):
        return {}
    statuses = tuple(budget.statuses(session=session, config=config, now=now))
    drivers = []
    for by in ("conversation", "model"):
        top = usage.top(session=session, start=now - timedelta(hours=1), end=now, by=by, limit=1)
        if top and top[0].cost_usd > 0:
            key = short_key(top[0].key, by)
            drivers.append(f"{by} {key} ({format_usd(top[0].cost_usd)} in the last hour)")
    notified = {
        status.period: _notified_level(session, status.period, config, now) for status in statuses
    }
    return {"budget": statuses, "budget_drivers": ", ".join(drivers), "budget_notified": notified}


def _notified_level(session: Session, period: str, config: Any, now: datetime) -> float:
    """The highest budget level (USD) already sent for ``period`` since it began: each
    warning level is told once per period (see ``alerts.budget_rules``)."""
    start, _ = budget.period_bounds(period, now, config.zone)  # type: ignore[arg-type]
    n = AlertNotification
    told = session.execute(
        select(func.max(n.threshold)).where(
            col(n.rule) == f"budget_{period}",
            col(n.kind).in_(("firing", "repeat")),
            col(n.created_at) >= start,
        )
    ).scalar_one_or_none()
    return float(told or 0.0)


def _sample_ids(session: Session, start: datetime, end: datetime, **query: Any) -> list[str]:
    where = stats.RequestFilter(limit=SAMPLE_IDS, **query)
    page = stats.request_page(session=session, start=start, end=end, where=where)
    return [row.correlation_id for row in page.rows]


def evidence(
    *, session: Session, finding: Finding, obs: Observations, limits: Thresholds
) -> Evidence:
    """Where to start looking, for the message about ``finding``: the top error
    categories and a few correlation ids of the requests behind the figure."""
    now = obs.now
    window_start = now - timedelta(minutes=limits.window_minutes)
    top = sorted(obs.errors_by_category.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_CATEGORIES]
    rule = finding.rule
    if rule is Rule.ERROR_RATE:
        ids = _sample_ids(session, window_start, now, status=CallStatus.ERROR)
        return Evidence(top, ids, "Recent failed requests")
    if rule is Rule.LATENCY_P95:
        ids = _sample_ids(session, window_start, now, sort="latency_seconds")
        return Evidence(top, ids, "Slowest requests")
    if rule in (Rule.COST_HOURLY, Rule.COST_DAILY):
        start = now - timedelta(hours=1) if rule is Rule.COST_HOURLY else utc_midnight(now)
        ids = _sample_ids(session, start, now, sort="cost_usd") if now > start else []
        return Evidence([], ids, "Most expensive requests")
    if rule is Rule.BREAKER_OPEN:
        ids = _sample_ids(
            session, window_start, now, status=CallStatus.ERROR, error_category=CIRCUIT_OPEN
        )
        return Evidence(top, ids, "Recently refused requests")
    if rule is Rule.FALLBACK_USED:
        return Evidence(
            top, _fallback_ids(session, window_start, now), "Requests a fallback served"
        )
    return Evidence()


def _fallback_ids(session: Session, start: datetime, end: datetime) -> list[str]:
    r = LLMRequest
    query = (
        select(col(r.correlation_id))
        .where(col(r.started_at) >= start, col(r.started_at) < end)
        .where(col(r.fallback).is_(True), col(r.synthetic).is_(False))
        .order_by(col(r.started_at).desc())
        .limit(SAMPLE_IDS)
    )
    return [str(cid) for cid in session.execute(query).scalars()]


def now_utc() -> datetime:
    """The current time, aware UTC."""
    return datetime.now(UTC)
