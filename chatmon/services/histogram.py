"""Log-scale latency bins: how window percentiles stay within 1 % without reading rows.

A latency of ``v`` seconds falls into bin ``floor(log(v / FLOOR) / log(RATIO))``
(bin 0 also holds everything below ``FLOOR``). Each bin spans a factor of ``RATIO``
= 1.02, and a bin is reported by its geometric midpoint, so the value reported for
a bin is within ``sqrt(RATIO) - 1`` = 0.995 % of every latency in it (below
``FLOOR`` the error is at most about 1 ms in absolute terms).

Percentiles use the nearest-rank definition: the p-th percentile of ``n`` values is
the ``ceil(p/100 * n)``-th smallest. :func:`percentiles` finds the bin holding that
value, so it reports the exact nearest-rank percentile to within 1 %.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from fractions import Fraction

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
    return FLOOR * math.pow(RATIO, max(index, 0) + 0.5)


@functools.cache
def _ratio(quantile: float) -> tuple[int, int]:
    fraction = Fraction(quantile).limit_denominator(10_000)
    return fraction.numerator, fraction.denominator


def rank(quantile: float, total: int) -> int:
    """The 1-based nearest rank ``ceil(quantile * total)`` (at least 1), in exact arithmetic."""
    numerator, denominator = _ratio(quantile)
    return max(1, -(-numerator * total // denominator))


def percentiles(counts: Mapping[int, int], *quantiles: float) -> list[float | None]:
    """Nearest-rank ``quantiles`` (0..1) of a histogram ``{bin: count}``, one sort for all
    of them, rounded to the microsecond; None for each when the histogram is empty.

    ``p50, p95 = percentiles(counts, 0.50, 0.95)``. The one percentile function: the
    window figures (``stats``), the backtest and the alert rules all read it.
    """
    total = sum(counts.values())
    if total <= 0:
        return [None] * len(quantiles)
    wanted = sorted((rank(q, total), i) for i, q in enumerate(quantiles))
    found: list[float | None] = [None] * len(quantiles)
    seen, next_wanted = 0, 0
    for index in sorted(counts):
        seen += counts[index]
        while next_wanted < len(wanted) and seen >= wanted[next_wanted][0]:
            found[wanted[next_wanted][1]] = round(bin_value(index), 6)
            next_wanted += 1
        if next_wanted == len(wanted):
            break
    return found
