"""The read plan of a usage window: signed parts that add up to exactly the window."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from chatmon.services import usage_plan
from chatmon.services.usage_plan import DAY, HOUR, RAW, SIX_HOURS

NOW = datetime(2026, 12, 2, 12, 41, 7, 123456, tzinfo=UTC)


def _coverage(parts: list[usage_plan.Part], moment: datetime) -> int:
    return sum(part.sign for part in parts if part.start <= moment < part.end)


def test_parts_add_up_to_exactly_the_window() -> None:
    rng = random.Random(5)
    for _ in range(300):
        length = timedelta(seconds=rng.uniform(0, 9 * 86400))
        start = NOW - timedelta(seconds=rng.uniform(0, 10 * 86400))
        end = start + length + timedelta(microseconds=1)
        now = rng.choice((end, NOW, end + timedelta(days=40)))
        parts = usage_plan.plan(start, end, now=now)
        probes = [start, end - timedelta(microseconds=1), end, start - timedelta(microseconds=1)]
        probes += [part.start for part in parts] + [part.end for part in parts]
        probes += [start + (end - start) * rng.random() for _ in range(20)]
        for moment in probes:
            assert _coverage(parts, moment) == (1 if start <= moment < end else 0)
        for part in parts:
            if part.period != RAW:  # rollup parts lie on their period's boundaries
                assert (
                    part.start.timestamp() % part.period == 0 == part.end.timestamp() % part.period
                )


def test_a_week_ending_now_reads_today_as_one_day_row() -> None:
    parts = usage_plan.plan(NOW - timedelta(days=7), NOW, now=NOW)
    days = [part for part in parts if part.period == DAY]
    assert len(days) == 1 and days[0].end > NOW  # the whole of today, up to tomorrow
    hours = sum((p.end - p.start) / timedelta(hours=1) for p in parts if p.period == HOUR)
    assert hours <= 12  # the older edge: its hours inside, or its day minus those outside
    future = [part for part in parts if part.sign < 0 and part.start >= NOW]
    assert future  # today minus what is after now (nothing recorded yet)


def test_a_short_window_reads_rows_only() -> None:
    parts = usage_plan.plan(NOW - timedelta(minutes=7), NOW, now=NOW)
    assert [(p.sign, p.period) for p in parts] == [(1, RAW)]


def test_a_week_starting_at_any_time_of_day_reads_at_most_six_hourly_row_sets() -> None:
    # the 6-hour blocks take the older edge: at most two blocks and three hours each side
    for minutes in range(0, 24 * 60, 17):
        now = NOW.replace(hour=0, minute=0) + timedelta(minutes=minutes)
        parts = usage_plan.plan(now - timedelta(days=7), now, now=now)
        hours = sum(p.last - p.first for p in parts if p.period == HOUR)
        blocks = sum(p.last - p.first for p in parts if p.period == SIX_HOURS)
        assert hours <= 6 and blocks <= 4, (now, parts)
