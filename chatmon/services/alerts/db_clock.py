"""The database server's clock, as SQL: what delivery leases and retry times are measured on.

Every process that sends alerts compares ``alert_delivery.due_at`` with *now*. If each
host used its own clock, a host running ahead would find a live lease already expired
and send the message a second time; one running behind would leave a crashed sender's
delivery untouched for as long as it lags. So ``due_at`` is only ever written and
compared as ``db_now() + seconds``, computed by the database in the statement itself:

- PostgreSQL: ``statement_timestamp()``, the server's clock, whichever host asks;
- SQLite: ``strftime(..., 'now')``. SQLite runs inside each process, so this is the clock
  of the machine that holds the database file, which every process using the file
  shares (SQLite cannot be shared between machines anyway).

The SQLite form is written the way SQLAlchemy stores datetimes there
(``YYYY-MM-DD HH:MM:SS.ffffff``, UTC), so it compares as text with stored values and
reads back as a datetime.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import literal
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import FunctionElement
from sqlmodel.sql.sqltypes import UTCDateTime


class db_now(FunctionElement[datetime]):  # noqa: N801 - reads like the SQL function it renders
    """``db_now(seconds=0.0)``: the database server's current UTC time plus ``seconds``."""

    type = UTCDateTime()
    inherit_cache = True
    name = "db_now"

    def __init__(self, seconds: float = 0.0) -> None:
        super().__init__(literal(float(seconds)))


@compiles(db_now, "sqlite")
def _db_now_sqlite(element: db_now, compiler: Any, **kw: Any) -> str:
    seconds = compiler.process(element.clauses, **kw)
    # '%f' is "SS.SSS": the literal 000 pads it to the microseconds SQLAlchemy writes
    return f"strftime('%Y-%m-%d %H:%M:%f000', 'now', ({seconds}) || ' seconds')"


@compiles(db_now, "postgresql")
def _db_now_postgresql(element: db_now, compiler: Any, **kw: Any) -> str:
    seconds = compiler.process(element.clauses, **kw)
    return f"(statement_timestamp() + make_interval(secs => CAST({seconds} AS DOUBLE PRECISION)))"


@compiles(db_now)
def _db_now_other(element: db_now, compiler: Any, **kw: Any) -> str:
    raise NotImplementedError(f"alerts need SQLite or PostgreSQL, not {compiler.dialect.name}")
