"""What the stats functions return: plain frozen dataclasses."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from chatmon.models import LLMRequest


@dataclass(frozen=True)
class WindowSummary:
    """The headline figures of one window (seconds, USD, percent as 0-100)."""

    start: datetime
    end: datetime
    requests: int
    ok: int
    errors: int
    cancelled: int
    error_rate: float
    latency_p50: float | None
    latency_p95: float | None
    latency_p99: float | None
    ttft_p50: float | None
    ttft_p95: float | None
    tokens_input: int
    tokens_output: int
    cost_usd: float
    unpriced_requests: int
    retries: int
    feedback_up: int
    feedback_down: int
    satisfaction: float | None
    errors_by_category: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The ``/api/stats`` body: every field, datetimes as ISO 8601 UTC."""
        data = asdict(self)
        data["start"] = self.start.isoformat()
        data["end"] = self.end.isoformat()
        return data


@dataclass(frozen=True)
class SeriesPoint:
    """One chart bucket ``[start, start + bucket)``."""

    start: datetime
    requests: int
    errors: int
    latency_p50: float | None
    latency_p95: float | None
    latency_p99: float | None
    ttft_p95: float | None
    tokens_input: int
    tokens_output: int
    cost_usd: float


@dataclass(frozen=True)
class ModelBreakdown:
    """One model's share of a window."""

    model: str
    requests: int
    errors: int
    tokens_input: int
    tokens_output: int
    cost_usd: float
    unpriced_requests: int


@dataclass(frozen=True)
class RequestPage:
    """One page of the request log and how many rows match in total."""

    rows: list[LLMRequest]
    total: int


@dataclass(frozen=True)
class Dashboard:
    """Everything the monitor page shows for one window, read in one go."""

    summary: WindowSummary
    series: list[SeriesPoint]
    bucket_seconds: int
    models: list[ModelBreakdown]
    page: RequestPage
