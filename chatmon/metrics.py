"""The Prometheus series fed from chat events, and served for every worker.

The series themselves are defined in ``chatmon.observability.series``.
"""

from __future__ import annotations

import functools
import os

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from chatmon.observability import series
from chatmon.observability.call_status import ERROR_STATUSES, CallStatus
from chatmon.services import events, pricing, request_log
from chatmon.services.errors import ErrorCategory
from chatmon.services.events import Feedback, LLMCall
from chatmon.services.feedback import REASONS as FEEDBACK_REASONS
from chatmon.services.implicit_signals import SIGNALS as IMPLICIT_SIGNALS

# ----- updating the series from chat events ------------------------------------------
#
# A cancelled request (the user pressed Stop) is counted as status="ok",
# error_type="none": nothing failed, and the tokens and cost it used are real. Its
# time to first token is observed when a token arrived, but not its duration, which
# the user cut short and which would otherwise pull the latency percentiles down.

# CallStatus -> the series' ``status`` label (the contract's two values, ok | error)
_STATUS_LABEL: dict[str, str] = {
    CallStatus.OK: "ok",
    CallStatus.CANCELLED: "ok",
    CallStatus.ERROR: "error",
    CallStatus.INTERRUPTED: "error",
}
_KNOWN_ERROR_TYPES = frozenset(category.value for category in ErrorCategory)


def error_type_label(status: str, error_category: str | None) -> str:
    """The bounded ``error_type`` label: a category of the fixed list, or "none"."""
    if status not in ERROR_STATUSES:
        return "none"
    return error_category if error_category in _KNOWN_ERROR_TYPES else ErrorCategory.UNKNOWN.value


def record_call(call: LLMCall) -> None:
    """Update the request series for one finished request (an ``events.on_call`` listener).

    The probe's requests are left out: they have their own series (``chatmon_probe_*``).
    """
    if call.synthetic:
        return
    model = call.model
    status = _STATUS_LABEL.get(call.status, "error")
    series.LLM_REQUESTS.labels(
        model=model, status=status, error_type=error_type_label(call.status, call.error_category)
    ).inc()
    if call.status not in (CallStatus.CANCELLED, CallStatus.INTERRUPTED):  # duration unknown
        series.LLM_REQUEST_DURATION.labels(model=model).observe(max(call.total_seconds, 0.0))
    if call.first_token_seconds is not None:
        series.LLM_TIME_TO_FIRST_TOKEN.labels(model=model).observe(
            max(call.first_token_seconds, 0.0)
        )
    if call.input_tokens:
        series.LLM_TOKENS.labels(model=model, type="input").inc(call.input_tokens)
    if call.output_tokens:
        series.LLM_TOKENS.labels(model=model, type="output").inc(call.output_tokens)
    if call.cost_usd:
        series.LLM_COST.labels(model=model).inc(call.cost_usd)
    if call.retries:
        series.LLM_RETRIES.labels(model=model).inc(call.retries)
    if not request_log.is_priced(call, price_known=pricing.price_known_without_import):
        series.LLM_UNPRICED.labels(model=model).inc()


def record_feedback(feedback: Feedback) -> None:
    """Count a thumbs up/down (an ``events.on_feedback`` listener); clearing counts nothing."""
    if not feedback.rating_changed:
        pass  # reasons or a comment added to a rating counted already
    elif feedback.rating > 0:
        series.FEEDBACK.labels(rating="up").inc()
    elif feedback.rating < 0:
        series.FEEDBACK.labels(rating="down").inc()
    for reason in feedback.reasons:
        if reason in FEEDBACK_REASONS:  # the fixed label set, whatever the event says
            series.FEEDBACK_REASONS.labels(reason=reason).inc()


def init_series(model: str) -> None:
    """Create the configured model's series at zero, so dashboards and ``rate()`` see
    them before the first request (and an absent series means a broken scrape)."""
    series.LLM_REQUESTS.labels(model=model, status="ok", error_type="none")
    series.LLM_TOKENS.labels(model=model, type="input")
    series.LLM_TOKENS.labels(model=model, type="output")
    series.LLM_COST.labels(model=model)
    series.LLM_RETRIES.labels(model=model)
    series.LLM_UNPRICED.labels(model=model)
    series.LLM_REQUEST_DURATION.labels(model=model)
    series.LLM_TIME_TO_FIRST_TOKEN.labels(model=model)
    series.FEEDBACK.labels(rating="up")
    series.FEEDBACK.labels(rating="down")
    for reason in FEEDBACK_REASONS:
        series.FEEDBACK_REASONS.labels(reason=reason)
    for signal in IMPLICIT_SIGNALS:
        series.IMPLICIT_FEEDBACK.labels(signal=signal)


def subscribe() -> None:
    """Keep the series up to date from the chat's events (idempotent)."""
    events.on_call(record_call)
    events.on_feedback(record_feedback)


# ----- exposition ---------------------------------------------------------------------


def multiprocess_dir() -> str | None:
    """The directory of prometheus-client's multiprocess mode, when it is on.

    This is prometheus-client's own variable, read from the process environment
    (never from ``.env``): it must be set before ``prometheus_client`` is imported,
    which ``scripts/start.sh`` does for every worker.
    """
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


@functools.cache
def _registry() -> CollectorRegistry:
    if multiprocess_dir():
        registry = CollectorRegistry(auto_describe=False)
        MultiProcessCollector(registry)
        return registry
    return REGISTRY


def render() -> tuple[bytes, str]:
    """The exposition of every series, summed across workers in multiprocess mode.

    Returns:
        (body, content type) for a ``/metrics`` response.
    """
    return generate_latest(_registry()), CONTENT_TYPE_LATEST


def capacity_snapshot() -> dict[str, int]:
    """Streams in progress and websocket connections summed over the live workers, and
    how many workers report (for ``/health`` and the monitor page).

    In multiprocess mode this reads every worker's files (as ``/metrics`` does): call it
    off the event loop.
    """
    wanted = {
        "chatmon_streams_in_progress": "streams_in_progress",
        "chatmon_websocket_connections": "websocket_connections",
    }
    totals = dict.fromkeys(wanted.values(), 0.0)
    pids: set[str] = set()
    for family in _registry().collect():
        for sample in family.samples:
            if sample.name in wanted:
                totals[wanted[sample.name]] += sample.value
            elif sample.name == "chatmon_process_cpu_seconds_total":
                pids.add(sample.labels.get("pid", "self"))
    snapshot = {key: int(value) for key, value in totals.items()}
    snapshot["workers"] = max(len(pids), 1)
    return snapshot
