"""Regenerate, edit, switch and export, called by a stranger over the real websocket.

Every handler can be called by any client with any arguments: with another browser's
message ids (or its conversation id in localStorage) they must change nothing, ask the
provider nothing, and hand out nothing.
"""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bench.reflex_client import ReflexSession, chat_messages, form_data
from chatmon.devtools.fake_llm_server import FakeLLMServer
from chatmon.models import ChatMessage
from tests.integration.conftest import MAX_MESSAGE_CHARS, RunningApp, run_async
from tests.integration.test_hostile_clients import CHAT, REPLY_TIMEOUT, _victim_chat


def _rows(engine: Engine, conversation_id: str) -> list[tuple[object, ...]]:
    with Session(engine) as session:
        rows = session.exec(
            select(ChatMessage)
            .where(ChatMessage.conversation_id == conversation_id)
            .order_by(col(ChatMessage.id))
        ).all()
        return [(m.id, m.role, m.content, m.parent_id, m.active) for m in rows]


def test_a_stranger_cannot_regenerate_edit_switch_or_export_another_browsers_chat(
    app_server: RunningApp, fake_llm: FakeLLMServer, app_db: Engine
) -> None:
    async def scenario() -> tuple[int, list[Any], list[Any], list[Any]]:
        victim, reply = await _victim_chat(app_server, "my private question")
        conversation_id = victim.get(CHAT, "conversation_id")
        question = chat_messages(victim)[0]
        before = _rows(app_db, conversation_id)
        # the stranger: its own browser, with a conversation of its own, then the
        # victim's conversation id planted in its localStorage
        stranger, own_reply = await _victim_chat(app_server, "the stranger's question")
        stranger.local_storage["chatmon_conversation_id"] = conversation_id
        hits = fake_llm.hits
        for handler, kwargs in [
            ("regenerate", {"message_id": reply["id"]}),
            ("show_alternative", {"message_id": reply["id"], "step": -1}),
            ("show_alternative", {"message_id": question["id"], "step": 1}),
            ("start_edit", {"message_id": question["id"]}),
            ("submit_edit", {"form_data": form_data(text="pwned")}),
            ("export_markdown", {}),
        ]:
            await stranger.send(stranger.app.handler(CHAT, handler), **kwargs)
        # and the same with the victim's conversation open in the stranger's state
        planted = ReflexSession(
            app_server.url,
            stranger.app,
            cookies=stranger.cookies,
            local_storage={"chatmon_conversation_id": conversation_id},
        )
        await planted.connect()
        await asyncio.sleep(0.5)
        for handler, kwargs in [
            ("export_markdown", {}),
            ("regenerate", {"message_id": reply["id"]}),
            ("start_edit", {"message_id": question["id"]}),
            ("submit_edit", {"form_data": form_data(text="pwned")}),
        ]:
            await planted.send(planted.app.handler(CHAT, handler), **kwargs)
        await asyncio.sleep(2)
        asked = fake_llm.hits - hits
        downloads = [
            e for s in (stranger, planted) for e in s.frontend_events if e["name"] == "_download"
        ]
        seen = [chat_messages(stranger), chat_messages(planted)]
        after = _rows(app_db, conversation_id)
        for session in (victim, stranger, planted):
            await session.close()
        assert own_reply["content"]
        return asked, [before, after], downloads, seen

    asked, (before, after), downloads, seen = run_async(scenario())
    assert after == before, "a stranger changed the victim's conversation"
    assert asked == 0, "a stranger's action reached the provider"
    assert all("my private question" not in str(e) for e in downloads)
    for messages in seen:
        assert "my private question" not in str(messages)


def test_garbage_and_out_of_range_arguments_change_nothing(
    app_server: RunningApp, fake_llm: FakeLLMServer, app_db: Engine
) -> None:
    async def scenario() -> tuple[int, list[Any], list[Any], list[Any]]:
        tab, reply = await _victim_chat(app_server, "keep me as I am")
        conversation_id = tab.get(CHAT, "conversation_id")
        question = chat_messages(tab)[0]
        before = _rows(app_db, conversation_id)
        hits = fake_llm.hits
        for handler, kwargs in [
            ("regenerate", {"message_id": question["id"]}),  # a user message: not a reply
            ("regenerate", {"message_id": "1; drop table"}),
            ("regenerate", {"message_id": 10**30}),
            ("show_alternative", {"message_id": reply["id"], "step": 5}),
            ("show_alternative", {"message_id": reply["id"], "step": 1}),  # no next one
            ("show_alternative", {"message_id": reply["id"], "step": "1"}),
            ("start_edit", {"message_id": reply["id"]}),  # a reply is not edited
            ("submit_edit", {"form_data": form_data(text="no edit open")}),
            ("start_edit", {"message_id": question["id"]}),
            ("submit_edit", {"form_data": form_data(text="x" * (MAX_MESSAGE_CHARS + 1))}),
            ("submit_edit", {"form_data": form_data(text="   ")}),
            ("submit_edit", {"form_data": {"text": {"a": 1}}}),
        ]:
            await tab.send(tab.app.handler(CHAT, handler), **kwargs)
        await asyncio.sleep(2)
        asked = fake_llm.hits - hits
        after = _rows(app_db, conversation_id)
        last_notice = tab.get(CHAT, "notice")
        await tab.send(
            tab.app.handler(CHAT, "submit_edit"),
            form_data=form_data(text="y" * (MAX_MESSAGE_CHARS + 1)),
        )
        await tab.wait_until(lambda s: s.get(CHAT, "notice") != last_notice, timeout=10)
        notices = [(last_notice, tab.get(CHAT, "notice")), tab.errors]
        await tab.close()
        return asked, [before, after], notices, []

    asked, (before, after), ((empty, too_long), errors), _ = run_async(scenario())
    assert asked == 0
    assert after == before
    assert empty == "Type a message first."
    assert f"the limit is {MAX_MESSAGE_CHARS:,}" in too_long
    assert errors == []


def test_no_action_while_a_reply_streams(
    app_server: RunningApp, fake_llm: FakeLLMServer, app_db: Engine
) -> None:
    async def scenario() -> tuple[int, list[Any]]:
        tab, reply = await _victim_chat(app_server, "first")
        conversation_id = tab.get(CHAT, "conversation_id")
        question = chat_messages(tab)[0]
        fake_llm.configure(tokens_per_second=10, reply_words=30)
        hits = fake_llm.hits
        await tab.send(tab.app.handler(CHAT, "send_message"), form_data=form_data(message="slow"))
        await tab.wait_until(lambda s: s.get(CHAT, "streaming"), timeout=10)
        for handler, kwargs in [
            ("regenerate", {"message_id": reply["id"]}),
            ("start_edit", {"message_id": question["id"]}),
            ("submit_edit", {"form_data": form_data(text="edited mid-stream")}),
            ("show_alternative", {"message_id": reply["id"], "step": -1}),
        ]:
            await tab.send(tab.app.handler(CHAT, handler), **kwargs)
        await tab.wait_until(lambda s: not s.get(CHAT, "streaming"), timeout=REPLY_TIMEOUT)
        asked = fake_llm.hits - hits
        rows = _rows(app_db, conversation_id)
        await tab.close()
        return asked, rows

    asked, rows = run_async(scenario())
    assert asked == 1  # the streaming reply's own request, nothing more
    assert [r[2] for r in rows if r[1] == "user"] == ["first", "slow"]
    assert len(rows) == 4
