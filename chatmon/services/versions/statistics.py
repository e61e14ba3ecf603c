"""The statistics of a before/after comparison: estimates with 95 % intervals, the
compared figures, and how one figure is judged (see :mod:`chatmon.services.versions`)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from chatmon.services import histogram

Z95 = 1.959963984540054  # the two-sided 95 % normal quantile
MIN_REQUESTS = 20  # per side, for any verdict at all
MIN_RATED = 10  # rated requests per side, for a satisfaction verdict


@dataclass(frozen=True)
class Estimate:
    """A figure with its 95 % interval; ``n`` is the sample behind it (``value`` None:
    nothing to estimate from)."""

    value: float | None
    low: float | None
    high: float | None
    n: int

    def to_json(self) -> dict[str, Any]:
        return {"value": self.value, "low": self.low, "high": self.high, "n": self.n}


NOTHING = Estimate(None, None, None, 0)


def wilson(successes: int, n: int, z: float = Z95) -> Estimate:
    """The share ``successes / n`` with its Wilson score interval."""
    if n <= 0:
        return NOTHING
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    low = 0.0 if successes <= 0 else max(0.0, centre - half)  # exact at the ends: no
    high = 1.0 if successes >= n else min(1.0, centre + half)  # rounding dust
    return Estimate(p, low, high, n)


def _value_at_rank(counts: Mapping[int, int], wanted: int) -> float:
    seen = 0
    index = 0
    for index in sorted(counts):
        seen += counts[index]
        if seen >= wanted:
            break
    return histogram.bin_value(index)


def quantile_interval(counts: Mapping[int, int], quantile: float, z: float = Z95) -> Estimate:
    """The nearest-rank ``quantile`` of a latency histogram ``{bin: count}`` and its
    distribution-free interval (order statistics; see the module's docstring)."""
    counts = {index: count for index, count in counts.items() if count > 0}
    n = sum(counts.values())
    if n <= 0:
        return NOTHING
    spread = z * math.sqrt(n * quantile * (1 - quantile))
    low_rank = max(1, math.floor(n * quantile - spread))
    high_rank = min(n, math.ceil(n * quantile + spread) + 1)
    return Estimate(
        _value_at_rank(counts, histogram.rank(quantile, n)),
        _value_at_rank(counts, low_rank),
        _value_at_rank(counts, high_rank),
        n,
    )


def mean_interval(n: int, total: float, squares: float, z: float = Z95) -> Estimate:
    """A mean from its count, sum and sum of squares, with a normal interval."""
    if n <= 0:
        return NOTHING
    mean = total / n
    if n < 2:
        return Estimate(mean, None, None, n)
    variance = max(0.0, (squares - n * mean * mean) / (n - 1))
    half = z * math.sqrt(variance / n)
    return Estimate(mean, max(0.0, mean - half), mean + half, n)


# --------------------------------------------------------------------------- figures


def _percent(value: float) -> str:
    share = 100 * value
    return f"{share:.1f} %" if 0 < share < 10 else f"{share:.0f} %"


def _seconds(value: float) -> str:
    return f"{value:.2f} s" if value < 10 else f"{value:.1f} s"


def _dollars(value: float) -> str:
    return f"${value:.2f}" if value >= 1 else f"${value:.4f}"


@dataclass(frozen=True)
class Metric:
    """A compared figure: its key on :class:`Side`, its words, which way is better."""

    key: str
    label: str
    higher_is_better: bool
    show: Callable[[float], str]
    min_n: int = MIN_REQUESTS


METRICS = (
    Metric("satisfaction", "satisfaction", True, _percent, MIN_RATED),
    Metric("error_rate", "error rate", False, _percent),
    Metric("latency_p50", "p50 latency", False, _seconds),
    Metric("latency_p95", "p95 latency", False, _seconds),
    Metric("cost_per_request", "cost per request", False, _dollars),
    Metric("implicit_flag_rate", "implicit-flag rate", False, _percent),
)
_METRIC = {metric.key: metric for metric in METRICS}


@dataclass(frozen=True)
class Comparison:
    """One figure before and after: ``better`` | ``worse`` | ``same`` (the intervals
    overlap) | ``unknown`` (too little data, or not recorded)."""

    key: str
    before: Estimate
    after: Estimate
    outcome: str

    @property
    def metric(self) -> Metric:
        return _METRIC[self.key]

    @property
    def moved(self) -> str:
        """``satisfaction 81 % → 72 %``."""
        show = self.metric.show
        before = "–" if self.before.value is None else show(self.before.value)
        after = "–" if self.after.value is None else show(self.after.value)
        return f"{self.metric.label} {before} → {after}"

    def to_json(self) -> dict[str, Any]:
        return {
            "figure": self.key,
            "label": self.metric.label,
            "before": self.before.to_json(),
            "after": self.after.to_json(),
            "outcome": self.outcome,
            "text": self.moved,
        }


def compare(metric: Metric, before: Estimate, after: Estimate) -> Comparison:
    """Judge one figure: better or worse only when the 95 % intervals do not overlap."""
    usable = all(
        e.value is not None and e.low is not None and e.high is not None and e.n >= metric.min_n
        for e in (before, after)
    )
    if not usable:
        return Comparison(metric.key, before, after, "unknown")
    assert before.low is not None and before.high is not None
    assert after.low is not None and after.high is not None
    if after.low > before.high:
        higher = True
    elif after.high < before.low:
        higher = False
    else:
        return Comparison(metric.key, before, after, "same")
    outcome = "better" if higher == metric.higher_is_better else "worse"
    return Comparison(metric.key, before, after, outcome)
