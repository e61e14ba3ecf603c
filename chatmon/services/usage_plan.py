"""How to read a window of spend from rollups: a signed cover of ``[start, end)``.

``llm_usage_daily``, ``llm_usage_6h`` and ``llm_usage_hourly`` hold sums per key and
period, and ``llm_request`` the rows. A window is read as whole periods plus edges, and an edge
can be taken directly (the part inside the window, at a finer level) or as a
complement (the whole period it lies in, minus the part outside the window). Both are
exact: every day row is the sum of its hours, every hour the sum of its rows.

The complement is what makes a window ending now cheap: "today" is one day row minus
the rows after now (there are none yet), where reading it directly takes up to 23
hourly rows per key. With many users each hourly row set is almost one row per
request, so a 7-day window by user reads about 7 row sets per key instead of 168.

Costs are estimated in "row sets" (one period's rows of all keys), which is what the
read spends when every key is active in every period (the case that needs speed);
anything after ``now`` costs nothing, as no request has started there yet.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from itertools import product

from chatmon.services.sql_time import epoch_of, from_epoch

HOUR = 3600
SIX_HOURS = 6 * HOUR
DAY = 24 * HOUR
PERIODS = (DAY, SIX_HOURS, HOUR)  # the rollup levels, coarse to fine, each dividing the last
RAW = 0  # Part.period of a range of llm_request rows
# The cost of one period's rows of every key, in row sets; a day costs more than an
# hour (more keys are active in it) but far less than its 24 hours, a block between.
WEIGHT = {DAY: 2.0, SIX_HOURS: 1.5, HOUR: 1.0}
RAW_WEIGHT = 2.0  # an hour of rows: about an hourly row set, each row read through an index


@dataclass(frozen=True)
class Part:
    """``sign`` times the sums of ``[start, end)`` read at ``period`` (or RAW rows).

    For a rollup level, ``start`` and ``end`` are period boundaries and the rows are
    those with ``first <= period index < last``.
    """

    sign: int
    period: int
    start: datetime
    end: datetime

    @property
    def first(self) -> int:
        return int(epoch_of(self.start)) // self.period

    @property
    def last(self) -> int:
        return int(epoch_of(self.end)) // self.period


def plan(
    start: datetime, end: datetime, *, now: datetime, periods: tuple[int, ...] = PERIODS
) -> list[Part]:
    """The cheapest signed cover of ``[start, end)`` (positive parts minus negative
    parts add up to exactly the window)."""
    parts, _cost = _cover(epoch_of(start), epoch_of(end), start, end, 1, periods, epoch_of(now))
    return parts


def _moment(seconds: float, *known: tuple[float, datetime]) -> datetime:
    for value, moment in known:  # keep the caller's datetimes (microseconds intact)
        if value == seconds:
            return moment
    return from_epoch(seconds)


def _cover(
    s: float,
    e: float,
    start: datetime,
    end: datetime,
    sign: int,
    periods: tuple[int, ...],
    now: float,
) -> tuple[list[Part], float]:
    if e <= s:
        return [], 0.0
    raw_cost = RAW_WEIGHT * max(0.0, min(e, now) - s) / HOUR
    raw = ([Part(sign, RAW, start, end)], raw_cost)
    if not periods:
        return raw
    period, finer = periods[0], periods[1:]
    best = raw if not finer else _cover(s, e, start, end, sign, finer, now)
    lefts = {math.ceil(s / period) * period, math.floor(s / period) * period}
    rights = {math.floor(e / period) * period, math.ceil(e / period) * period}
    for left, right in product(sorted(lefts), sorted(rights)):
        if right < left:
            continue
        parts: list[Part] = []
        cost = 0.0
        if right > left:
            parts.append(Part(sign, period, from_epoch(left), from_epoch(right)))
            cost += _periods_cost(left, right, period, now)
        known = ((s, start), (e, end))
        # left edge: [s, left) added, or [left, s) taken away; the same for the right
        for a, b, edge_sign in (
            (s, left, sign),
            (left, s, -sign),
            (right, e, sign),
            (e, right, -sign),
        ):
            if b > a:
                more, more_cost = _cover(
                    a, b, _moment(a, *known), _moment(b, *known), edge_sign, finer, now
                )
                parts += more
                cost += more_cost
        if cost < best[1]:
            best = (parts, cost)
    return best


def _periods_cost(left: float, right: float, period: int, now: float) -> float:
    """Row sets of the periods ``[left, right)``, each counted for its share before now."""
    elapsed = max(0.0, min(right, now) - left)
    return WEIGHT.get(period, 1.0) * math.ceil(elapsed / period - 1e-9) if elapsed else 0.0
