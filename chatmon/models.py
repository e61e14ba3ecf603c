"""SQLModel tables, and nothing else.

Tables live here rather than in the app module because Reflex's test harness
re-imports the app module, which would register the tables twice.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

from sqlmodel import Field, SQLModel


def utc_now() -> datetime:
    """Timezone-aware now in UTC (stored naive-UTC by SQLite, aware by PostgreSQL)."""
    return datetime.now(timezone.utc)


def new_id() -> str:
    """A random, URL-safe identifier."""
    return uuid.uuid4().hex


class Conversation(SQLModel, table=True):
    """One chat thread, owned by the browser that started it."""

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    owner_id: str = Field(index=True, max_length=64)
    title: str = Field(default="New chat", max_length=200)
    created_at: datetime = Field(default_factory=utc_now)
    updated_at: datetime = Field(default_factory=utc_now, index=True)


class ChatMessage(SQLModel, table=True):
    """One message of a conversation: the user's, or the assistant's reply."""

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: str = Field(
        foreign_key="conversation.id", index=True, max_length=32, ondelete="CASCADE"
    )
    role: str = Field(max_length=16)  # "user" | "assistant"
    content: str = ""
    created_at: datetime = Field(default_factory=utc_now)
    feedback: int | None = None  # +1 thumbs up, -1 thumbs down
    error_category: str | None = Field(default=None, max_length=32)
    correlation_id: str | None = Field(default=None, max_length=32)
