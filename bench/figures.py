"""Figures the benchmarks share: :func:`percentile` of measured values.

The same nearest-rank definition as the app's window figures
(:func:`chatmon.services.histogram.rank`), so a benchmark's p95 and the dashboard's
p95 of the same latencies are the same value. Importing this reads no settings (it
may come before ``bench.request_path.prepare``).
"""

from __future__ import annotations

from collections.abc import Sequence

from chatmon.services.histogram import rank


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100) of a non-empty sequence: the
    ``ceil(q/100 * n)``-th smallest value (at least the smallest)."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    return ordered[rank(q / 100, len(ordered)) - 1]
