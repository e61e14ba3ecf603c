"""What a chat message costs on the wire: its default fields and an already streamed text
stay home, and the page (as bench.reflex_client's LiveText models it) gets it back whole."""

from __future__ import annotations

import json

from reflex_base.utils import format

from bench.reflex_client import LiveText
from chatmon.models import ChatMessage
from chatmon.presenters.chat_screen import message_view as _message_view

# The chat state registers the wire form of its messages (states.chat_base): import
# MessageView through it, as the page's state does.
from chatmon.states.chat import MessageView
from chatmon.states.message_wire import wire_defaults


def _wire(message: MessageView) -> dict:
    """The message as Reflex serialises it into an update for the page."""
    return json.loads(format.json_dumps({"m": message}))["m"]


def _as_page_shows(wire: dict, live: LiveText) -> dict:
    return {**wire_defaults(MessageView), **live.message(wire)}


def test_default_fields_are_not_sent_and_the_page_fills_them_in() -> None:
    question = MessageView(id=7, role="user", content="hello there")
    assert _wire(question) == {"id": 7, "role": "user", "content": "hello there"}
    shown = _as_page_shows(_wire(question), LiveText())
    assert shown == {k: v for k, v in vars(question).items() if k not in ("live_seq", "live_chars")}


def test_fields_that_differ_from_their_default_are_sent() -> None:
    rated = MessageView(
        id=8,
        role="assistant",
        content="",
        feedback=-1,
        feedback_reasons="wrong",
        error_category="timeout",
        alt_index=2,
        alt_count=3,
    )
    assert _wire(rated) == {
        "id": 8,
        "role": "assistant",
        "content": "",
        "feedback": -1,
        "feedback_reasons": "wrong",
        "error_category": "timeout",
        "alt_index": 2,
        "alt_count": 3,
    }


def test_a_streamed_reply_carries_only_what_the_frames_did_not() -> None:
    text = "Echo: hello. lorem ipsum dolor (stopped)"
    streamed = len("Echo: hello. lorem ipsum dolor")
    reply = MessageView(
        id=9, role="assistant", content=text, correlation_id="r9", live_seq=2, live_chars=streamed
    )
    wire = _wire(reply)
    assert wire == {"id": 9, "role": "assistant", "correlation_id": "r9", "live": [2, " (stopped)"]}
    assert text not in json.dumps(wire)

    page = LiveText()
    for frame in ([0, "Echo: ", "r9"], [1, "hello. lorem "], [2, "ipsum dolor"]):
        page.apply(frame)
    assert _as_page_shows(wire, page)["content"] == text


def test_a_page_that_missed_a_frame_has_no_text_until_a_full_frame() -> None:
    reply = MessageView(
        id=9, role="assistant", content="abcdef", correlation_id="r9", live_seq=2, live_chars=6
    )
    page = LiveText()
    page.apply([0, "ab", "r9"])
    page.apply([2, "ef"])  # frame 1 never arrived
    assert page.gap
    assert "content" not in page.message(_wire(reply))
    page.apply([3, "abcdef", "r9"])  # the resync's answer
    assert page.message(_wire(reply))["content"] == "abcdef"


def test_a_reloaded_page_gets_every_text_from_the_database_views() -> None:
    """A reload loads the conversation again: views built from rows send their text."""
    row = ChatMessage(id=9, role="assistant", content="all of it", correlation_id="r9")
    assert _wire(_message_view(row))["content"] == "all of it"
