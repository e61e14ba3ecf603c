"""The ``fallback_used`` alert rule: replies are coming from a fallback model.

With ``LLM_FALLBACK_MODELS`` set, a request whose primary model fails (its breaker
open, or a transient failure after its retries) is answered by the next model, so
users may notice nothing while the primary is down: no error rate, no refusals. This
rule is how a person hears of it. Over the alert window (``ALERT_WINDOW_MINUTES``), the
share of requests that went to a fallback model (answered or, when every model failed,
last tried there) is judged against ``ALERT_FALLBACK_THRESHOLD`` percent, 0 by default:
any fallback fires. Off without ``LLM_FALLBACK_MODELS``.
"""

from __future__ import annotations

from collections.abc import Callable

from chatmon.services.alerts.rules import (
    Finding,
    Observations,
    Rule,
    Thresholds,
    Verdict,
    format_minutes,
)


def fallback_used(obs: Observations, limits: Thresholds) -> Finding:
    """The window's share of requests served by a fallback model, naming the models."""
    rule = Rule.FALLBACK_USED
    threshold = limits.fallback_percent
    if threshold is None:
        return Finding(rule, Verdict.OFF, None, None, "off (LLM_FALLBACK_MODELS unset)")
    window = format_minutes(limits.window_minutes)
    served = obs.window_fallbacks
    if served <= 0:
        summary = f"no request went to a fallback model in the last {window}"
        return Finding(rule, Verdict.OK, 0.0, threshold, summary)
    requests = max(obs.window_requests, served)
    share = 100.0 * served / requests
    models = ", ".join(f"{model} ({count})" for model, count in obs.fallback_by_model)
    summary = (
        f"{served} of {requests} requests in the last {window} ({share:.1f} %) went to a"
        f" fallback model: {models or 'unknown'}; the primary model is failing (breaker open,"
        f" or errors after its retries); threshold {threshold:g} %"
    )
    verdict = Verdict.FIRING if share > threshold else Verdict.OK
    return Finding(rule, verdict, share, threshold, summary)


RULES: tuple[Callable[[Observations, Thresholds], Finding], ...] = (fallback_used,)
