"""A page that could not rebuild a finished reply from the live frames still gets it.

A finished reply goes to the page by reference to the live frames it already holds
(``chatmon.states.message_wire``). When the page lacks them (it missed frames and the
reply's publisher is gone: another worker, or long after), its resync must bring the
text from the tab's state, which holds every finished message whole.
"""

from __future__ import annotations

import json
from typing import Any

from reflex.state import State
from reflex_base.utils import format

from chatmon.presenters import chat_screen
from chatmon.states.chat import ChatState, MessageView
from chatmon.states.live import LiveState


async def _tab() -> tuple[ChatState, LiveState]:
    root = State(_reflex_internal_init=True)  # type: ignore[call-arg]  # Reflex's own way to build a tree outside an app
    return await root.get_state(ChatState), await root.get_state(LiveState)


def _sent(tab: ChatState) -> dict[str, Any]:
    """The chat vars the next update carries, as the page receives them (JSON)."""
    delta = tab.get_delta().get(tab.get_full_name(), {})
    tab._clean()
    sent = {name.removesuffix("_rx_state_"): value for name, value in delta.items()}
    return json.loads(format.json_dumps(sent))


def _by_reference(message_id: int, text: str) -> MessageView:
    return MessageView(
        id=message_id,
        role="assistant",
        content=text,
        correlation_id=f"r{message_id}",
        live_seq=4,
        live_chars=len(text),
    )


async def test_a_resync_with_no_reply_streaming_sends_finished_replies_whole() -> None:
    chat, live = await _tab()
    chat.recent = [MessageView(id=1, role="user", content="q1"), _by_reference(2, "first answer")]
    chat.question = [MessageView(id=3, role="user", content="q2")]
    chat.answer = [_by_reference(4, "the second answer")]
    sent = _sent(chat)
    assert "content" not in sent["answer"][0] and sent["answer"][0]["live"] == [4, ""]

    await LiveState.resync.fn(live)  # what the page sends when it lacks a text

    sent = _sent(chat)
    assert set(sent) == {"recent", "answer"}  # the question had its text all along
    assert sent["answer"][0]["content"] == "the second answer" and "live" not in sent["answer"][0]
    assert [m.get("content") for m in sent["recent"]] == ["q1", "first answer"]


async def test_a_resync_when_every_text_went_whole_sends_nothing() -> None:
    chat, live = await _tab()
    chat.answer = [MessageView(id=4, role="assistant", content="loaded from the database")]
    _sent(chat)

    await LiveState.resync.fn(live)  # any client may call it, as often as it likes

    assert _sent(chat) == {}


def test_with_whole_texts_changes_only_the_lists_holding_a_reference() -> None:
    screen = chat_screen.Screen(
        messages=[MessageView(id=1, role="user", content="a")],
        answer=[_by_reference(2, "b")],
    )
    changes = chat_screen.with_whole_texts(screen)
    assert set(changes) == {"answer"}
    assert changes["answer"][0].live_seq == -1 and changes["answer"][0].content == "b"
