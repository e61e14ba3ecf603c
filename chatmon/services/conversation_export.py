"""A conversation's visible branch as a Markdown file (the chat's "Export" button)."""

from __future__ import annotations

import re
from datetime import datetime

from sqlmodel import Session

from chatmon.services.chat_messages import list_messages
from chatmon.services.conversations import get_conversation

_NOT_A_NAME = re.compile(r"[^A-Za-z0-9]+")


def export_filename(title: str) -> str:
    """A safe file name for a conversation's export: ``chatmon-<title>.md``."""
    slug = _NOT_A_NAME.sub("-", title[:200]).strip("-").lower()[:40].strip("-")
    return f"chatmon-{slug or 'conversation'}.md"


def conversation_markdown(
    *, session: Session, owner_id: str, conversation_id: str, exported_at: datetime
) -> tuple[str, str]:
    """The visible branch of the owner's conversation as Markdown: (file name, text)."""
    conversation = get_conversation(
        session=session, owner_id=owner_id, conversation_id=conversation_id
    )
    messages = list_messages(session=session, owner_id=owner_id, conversation_id=conversation_id)
    parts = [
        f"# {' '.join(conversation.title.split()) or 'New chat'}",
        f"*Exported from chatmon on {exported_at:%Y-%m-%d %H:%M} UTC*",
    ]
    for message in messages:
        who = "You" if message.role == "user" else "Assistant"
        if message.error_category:
            who += f" (error: {message.error_category})"
        parts.append(f"---\n\n**{who}:**\n\n{message.content.strip()}")
    return export_filename(conversation.title), "\n\n".join(parts) + "\n"
