"""The message-branches migration turns existing conversations into one straight branch."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine, text
from sqlmodel import Session

from alembic import command
from chatmon.migrate import alembic_config
from chatmon.services import chat_messages

BEFORE = "e5b8c2d4f6a1"
REVISION = "e5b8c2d7a913"


def test_existing_messages_become_one_branch_and_downgrade_drops_it(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    config = alembic_config(url)
    command.upgrade(config, BEFORE)
    engine = create_engine(url)
    with engine.begin() as connection:
        for conversation in ("a" * 32, "b" * 32):
            connection.execute(
                text(
                    "INSERT INTO conversation (id, owner_id, title, created_at, updated_at)"
                    " VALUES (:id, 'alice', 'old chat', '2026-01-01', '2026-01-01')"
                ),
                {"id": conversation},
            )
        # interleaved, as two conversations written at the same time would be
        for conversation, role, content in [
            ("a" * 32, "user", "a-q1"),
            ("b" * 32, "user", "b-q1"),
            ("a" * 32, "assistant", "a-r1"),
            ("a" * 32, "user", "a-q2"),
            ("b" * 32, "assistant", "b-r1"),
        ]:
            connection.execute(
                text(
                    "INSERT INTO chatmessage (conversation_id, role, content, created_at)"
                    " VALUES (:c, :role, :content, '2026-01-01')"
                ),
                {"c": conversation, "role": role, "content": content},
            )
    command.upgrade(config, REVISION)
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT id, parent_id, active FROM chatmessage ORDER BY id")
        ).all()
    assert [tuple(r) for r in rows] == [(1, None, 1), (2, None, 1), (3, 1, 1), (4, 3, 1), (5, 2, 1)]
    with Session(engine) as session:
        shown = chat_messages.list_messages(
            session=session, owner_id="alice", conversation_id="a" * 32
        )
        assert [m.content for m in shown] == ["a-q1", "a-r1", "a-q2"]
    command.downgrade(config, BEFORE)
    with engine.connect() as connection:
        columns = {row[1] for row in connection.execute(text("PRAGMA table_info(chatmessage)"))}
    assert "parent_id" not in columns and "active" not in columns
    engine.dispose()
