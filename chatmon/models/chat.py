"""The chat's own tables: conversations and their messages (the only tables that hold
the user's and the model's text)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy
from sqlmodel import Field, SQLModel

from chatmon.models.base import new_id, utc_now


class Conversation(SQLModel, table=True):
    """One chat thread, owned by the browser that started it.

    ``owner_id`` is the browser's owner key (``chatmon.services.identity``): a keyed
    hash of its server-issued id, never the id itself.
    """

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
    # reasons of a rating (comma-separated, chatmon.services.feedback.REASONS) and the
    # user's comment on it; NULL when none
    feedback_reasons: str | None = Field(default=None, max_length=64)
    feedback_comment: str | None = None
    error_category: str | None = Field(default=None, max_length=32)
    correlation_id: str | None = Field(default=None, max_length=32)
    # None: complete. "streaming": a reply being written, checkpointed every few
    # seconds (``updated_at``); "interrupted": its writer stopped before finishing.
    status: str | None = Field(default=None, max_length=16)
    updated_at: datetime | None = None
    # The conversation is a tree: each message follows ``parent_id`` (None: the first).
    # Messages with the same parent are alternatives (a regenerated reply, an edited
    # question); ``active`` marks the one shown. The visible branch is the path from the
    # first message through the active alternatives (chatmon.services.history).
    parent_id: int | None = Field(default=None, index=True)
    active: bool = Field(default=True, sa_column_kwargs={"server_default": sqlalchemy.true()})
