"""Log-scale latency bins: how window percentiles stay within 1 % without reading rows.

A latency of ``v`` seconds falls into bin ``floor(log(v / FLOOR) / log(RATIO))``
(bin 0 also holds everything below ``FLOOR``). Each bin spans a factor of ``RATIO``
= 1.02, and a bin is reported by its geometric midpoint, so the value reported for
a bin is within ``sqrt(RATIO) - 1`` = 0.995 % of every latency in it (below
``FLOOR`` the error is at most about 1 ms in absolute terms).

Percentiles use the nearest-rank definition: the p-th percentile of ``n`` values is
the ``ceil(p/100 * n)``-th smallest. :func:`percentile` finds the bin holding that
value, so it reports the exact nearest-rank percentile to within 1 %.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

RATIO = 1.02
FLOOR = 0.001  # seconds; everything faster shares bin 0
_LOG_RATIO = math.log(RATIO)


def bin_of(seconds: float) -> int:
    """The bin a latency falls into."""
    if seconds <= FLOOR:
        return 0
    return int(math.log(seconds / FLOOR) / _LOG_RATIO)


def bin_value(index: int) -> float:
    """The value reported for a bin: its geometric midpoint."""
    return FLOOR * RATIO ** (max(index, 0) + 0.5)


def rank(quantile: float, total: int) -> int:
    """The 1-based nearest rank of ``quantile`` (0..1) among ``total`` values."""
    return max(1, math.ceil(quantile * total - 1e-9))


def percentile(counts: Mapping[int, int] | Iterable[tuple[int, int]], quantile: float) -> float | None:
    """The nearest-rank ``quantile`` (0..1) of a histogram ``{bin: count}``; None if empty."""
    pairs = sorted(counts.items() if isinstance(counts, Mapping) else counts)
    total = sum(count for _, count in pairs)
    if total <= 0:
        return None
    wanted = rank(quantile, total)
    seen = 0
    for index, count in pairs:
        seen += count
        if seen >= wanted:
            return bin_value(index)
    return bin_value(pairs[-1][0])
