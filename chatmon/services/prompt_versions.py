"""The ``prompt_version`` table: every system prompt version the chat served.

The chat's :class:`~chatmon.services.prompts.SystemPromptSource` tells a
:class:`PromptVersionBook` which version it serves, once per request (never per token).
The book keeps an in-memory note per version and writes only when it must: the first
time this process serves a version (an upsert: insert it, or widen its ``first_seen`` /
``last_seen`` when another worker or an earlier run already has it), then ``last_seen``
at most once per :data:`REFRESH` per version. Writes run on one background thread, so a
request never waits for the database, and a failed write is logged and retried at the
next sighting: the chat keeps working without the table.

``last_seen`` is therefore at most ``REFRESH`` behind the last request that used a
version; ``first_seen`` is the first request's time (to the second).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from chatmon.models import PromptVersion
from chatmon.services.prompts import SystemPrompt
from chatmon.services.sql_time import to_utc

log = logging.getLogger(__name__)

REFRESH = 60.0  # seconds between two last_seen writes of one version by one worker
MAX_TEXT_CHARS = 100_000  # a prompt file is short; this bounds a runaway one


def upsert(*, session: Session, version: str, text: str, at: datetime) -> PromptVersion:
    """Record that ``version`` (with ``text``) was served at ``at``; the caller commits.

    Inserts the row, or widens an existing one's ``[first_seen, last_seen]`` to hold
    ``at``. Two workers inserting the same new version at once: the loser's commit
    fails on the primary key, and :meth:`PromptVersionBook` simply retries (then it
    updates)."""
    moment = to_utc(at)
    row = session.get(PromptVersion, version)
    if row is None:
        row = PromptVersion(
            hash=version, first_seen=moment, last_seen=moment, text=text[:MAX_TEXT_CHARS]
        )
    else:
        if to_utc(row.first_seen) > moment:
            row.first_seen = moment
        if to_utc(row.last_seen) < moment:
            row.last_seen = moment
    session.add(row)
    return row


def recent(*, session: Session, since: datetime, limit: int = 50) -> list[PromptVersion]:
    """Versions last seen at or after ``since``, the latest used first."""
    return list(
        session.exec(
            select(PromptVersion)
            .where(col(PromptVersion.last_seen) >= to_utc(since))
            .order_by(col(PromptVersion.last_seen).desc())
            .limit(limit)
        ).all()
    )


def by_prefix(*, session: Session, prefix: str) -> PromptVersion | None:
    """The version whose hash starts with ``prefix`` (change events keep 8 characters)."""
    if not prefix or not prefix.isalnum():
        return None
    return session.exec(
        select(PromptVersion)
        .where(col(PromptVersion.hash).startswith(prefix))
        .order_by(col(PromptVersion.last_seen).desc())
    ).first()


class PromptVersionBook:
    """Keeps ``prompt_version`` up to date from the versions a worker serves.

    ``note(prompt)`` is the listener :class:`SystemPromptSource` calls per request: a
    dictionary lookup, and a write handed to the background thread when one is due.
    """

    def __init__(
        self,
        engine: Engine | Callable[[], Engine],
        *,
        refresh: float = REFRESH,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._engine = engine
        self._refresh = refresh
        self._clock = clock
        self._written: dict[str, float] = {}  # version -> monotonic time of the last write
        self._pending: set[str] = set()
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="prompt-versions")

    def note(self, prompt: SystemPrompt) -> None:
        """``prompt`` is being served now: write it if this worker has not lately."""
        now = self._clock()
        with self._lock:
            last = self._written.get(prompt.version)
            if prompt.version in self._pending or (last is not None and now - last < self._refresh):
                return
            self._pending.add(prompt.version)
        self._pool.submit(self._write, prompt, datetime.now(UTC))

    def flush(self) -> None:
        """Wait for the writes handed over so far (tests, shutdown)."""
        self._pool.submit(lambda: None).result()

    def close(self) -> None:
        """Finish the pending writes and stop the thread."""
        self._pool.shutdown(wait=True)

    def _engine_now(self) -> Engine:
        return self._engine if isinstance(self._engine, Engine) else self._engine()

    def _write(self, prompt: SystemPrompt, at: datetime) -> None:
        ok = False
        try:
            for attempt in range(2):  # a second try after losing an insert race
                try:
                    with Session(self._engine_now()) as session:
                        upsert(session=session, version=prompt.version, text=prompt.text, at=at)
                        session.commit()
                    ok = True
                    break
                except IntegrityError:
                    if attempt:
                        raise
        except Exception as exc:  # noqa: BLE001 - the chat goes on; the next sighting retries
            # the class only: a statement's text would carry the prompt's
            log.warning(
                "prompt versions: recording %s failed (%s)", prompt.version, type(exc).__name__
            )
        finally:
            with self._lock:
                self._pending.discard(prompt.version)
                if ok:
                    self._written[prompt.version] = self._clock()
