"""A request's trace and span ids, derived from its correlation id.

The OTLP span (:mod:`chatmon.observability.otel_export`) gets the trace id that the
Langfuse trace gets (``chatmon.services.tracing`` derives it with Langfuse's own
function), so one request has one trace id in both places; both set their spans' ids
through :func:`seeded_id_generator`, and a rating given later names its request's span
as its parent.
"""

from __future__ import annotations

import hashlib
from typing import Any


def trace_id_for(correlation_id: str) -> int:
    """A request's trace id: the one Langfuse's ``create_trace_id(seed=...)`` gives it."""
    return int.from_bytes(hashlib.sha256(correlation_id.encode("utf-8")).digest()[:16], "big")


def span_id_for(correlation_id: str) -> int:
    """A request's span id, derived from its correlation id (never 0)."""
    digest = hashlib.sha256(correlation_id.encode("utf-8")).digest()
    return int.from_bytes(digest[16:24], "big") or 1


def seeded_id_generator() -> Any:
    """An OpenTelemetry id generator that hands out the next trace and span ids we set.

    Lets a span carry ids derived from the correlation id (see :func:`trace_id_for`);
    unset, it draws random ones. Only one thread may set and use them (a worker's).
    """
    from opentelemetry.sdk.trace.id_generator import RandomIdGenerator

    class SeededTraceIds(RandomIdGenerator):
        next_trace_id: int | None = None
        next_span_id: int | None = None

        def generate_trace_id(self) -> int:
            chosen, self.next_trace_id = self.next_trace_id, None
            return chosen if chosen is not None else super().generate_trace_id()

        def generate_span_id(self) -> int:
            chosen, self.next_span_id = self.next_span_id, None
            return chosen if chosen is not None else super().generate_span_id()

        def is_trace_id_random(self) -> bool:
            return False  # derived from the correlation id: not W3C-random

    return SeededTraceIds()
