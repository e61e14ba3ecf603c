"""Streaming replies saved as they go: every reply of this process in one write.

A reply being streamed is saved every ``CHECKPOINT_SECONDS`` (its text so far, and a
sign of life: one not saved for a while has lost its writer and is marked interrupted,
:mod:`chatmon.states.chat_watch`). One ticker per process writes the text of every reply
it streams in one transaction, instead of one transaction per reply: with 200 replies
in flight that is one write every two seconds rather than a hundred a second, each
waiting for SQLite's single writer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from sqlalchemy import bindparam, update
from sqlmodel import Session

from chatmon import db
from chatmon.models import ChatMessage, utc_now
from chatmon.services.branches import STREAMING

log = logging.getLogger(__name__)

CHECKPOINT_SECONDS = 2.0

TextSoFar = Callable[[], str]

# message id -> how to read that reply's text so far; only touched on the event loop
_streaming: dict[int, TextSoFar] = {}
_ticker: asyncio.Task[None] | None = None


def keep_saved(message_id: int, text_so_far: TextSoFar) -> None:
    """Save reply ``message_id`` with the next checkpoint, and every one after, until
    :func:`stop_saving`."""
    global _ticker
    _streaming[message_id] = text_so_far
    loop = asyncio.get_running_loop()
    if _ticker is None or _ticker.done() or _ticker.get_loop() is not loop:
        _ticker = loop.create_task(_tick(), name="reply-checkpoints")


def stop_saving(message_id: int) -> None:
    """The reply is finished (its final save is the caller's): no more checkpoints."""
    _streaming.pop(message_id, None)


def save_checkpoints(*, session: Session, texts: dict[int, str]) -> int:
    """Write each streaming reply's text so far; returns how many rows were written.

    Only replies still streaming are written: one marked interrupted meanwhile (its
    writer presumed gone) or deleted with its conversation stays as it is.
    """
    if not texts:
        return 0
    table = ChatMessage.__table__  # type: ignore[attr-defined]  # SQLModel's table
    statement = (
        update(table)
        .where(table.c.id == bindparam("message_id"))
        .where(table.c.status == STREAMING)
        .values(content=bindparam("text"), updated_at=utc_now())
    )
    rows = [{"message_id": message_id, "text": text} for message_id, text in texts.items()]
    result = session.connection().execute(statement, rows)  # one executemany
    return int(result.rowcount or 0)


async def _tick() -> None:
    """Every ``CHECKPOINT_SECONDS`` while replies stream: save them all, in one write."""
    while _streaming:
        await asyncio.sleep(CHECKPOINT_SECONDS)
        texts = {message_id: text() for message_id, text in list(_streaming.items())}
        try:
            await db.run(save_checkpoints, texts=texts)
        except Exception:  # noqa: BLE001 - a missed checkpoint is retried at the next one
            log.warning("could not checkpoint %d streaming replies", len(texts), exc_info=True)
