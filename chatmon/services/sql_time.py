"""Portable SQL for time bucketing: whole seconds since the Unix epoch of a UTC timestamp.

SQLite and PostgreSQL spell this differently; everything else in the stats queries is
plain SQL, so this one construct is what keeps them off dialect-specific code.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement, FunctionElement

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class epoch_seconds(FunctionElement[int]):  # noqa: N801 - reads like the SQL function it renders
    """``epoch_seconds(column)``: whole seconds since 1970-01-01 UTC, as an integer."""

    type = BigInteger()
    inherit_cache = True


@compiles(epoch_seconds, "sqlite")
def _epoch_seconds_sqlite(element: epoch_seconds, compiler: Any, **kw: Any) -> str:
    return f"CAST(strftime('%s', {compiler.process(element.clauses, **kw)}) AS INTEGER)"


@compiles(epoch_seconds)
def _epoch_seconds_default(element: epoch_seconds, compiler: Any, **kw: Any) -> str:
    return f"CAST(FLOOR(EXTRACT(EPOCH FROM {compiler.process(element.clauses, **kw)})) AS BIGINT)"


def bucket_of(column: Any, seconds: int) -> ColumnElement[int]:
    """The index of the ``seconds``-wide, epoch-aligned bucket a timestamp column falls in."""
    return epoch_seconds(column) // seconds


def to_utc(moment: datetime) -> datetime:
    """``moment`` as an aware UTC datetime (naive values are taken to be UTC already)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def epoch_of(moment: datetime) -> float:
    """Seconds since the epoch of ``moment`` (naive = UTC)."""
    return (to_utc(moment) - EPOCH).total_seconds()


def hour_of(moment: datetime) -> int:
    """Whole hours since the epoch: the rollup key of the hour ``moment`` falls in."""
    return int(epoch_of(moment) // 3600)


def from_epoch(seconds: float) -> datetime:
    """The aware UTC datetime ``seconds`` after the epoch."""
    return datetime.fromtimestamp(seconds, tz=UTC)
