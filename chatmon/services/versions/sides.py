"""The figures of one side of a change, or of each prompt version over a window.

Read the way the dashboard reads a window (:func:`chatmon.services.stats.rollups.split`):
the whole hours inside it from the prompt-version rollups (``llm_version_hourly``,
``llm_version_latency_hourly``, kept in step by :mod:`chatmon.services.version_rollup`),
the partial hours at its two edges from ``llm_request`` itself. Counts and histogram
bins are exact, so every figure is the one the rows give; cost sums differ from a
single pass over the rows only by floating-point rounding (~1e-15 relative). A side of
a week reads a few thousand rollup rows instead of every request.

``use_rollups=False`` reads every request of the window instead (the reference the
rollup path is tested and benchmarked against).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, case, func
from sqlalchemy.sql.expression import ColumnElement
from sqlmodel import Session, col, select

from chatmon.models import LLMRequest, LLMVersionHourly, LLMVersionLatencyHourly
from chatmon.observability.call_status import ERROR_STATUSES
from chatmon.services.sql_time import epoch_of, to_utc
from chatmon.services.stats.rollups import Split, split
from chatmon.services.stats.window import HOUR
from chatmon.services.versions.tally import Side, Tally

# --------------------------------------------------------------------------- the rows
#
# Every statement is built once and takes its window and versions as parameters:
# building a SQLAlchemy statement costs more Python than the query itself costs SQLite
# here, and a report runs a few dozen of them.


def _count_if(condition: ColumnElement[bool]) -> Any:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def _real() -> ColumnElement[bool]:
    return col(LLMRequest.synthetic).is_(False)  # probes: in no figure


@functools.cache
def _rows_statement(*, by_version: bool, filtered: bool, moments: bool) -> Any:
    """Sums per latency bin (and prompt version) of the real requests started in
    ``[:start, :end)`` (of the ``:versions`` when ``filtered``), and each bin's first
    and last start when ``moments``: a few hundred result rows, whatever the count."""
    r = LLMRequest
    started = col(r.started_at)
    known_cost = and_(col(r.cost_usd).is_not(None), col(r.priced).is_(True))
    keys: list[Any] = [col(r.prompt_version)] if by_version else []
    bin_column = col(r.latency_bin)
    columns: list[Any] = [
        *keys,
        bin_column,
        func.count(),
        _count_if(col(r.status).in_(ERROR_STATUSES)),
        _count_if(col(r.feedback) == 1),
        _count_if(col(r.feedback) == -1),
        _count_if(known_cost),
        func.coalesce(func.sum(case((known_cost, r.cost_usd), else_=0.0)), 0.0),
        func.coalesce(
            func.sum(case((known_cost, col(r.cost_usd) * col(r.cost_usd)), else_=0.0)), 0.0
        ),
        _count_if(col(r.implicit_flags) != 0),
    ]
    if moments:
        columns += [func.min(started), func.max(started)]
    query = (
        select(*columns)
        .where(_real(), started >= bindparam("start"), started < bindparam("end"))
        .group_by(*keys, bin_column)
    )
    if filtered:
        query = query.where(col(r.prompt_version).in_(bindparam("versions", expanding=True)))
    return query


def _row_tallies(
    session: Session,
    start: datetime,
    end: datetime,
    versions: Sequence[str] | None,
    *,
    by_version: bool,
    moments: bool,
) -> dict[str, Tally]:
    """The requests of ``[start, end)`` (of ``versions`` when given), from the rows;
    ``moments``: with each version's first and last start."""
    query = _rows_statement(by_version=by_version, filtered=versions is not None, moments=moments)
    params: dict[str, Any] = {"start": start, "end": end}
    if versions is not None:
        params["versions"] = list(versions)
    found: dict[str, Tally] = {}
    for values in session.connection().execute(query, params):
        key = str(values[0]) if by_version else ""
        index, *sums = values[1:] if by_version else values
        tally = found.setdefault(key, Tally())
        if moments:
            tally.seen(sums[-2], sums[-1])
            sums = sums[:-2]
        tally.add(sums)
        if index is not None:
            tally.add_bin(index, sums[0])
    return found


def _versions_in_rows(session: Session, prefix: str) -> list[str]:
    """The stored prompt versions that start with ``prefix`` (a change event keeps 8
    characters of a 12-character version), from the (prompt_version, started_at) index."""
    version = col(LLMRequest.prompt_version)
    query = select(version).where(_prefixed(version, prefix)).distinct()
    return [str(v) for v in session.connection().execute(query).scalars()]


def _prefixed(version: Any, prefix: str) -> ColumnElement[bool]:
    if prefix.isascii() and prefix.isalnum():  # "~" sorts after every letter and digit
        return and_(version >= prefix, version < prefix + "~")
    return version.startswith(prefix, autoescape=True)  # type: ignore[no-any-return]


# --------------------------------------------------------------------------- the rollups


@functools.cache
def _rollup_statements(*, by_version: bool, filtered: bool) -> tuple[Any, Any]:
    """The sums and the latency histogram of the rollup hours ``[:first, :end)`` (of the
    ``:versions`` when ``filtered``), per prompt version when ``by_version``."""
    h, b = LLMVersionHourly, LLMVersionLatencyHourly
    statements = []
    for table in (h, b):
        keys: list[Any] = [col(table.prompt_version)] if by_version else []
        if table is h:
            names = ("requests", "errors", "feedback_up", "feedback_down", "costed")
            values: list[Any] = [func.sum(getattr(h, name)) for name in names]
            values += [func.sum(h.cost_usd), func.sum(h.cost_squares), func.sum(h.flagged)]
            group = keys
        else:
            values = [col(b.bin), func.sum(b.count)]
            group = [*keys, col(b.bin)]
        query = select(*keys, *values).where(
            col(table.hour) >= bindparam("first"), col(table.hour) < bindparam("end")
        )
        if filtered:
            query = query.where(
                col(table.prompt_version).in_(bindparam("versions", expanding=True))
            )
        statements.append(query.group_by(*group) if group else query)
    return statements[0], statements[1]


def _rollup_tallies(
    session: Session, window: Split, versions: Sequence[str] | None, *, by_version: bool
) -> dict[str, Tally]:
    """The whole hours of ``window`` from the rollups, of ``versions`` when given."""
    found: dict[str, Tally] = {}
    if not window.has_hours:
        return found
    sums_query, bins_query = _rollup_statements(
        by_version=by_version, filtered=versions is not None
    )
    params: dict[str, Any] = {"first": window.first_hour, "end": window.end_hour}
    if versions is not None:
        params["versions"] = list(versions)
    connection = session.connection()
    for row in connection.execute(sums_query, params):
        key = str(row[0]) if by_version else ""
        found.setdefault(key, Tally()).add(row[1:] if by_version else row)
    for row in connection.execute(bins_query, params):
        key = str(row[0]) if by_version else ""
        index, count = row[1:] if by_version else row
        if index is not None:
            found.setdefault(key, Tally()).add_bin(index, count)
    return {key: tally for key, tally in found.items() if tally.requests}


@functools.cache
def _versions_in_rollup_statement() -> Any:
    h = LLMVersionHourly
    version = col(h.prompt_version)
    return (
        select(version)
        .where(col(h.hour) >= bindparam("first"), col(h.hour) < bindparam("end"))
        .where(version >= bindparam("low"), version < bindparam("high"))
        .distinct()
    )


def _versions_in_rollup(session: Session, start: datetime, end: datetime, prefix: str) -> list[str]:
    """:func:`_versions_in_rows` from the rollup's hours covering ``[start, end)``."""
    first, last = math.floor(epoch_of(start) / HOUR), math.ceil(epoch_of(end) / HOUR)
    if prefix.isascii() and prefix.isalnum():
        params = {"first": first, "end": last, "low": prefix, "high": prefix + "~"}
        found = session.connection().execute(_versions_in_rollup_statement(), params)
    else:
        h = LLMVersionHourly
        query = (
            select(col(h.prompt_version))
            .where(col(h.hour) >= first, col(h.hour) < last)
            .where(_prefixed(col(h.prompt_version), prefix))
            .distinct()
        )
        found = session.connection().execute(query)
    return [str(v) for v in found.scalars()]


def _merge(into: dict[str, Tally], more: dict[str, Tally]) -> None:
    for key, tally in more.items():
        into.setdefault(key, Tally()).merge(tally)


def _tallies(
    session: Session,
    start: datetime,
    end: datetime,
    versions: Sequence[str] | None,
    *,
    by_version: bool,
    use_rollups: bool,
) -> dict[str, Tally]:
    """The window's tallies: whole hours from the rollups, edges (or all) from the rows."""
    window = split(start, end, use_rollups=use_rollups)
    found = _rollup_tallies(session, window, versions, by_version=by_version)
    for edge_start, edge_end in window.edges:
        edge = _row_tallies(
            session,
            edge_start,
            edge_end,
            versions,
            by_version=by_version,
            moments=not use_rollups,  # with rollups: found by figures_by_version's seeks
        )
        _merge(found, edge)
    return found


# --------------------------------------------------------------------------- public


def side_figures(
    *,
    session: Session,
    start: datetime,
    end: datetime,
    prompt_prefix: str | None = None,
    use_rollups: bool = True,
) -> Side:
    """The figures of the (non-synthetic) requests started in ``[start, end)``, of the
    prompt versions starting with ``prompt_prefix`` when given."""
    start, end = to_utc(start), to_utc(end)
    if end <= start:
        return Side(start=start, end=end)
    versions: list[str] | None = None
    if prompt_prefix is not None:
        versions = (
            _versions_in_rollup(session, start, end, prompt_prefix)
            if use_rollups
            else _versions_in_rows(session, prompt_prefix)
        )
        if not versions:
            return Side(start=start, end=end)
    found = _tallies(session, start, end, versions, by_version=False, use_rollups=use_rollups)
    return found.get("", Tally()).side(start, end)


@functools.cache
def _moment_statement(*, last: bool) -> Any:
    """A version's first (or last) real request in a window: an ordered walk of the
    (prompt_version, started_at) index that stops at the first non-synthetic row."""
    r = LLMRequest
    started = col(r.started_at)
    return (
        select(started)
        .where(col(r.prompt_version) == bindparam("version"), _real())
        .where(started >= bindparam("start"), started < bindparam("end"))
        .order_by(started.desc() if last else started)
        .limit(1)
    )


def _first_and_last(
    session: Session, version: str, start: datetime, end: datetime
) -> tuple[datetime | None, datetime | None]:
    params = {"version": version, "start": start, "end": end}
    first, last = (
        session.connection().execute(_moment_statement(last=last), params).scalar()
        for last in (False, True)
    )
    return (None if first is None else to_utc(first)), (None if last is None else to_utc(last))


def figures_by_version(
    *, session: Session, start: datetime, end: datetime, use_rollups: bool = True
) -> dict[str, tuple[Side, datetime | None, datetime | None]]:
    """Each prompt version's figures over ``[start, end)`` and its first and last
    request in it."""
    start, end = to_utc(start), to_utc(end)
    if end <= start:
        return {}
    found = _tallies(session, start, end, None, by_version=True, use_rollups=use_rollups)
    result: dict[str, tuple[Side, datetime | None, datetime | None]] = {}
    for version, tally in found.items():
        first, last = tally.first, tally.last
        if use_rollups:  # the rollups know the hour, not the moment
            first, last = _first_and_last(session, version, start, end)
        result[version] = (tally.side(start, end), first, last)
    return result
