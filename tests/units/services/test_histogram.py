"""Log-scale bins report every latency to within 1 %."""

from __future__ import annotations

import random

from chatmon.services import histogram


def test_bin_value_within_1pct_of_every_value_in_the_bin() -> None:
    rng = random.Random(1)
    for _ in range(20_000):
        value = 10 ** rng.uniform(-2.9, 3.5)  # 1.3 ms .. ~50 min
        reported = histogram.bin_value(histogram.bin_of(value))
        assert abs(reported - value) <= 0.01 * value, value


def test_values_below_the_floor_are_within_about_a_millisecond() -> None:
    for value in (0.0, 0.0001, 0.001):
        assert abs(histogram.bin_value(histogram.bin_of(value)) - value) <= 0.00102


def test_percentile_of_empty_histogram_is_none() -> None:
    assert histogram.percentiles({}, 0.5, 0.95) == [None, None]


def test_percentile_nearest_rank() -> None:
    values = [0.1 * i for i in range(1, 11)]  # 0.1 .. 1.0
    counts: dict[int, int] = {}
    for value in values:
        counts[histogram.bin_of(value)] = counts.get(histogram.bin_of(value), 0) + 1
    # nearest rank: p50 of 10 values is the 5th, p95 the 10th, p10 the 1st
    found = histogram.percentiles(counts, 0.5, 0.95, 0.1)
    for value, exact in zip(found, (0.5, 1.0, 0.1), strict=True):
        assert value is not None and abs(value - exact) <= 0.01 * exact


def test_rank_is_one_based_and_never_zero() -> None:
    assert histogram.rank(0.0, 10) == 1
    assert histogram.rank(0.5, 10) == 5
    assert histogram.rank(0.99, 100) == 99
    assert histogram.rank(0.95, 1) == 1
