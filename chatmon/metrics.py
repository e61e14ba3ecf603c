"""Every Prometheus series chatmon exports, defined once (names and labels are a contract).

Labels come only from small fixed sets: model (configured), status, error category,
token type, rating, rule, channel, result. Never a user, session or conversation id.
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
ALERTS = Counter(
    "chatmon_alerts_total", "Alert deliveries by rule, channel and result.", ["rule", "channel", "result"]
)
