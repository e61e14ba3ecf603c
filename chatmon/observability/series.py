"""Every Prometheus series chatmon exports, defined once (names and labels are a contract).

Labels come only from small fixed sets: model (configured), status, error category,
token type, rating, feedback reason, implicit signal, rule, channel, result. Never a
user, session or conversation id.

A leaf: it imports nothing of chatmon, so services count into these series without
importing the module that feeds them from events and serves them (``chatmon.metrics``).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

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
# ----- budgets: the latest reading of the shared database, whichever worker made it ----
# (set by ``budget.statuses`` on every alert check, /api/budget and monitor load: every
# worker reads the same spend, so the most recent figure is the figure, never a sum)
BUDGET_USED_RATIO = Gauge(
    "chatmon_budget_used_ratio",
    "Share of the period's budget spent so far (1 = all of it); priced requests only:"
    " unpriced ones add nothing (chatmon_llm_unpriced_requests_total).",
    ["period"],  # daily | monthly, only for a budget that is set
    multiprocess_mode="livemostrecent",
)
BUDGET_LIMIT_USD = Gauge(
    "chatmon_budget_limit_usd",
    "The period's budget in USD (DAILY_BUDGET_USD, MONTHLY_BUDGET_USD).",
    ["period"],
    multiprocess_mode="livemostrecent",
)
BUDGET_WARN_RATIO = Gauge(
    "chatmon_budget_warn_ratio",
    "The BUDGET_WARN_PERCENT levels as shares of a budget (0.8 = 80 %), one per level.",
    ["level"],  # the level in percent, as configured: "50", "80", "100"
    multiprocess_mode="livemostrecent",
)
LLM_RETRIES = Counter("chatmon_llm_retries_total", "Retried LLM attempts.", ["model"])
LLM_FALLBACK_USED = Counter(
    "chatmon_llm_fallback_used_total",
    "Requests handed to a model of LLM_FALLBACK_MODELS because the model before it failed"
    " (its breaker open, or a transient failure after its retries), by that fallback model.",
    ["model", "reason"],  # reason: circuit_open | rate_limit | timeout | connection | server_error
)
FEEDBACK = Counter("chatmon_feedback_total", "Thumbs up/down given to replies.", ["rating"])
FEEDBACK_REASONS = Counter(
    "chatmon_feedback_reasons_total",
    "Reasons given with a thumbs-down (one count per reason chosen).",
    ["reason"],  # wrong | unhelpful | unsafe | too slow | other (feedback.REASONS)
)
IMPLICIT_FEEDBACK = Counter(
    "chatmon_implicit_feedback_total",
    "Replies flagged with an implicit sign of dissatisfaction, by signal.",
    # stopped | rephrased | regenerated | abandoned_after_error (implicit_signals.SIGNALS)
    ["signal"],
)
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
# "Sizing": ~31-33 measured on a quiet 2-core box, rounded down); the monitor page
# shows the current figure per core against it.
STREAMS_PER_CORE_LIMIT = 30
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
