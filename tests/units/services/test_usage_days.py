"""Spend over long windows: the daily and 6-hour rollups, read with hours and rows at
the edges, give exactly what a GROUP BY over the rows gives, and stay the sums of
their hours through feedback, retention and rebuilds."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlmodel import Session, col

from chatmon.models import LLMUsageDaily, LLMUsageHourly, LLMUsageSixHourly
from chatmon.services import request_log, usage
from chatmon.services.events import LLMCall
from tests.units.services.stats_factory import T0, make_call, record

DAY = timedelta(days=1)


def _history(seed: int = 7, count: int = 300) -> list[LLMCall]:
    """Requests of 12 users in 30 conversations over four days around T0."""
    rng = random.Random(seed)
    calls = []
    for _ in range(count):
        at = timedelta(seconds=rng.uniform(-2, 2) * DAY.total_seconds())
        failed = rng.random() < 0.1
        calls.append(
            make_call(
                at=at,
                session_id=f"u{rng.randrange(12)}",
                conversation_id=f"c{rng.randrange(30)}",
                model=rng.choice(("m-a", "m-b")),
                status="error" if failed else "ok",
                error_category="timeout" if failed else None,
                cost_usd=None if failed else rng.randrange(1, 50) / 1000,
            )
        )
    return calls


def _expected(calls: list[LLMCall], start: datetime, end: datetime, by: str) -> list[tuple]:
    """(key, requests, errors, cost) per key, the way a GROUP BY over the rows sees it."""
    sums: dict[str, list[float]] = defaultdict(lambda: [0, 0, 0.0])
    for call in calls:
        if start <= call.started_at < end:
            key = getattr(call, usage.DIMENSIONS[by])
            sums[key][0] += 1
            sums[key][1] += call.status == "error"
            sums[key][2] += call.cost_usd or 0.0
    rows = [(k, n, e, round(c, 9)) for k, (n, e, c) in sums.items()]
    return sorted(rows, key=lambda r: (-r[3], -r[1], r[0]))


def _figures(rows: list[usage.UsageRow]) -> list[tuple]:
    return [(r.key, r.requests, r.errors, round(r.cost_usd, 9)) for r in rows]


def _windows(rng: random.Random) -> list[tuple[datetime, datetime]]:
    windows = [
        (T0 - 2 * DAY, T0 + 2 * DAY),  # whole days
        (T0 - DAY - timedelta(hours=5, minutes=7), T0 + timedelta(hours=3, seconds=1)),
        (T0 + timedelta(minutes=3), T0 + timedelta(minutes=41)),  # inside one hour
        (T0 - timedelta(hours=30, microseconds=5), T0 + timedelta(hours=1, microseconds=7)),
    ]
    for _ in range(12):
        a, b = sorted(rng.uniform(-2.2, 2.2) * DAY.total_seconds() for _ in range(2))
        windows.append((T0 + timedelta(seconds=a), T0 + timedelta(seconds=b + 1)))
    return windows


def test_any_window_equals_a_group_by_over_the_rows(session: Session) -> None:
    calls = _history()
    record(session, *calls)
    rng = random.Random(3)
    for start, end in _windows(rng):
        # "now" steers the plan only: at the window's end (complements of the future
        # are free) or long after it (every edge read directly), the figures agree
        for now in (end, end + 30 * DAY):
            for by in ("user", "conversation", "model"):
                got = usage.top(session=session, start=start, end=end, by=by, limit=1000, now=now)
                assert _figures(got) == _expected(calls, start, end, by), (start, end, now, by)


def test_limit_keeps_the_most_expensive_keys(session: Session) -> None:
    calls = _history()
    record(session, *calls)
    start, end = T0 - DAY - timedelta(minutes=17), T0 + DAY
    got = usage.top(session=session, start=start, end=end, by="conversation", limit=5, now=end)
    assert _figures(got) == _expected(calls, start, end, "conversation")[:5]


def test_late_feedback_counts_in_whole_days(session: Session) -> None:
    call = make_call(at=-DAY + timedelta(hours=3), session_id="u-late")
    record(session, call)
    request_log.record_feedback(session=session, correlation_id=call.correlation_id, rating=1)
    session.commit()
    (row,) = usage.top(session=session, start=T0 - 2 * DAY, end=T0 + DAY, by="user")
    assert (row.key, row.feedback_up, row.feedback_down) == ("u-late", 1, 0)
    request_log.record_feedback(session=session, correlation_id=call.correlation_id, rating=-1)
    session.commit()
    (row,) = usage.top(session=session, start=T0 - 2 * DAY, end=T0 + DAY, by="user")
    assert (row.feedback_up, row.feedback_down) == (0, 1)


def _periods_from_hours(session: Session, hours: int) -> set[tuple]:
    h = LLMUsageHourly
    period = col(h.hour) // hours  # one expression: PostgreSQL matches GROUP BY by its text
    query = select(
        h.dimension,
        period,
        h.key,
        func.sum(h.requests),
        func.sum(h.errors),
        func.sum(h.cost_usd),
        func.sum(h.feedback_up),
        func.sum(h.feedback_down),
    ).group_by(h.dimension, period, h.key)
    return {_rounded(row) for row in session.execute(query)}


def _periods(session: Session, hours: int) -> set[tuple]:
    table, column = (LLMUsageDaily, "day") if hours == 24 else (LLMUsageSixHourly, "block")
    query = select(
        table.dimension,
        getattr(table, column),
        table.key,
        table.requests,
        table.errors,
        table.cost_usd,
        table.feedback_up,
        table.feedback_down,
    )
    return {_rounded(row) for row in session.execute(query)}


def _rounded(row: Any) -> tuple:
    *head, cost, up, down = tuple(row)
    return (*head, round(cost, 9), up, down)  # sums of floats in another order


def _days_from_hours(session: Session) -> set[tuple]:
    return _periods_from_hours(session, 24)


def _days(session: Session) -> set[tuple]:
    return _periods(session, 24)


def _blocks_from_hours(session: Session) -> set[tuple]:
    return _periods_from_hours(session, 6)


def _blocks(session: Session) -> set[tuple]:
    return _periods(session, 6)


def test_each_day_is_the_sum_of_its_hours_and_a_rebuild_agrees(session: Session) -> None:
    calls = _history(count=120)
    record(session, *calls)
    for call in calls[:20]:
        request_log.record_feedback(session=session, correlation_id=call.correlation_id, rating=1)
    session.commit()
    incremental = _days(session)
    assert incremental == _days_from_hours(session) and incremental
    blocks = _blocks(session)
    assert blocks == _blocks_from_hours(session) and len(blocks) > len(incremental)
    request_log.rebuild_rollups(session=session)
    session.commit()
    assert _days(session) == incremental
    assert _blocks(session) == blocks


@pytest.mark.parametrize("cutoff_hours", [0, 7, 12, 13])
def test_retention_keeps_days_and_blocks_equal_to_their_hours(
    session: Session, cutoff_hours: int
) -> None:
    calls = _history()
    record(session, *calls)
    # T0 is noon: a block boundary mid-day, mid-block, a day boundary, a day's first block
    cutoff = T0 - DAY + timedelta(hours=cutoff_hours)
    while request_log.prune_rows(session=session, before=cutoff):
        session.commit()
    request_log.prune_rollups(session=session, before=cutoff)
    session.commit()
    assert _days(session) == _days_from_hours(session)
    assert _blocks(session) == _blocks_from_hours(session)
    kept = [call for call in calls if call.started_at >= cutoff]
    start, end = T0 - 2 * DAY, T0 + 2 * DAY
    got = usage.top(session=session, start=start, end=end, by="user", limit=100)
    assert _figures(got) == _expected(kept, start, end, "user")
