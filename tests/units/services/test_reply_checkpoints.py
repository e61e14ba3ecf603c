"""Streaming replies saved as they go (chatmon.services.reply_checkpoints): every reply
of the process in one write per checkpoint, only while it streams."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session

from chatmon.models import ChatMessage
from chatmon.services import branches, chat_saves, reply_checkpoints
from chatmon.services.chat_messages import INTERRUPTED


def _streaming_reply(session: Session, text: str) -> int:
    _, reply, _ = chat_saves.save_user_message(
        session=session,
        owner_id="alice",
        conversation_id="",
        text=text,
        parent_id=branches.LEAF,
        correlation_id=f"c-{text}",
        top_id="",
    )
    session.commit()
    return reply.id or 0


def _content(engine: Engine, message_id: int) -> str:
    with Session(engine) as session:
        row = session.get(ChatMessage, message_id)
        assert row is not None
        return row.content


def test_only_replies_still_streaming_are_written(session: Session, engine: Engine) -> None:
    live, dead = _streaming_reply(session, "one"), _streaming_reply(session, "two")
    with Session(engine) as other:
        other.get(ChatMessage, dead).status = INTERRUPTED  # type: ignore[union-attr]
        other.commit()
    written = reply_checkpoints.save_checkpoints(
        session=session, texts={live: "so far", dead: "too late", 10**9: "gone"}
    )
    session.commit()
    assert written == 1
    assert _content(engine, live) == "so far" and _content(engine, dead) == ""


def test_every_streaming_reply_is_saved_in_one_write_until_it_stops(
    session: Session, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("chatmon.db.get_engine", lambda: engine)
    monkeypatch.setattr(reply_checkpoints, "CHECKPOINT_SECONDS", 0.05)
    replies = [_streaming_reply(session, f"q{i}") for i in range(5)]
    texts = {message_id: f"text of {message_id}" for message_id in replies}
    commits: list[int] = []

    def note_commit(_conn: object) -> None:
        commits.append(1)

    async def stream() -> None:
        for message_id in replies:
            reply_checkpoints.keep_saved(message_id, lambda m=message_id: texts[m])
        for _ in range(1000):  # the first checkpoint (polling the database, not the ticker)
            if all(_content(engine, m) == texts[m] for m in replies):
                break
            await asyncio.sleep(0.01)
        saved_then = len(commits)
        for message_id in replies:
            reply_checkpoints.stop_saving(message_id)
            texts[message_id] = "changed after it stopped"
        await asyncio.sleep(0.3)
        assert len(commits) <= saved_then + 1  # at most the write already under way

    event.listen(engine, "commit", note_commit)
    try:
        asyncio.run(asyncio.wait_for(stream(), timeout=20))
    finally:
        event.remove(engine, "commit", note_commit)
    assert 1 <= len(commits) <= 3  # five replies, not five writes per checkpoint
    assert all(_content(engine, m) == f"text of {m}" for m in replies)
