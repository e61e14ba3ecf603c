"""Every Prometheus series chatmon exports, defined once (names and labels are a contract).

Labels come only from small fixed sets: model (configured), status, error category,
token type, rating, rule, channel, result. Never a user, session or conversation id.
"""

from __future__ import annotations

import functools
import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

from chatmon.services import events, pricing, request_log
from chatmon.services.errors import ErrorCategory
from chatmon.services.events import Feedback, LLMCall

# Buckets for LLM latencies, in seconds; 5.0 is the default p95 alert threshold.
LATENCY_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 7.5, 10.0, 15.0, 20.0, 30.0, 60.0, 120.0)
TTFT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0)

LLM_REQUESTS = Counter(
    "chatmon_llm_requests_total",
    "LLM requests by outcome.",
    ["model", "status", "error_type"],
)
LLM_REQUEST_DURATION = Histogram(
    "chatmon_llm_request_duration_seconds",
    "Total time of an LLM request, first byte sent to last token received.",
    ["model"],
    buckets=LATENCY_BUCKETS,
)
LLM_TIME_TO_FIRST_TOKEN = Histogram(
    "chatmon_llm_time_to_first_token_seconds",
    "Time from sending an LLM request to its first streamed token.",
    ["model"],
    buckets=TTFT_BUCKETS,
)
LLM_TOKENS = Counter(
    "chatmon_llm_tokens_total", "Tokens reported by the provider.", ["model", "type"]
)
LLM_COST = Counter("chatmon_llm_cost_usd_total", "Cost of LLM requests in USD.", ["model"])
LLM_UNPRICED = Counter(
    "chatmon_llm_unpriced_requests_total",
    "LLM requests whose cost is unknown (the model has no price): not counted as $0.",
    ["model"],
)
LLM_RETRIES = Counter("chatmon_llm_retries_total", "Retried LLM attempts.", ["model"])
FEEDBACK = Counter("chatmon_feedback_total", "Thumbs up/down given to replies.", ["rating"])
CIRCUIT_BREAKER_STATE = Gauge(
    "chatmon_circuit_breaker_state",
    "Circuit breaker per model: 0 closed, 1 half-open, 2 open.",
    ["model"],
    multiprocess_mode="max",
)
RATE_LIMITED = Counter(
    "chatmon_rate_limited_total", "Chat messages refused by chatmon's own rate limits."
)
RECORDER_DROPPED = Counter(
    "chatmon_recorder_dropped_total",
    "Request-log events the recorder could not write and gave up on, by reason.",
    ["reason"],  # backlog_full | rejected | shutdown
)
ALERTS = Counter(
    "chatmon_alerts_total",
    "Alert deliveries by rule, channel and result.",
    ["rule", "channel", "result"],
)
HEARTBEATS = Counter(
    "chatmon_heartbeat_pings_total",
    "Dead-man's-switch pings to HEARTBEAT_URL: after a good check (success) or a failed one.",
    ["kind", "result"],  # kind success|fail, result sent|failed
)
DIGESTS = Counter(
    "chatmon_digests_total",
    "Scheduled spend digests sent (or not) per channel.",
    ["channel", "result"],  # channel email|slack, result sent|failed
)
BUILD_INFO = Gauge(
    "chatmon_build_info",
    "Always 1; its labels say which chatmon runs (a change marks a deploy).",
    ["version", "revision"],
    multiprocess_mode="max",
)
PROBE_SUCCESS = Gauge(
    "chatmon_probe_success",
    "1 if the latest synthetic probe (PROBE_INTERVAL_SECONDS) got a reply, 0 if it failed.",
    multiprocess_mode="mostrecent",  # whichever worker probed last
)
PROBE_DURATION = Histogram(
    "chatmon_probe_duration_seconds",
    "Duration of synthetic probes through the full chat path, failed ones included.",
    buckets=LATENCY_BUCKETS,
)

# ----- capacity: summed over live workers ("livesum"), per worker pid ("liveall") ------
# prometheus-client leaves out its process collector in multiprocess mode; these bring
# each worker's CPU and memory back (chatmon.tasks.capacity samples them).
# Simultaneous replies one core streams before every reply slows down (docs/scaling.md,
# "Sizing"); the monitor page shows the current figure per core against it.
STREAMS_PER_CORE_LIMIT = 12
STREAMS_IN_PROGRESS = Gauge(
    "chatmon_streams_in_progress",
    "Replies streaming to a browser tab right now.",
    multiprocess_mode="livesum",
)
WEBSOCKET_CONNECTIONS = Gauge(
    "chatmon_websocket_connections",
    "Browser tabs connected by websocket right now.",
    multiprocess_mode="livesum",
)
PROCESS_CPU_SECONDS = Gauge(
    "chatmon_process_cpu_seconds_total",
    "User + system CPU seconds used by the worker process (one series per worker pid).",
    multiprocess_mode="liveall",
)
PROCESS_RESIDENT_MEMORY = Gauge(
    "chatmon_process_resident_memory_bytes",
    "Resident memory of the worker process (one series per worker pid).",
    multiprocess_mode="liveall",
)


# ----- updating the series from chat events ------------------------------------------
#
# A cancelled request (the user pressed Stop) is counted as status="ok",
# error_type="none": nothing failed, and the tokens and cost it used are real. Its
# time to first token is observed when a token arrived, but not its duration, which
# the user cut short and which would otherwise pull the latency percentiles down.

_STATUS_LABEL = {"ok": "ok", "cancelled": "ok", "error": "error", "interrupted": "error"}
_KNOWN_ERROR_TYPES = frozenset(category.value for category in ErrorCategory)


def error_type_label(status: str, error_category: str | None) -> str:
    """The bounded ``error_type`` label: a category of the fixed list, or "none"."""
    if status not in ("error", "interrupted"):
        return "none"
    return error_category if error_category in _KNOWN_ERROR_TYPES else ErrorCategory.UNKNOWN.value


def record_call(call: LLMCall) -> None:
    """Update the request series for one finished request (an ``events.on_call`` listener)."""
    model = call.model
    status = _STATUS_LABEL.get(call.status, "error")
    LLM_REQUESTS.labels(
        model=model, status=status, error_type=error_type_label(call.status, call.error_category)
    ).inc()
    if call.status not in ("cancelled", "interrupted"):  # interrupted: duration unknown
        LLM_REQUEST_DURATION.labels(model=model).observe(max(call.total_seconds, 0.0))
    if call.first_token_seconds is not None:
        LLM_TIME_TO_FIRST_TOKEN.labels(model=model).observe(max(call.first_token_seconds, 0.0))
    if call.input_tokens:
        LLM_TOKENS.labels(model=model, type="input").inc(call.input_tokens)
    if call.output_tokens:
        LLM_TOKENS.labels(model=model, type="output").inc(call.output_tokens)
    if call.cost_usd:
        LLM_COST.labels(model=model).inc(call.cost_usd)
    if call.retries:
        LLM_RETRIES.labels(model=model).inc(call.retries)
    if not request_log.is_priced(call, price_known=pricing.price_known_without_import):
        LLM_UNPRICED.labels(model=model).inc()


def record_feedback(feedback: Feedback) -> None:
    """Count a thumbs up/down (an ``events.on_feedback`` listener); clearing counts nothing."""
    if feedback.rating > 0:
        FEEDBACK.labels(rating="up").inc()
    elif feedback.rating < 0:
        FEEDBACK.labels(rating="down").inc()


def init_series(model: str) -> None:
    """Create the configured model's series at zero, so dashboards and ``rate()`` see
    them before the first request (and an absent series means a broken scrape)."""
    LLM_REQUESTS.labels(model=model, status="ok", error_type="none")
    LLM_TOKENS.labels(model=model, type="input")
    LLM_TOKENS.labels(model=model, type="output")
    LLM_COST.labels(model=model)
    LLM_RETRIES.labels(model=model)
    LLM_UNPRICED.labels(model=model)
    LLM_REQUEST_DURATION.labels(model=model)
    LLM_TIME_TO_FIRST_TOKEN.labels(model=model)
    FEEDBACK.labels(rating="up")
    FEEDBACK.labels(rating="down")


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
