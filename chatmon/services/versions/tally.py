"""What a side is made of: :class:`Tally` (the sums read for it) and :class:`Side`
(its figures with their intervals)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from chatmon.services.sql_time import to_utc
from chatmon.services.versions.statistics import (
    METRICS,
    NOTHING,
    Estimate,
    mean_interval,
    quantile_interval,
    wilson,
)


@dataclass(frozen=True)
class Side:
    """The figures of one side of a change (or of one version over a window)."""

    start: datetime
    end: datetime
    requests: int = 0
    error_rate: Estimate = NOTHING
    latency_p50: Estimate = NOTHING
    latency_p95: Estimate = NOTHING
    cost_per_request: Estimate = NOTHING
    satisfaction: Estimate = NOTHING
    implicit_flag_rate: Estimate = NOTHING  # value None: no request to rate

    def estimate(self, name: str) -> Estimate:
        value = getattr(self, name)
        assert isinstance(value, Estimate)
        return value

    def to_json(self) -> dict[str, Any]:
        return {
            "start": iso(self.start),
            "end": iso(self.end),
            "requests": self.requests,
            **{metric.key: self.estimate(metric.key).to_json() for metric in METRICS},
        }


def iso(moment: datetime | None) -> str | None:
    """``2026-11-20T12:00:00Z`` (None stays None)."""
    return None if moment is None else to_utc(moment).isoformat().replace("+00:00", "Z")


@dataclass
class Tally:
    """Sums of one side (or one version) and its latency histogram."""

    requests: int = 0
    errors: int = 0
    ups: int = 0
    downs: int = 0
    costed: int = 0
    cost: float = 0.0
    cost_squares: float = 0.0
    flagged: int = 0
    bins: dict[int, int] = field(default_factory=dict)
    first: datetime | None = None
    last: datetime | None = None

    def add(self, values: Sequence[Any]) -> None:
        """Add ``(requests, errors, ups, downs, costed, cost, squares, flagged)``."""
        requests, errors, ups, downs, costed, cost, squares, flagged = values
        self.requests += int(requests or 0)
        self.errors += int(errors or 0)
        self.ups += int(ups or 0)
        self.downs += int(downs or 0)
        self.costed += int(costed or 0)
        self.cost += float(cost or 0.0)
        self.cost_squares += float(squares or 0.0)
        self.flagged += int(flagged or 0)

    def add_bin(self, index: int, count: int) -> None:
        self.bins[int(index)] = self.bins.get(int(index), 0) + int(count)

    def seen(self, first: datetime | None, last: datetime | None) -> None:
        if first is not None:
            first = to_utc(first)
            self.first = first if self.first is None else min(self.first, first)
        if last is not None:
            last = to_utc(last)
            self.last = last if self.last is None else max(self.last, last)

    def merge(self, other: Tally) -> None:
        self.add(
            (
                other.requests,
                other.errors,
                other.ups,
                other.downs,
                other.costed,
                other.cost,
                other.cost_squares,
                other.flagged,
            )
        )
        for index, count in other.bins.items():
            self.add_bin(index, count)
        self.seen(other.first, other.last)

    def side(self, start: datetime, end: datetime) -> Side:
        return Side(
            start=start,
            end=end,
            requests=self.requests,
            error_rate=wilson(self.errors, self.requests),
            latency_p50=quantile_interval(self.bins, 0.5),
            latency_p95=quantile_interval(self.bins, 0.95),
            cost_per_request=mean_interval(self.costed, self.cost, self.cost_squares),
            satisfaction=wilson(self.ups, self.ups + self.downs),
            implicit_flag_rate=wilson(self.flagged, self.requests),
        )
