"""Which of the chat state's lists a step changes (chatmon.presenters.chat_screen), without
Reflex: each function returns the vars to set, and only those are sent to the page.

tests/units/states/test_chat_recent.py checks the same through a real state's delta.
"""

from __future__ import annotations

from typing import Any

from chatmon.presenters import chat_screen
from chatmon.presenters.chat_screen import (
    MAX_ON_SCREEN,
    MESSAGE_PAGE,
    RECENT_MAX,
    MessageView,
    Screen,
)


def _view(message_id: int, role: str = "user", **fields: Any) -> MessageView:
    return MessageView(id=message_id, role=role, content=f"m{message_id}", **fields)


def _turn(first_id: int) -> tuple[MessageView, MessageView]:
    return _view(first_id), _view(first_id + 1, "assistant")


def _ids(screen: Screen) -> list[int]:
    return [m.id for m in screen.shown()]


def test_the_first_send_of_a_loaded_page_sets_the_question_alone() -> None:
    page = Screen(messages=[_view(i) for i in range(1, 41)])
    changes = chat_screen.ask(page, _view(41))
    assert changes == {"question": [_view(41)]}
    assert _ids(page.after(changes)) == list(range(1, 42))


def test_a_send_moves_the_last_turn_to_recent_and_the_reply_sets_the_answer_alone() -> None:
    question, answer = _turn(3)
    screen = Screen(messages=list(_turn(1)), question=[question], answer=[answer])

    changes = chat_screen.ask(screen, _view(5))
    assert set(changes) == {"recent", "question", "answer"}  # never the page
    screen = screen.after(changes)
    assert [m.id for m in screen.recent] == [3, 4] and screen.answer == []
    assert [m.id for m in screen.question] == [5]

    changes = chat_screen.answered(screen, _view(6, "assistant"))
    assert changes == {"answer": [_view(6, "assistant")]}
    assert _ids(screen.after(changes)) == [1, 2, 3, 4, 5, 6]


def test_past_recent_max_everything_folds_into_the_page_once() -> None:
    screen = Screen(messages=list(_turn(1)))
    next_id, page_resends = 3, 0
    for _ in range(RECENT_MAX // 2 + 2):
        changes = chat_screen.ask(screen, _view(next_id))
        page_resends += "messages" in changes
        screen = screen.after(changes)
        assert len(screen.recent) <= RECENT_MAX
        screen = screen.after(chat_screen.answered(screen, _view(next_id + 1, "assistant")))
        next_id += 2
    assert page_resends == 1  # the fold: recent was full
    assert _ids(screen) == list(range(1, next_id))
    assert [m.id for m in screen.question] == [next_id - 2]


def test_at_max_on_screen_a_send_keeps_the_newest_page_and_offers_the_rest() -> None:
    screen = Screen(messages=[_view(i) for i in range(1, MAX_ON_SCREEN + 1)])
    changes = chat_screen.ask(screen, _view(MAX_ON_SCREEN + 1))
    assert changes["has_earlier"] is True
    folded = screen.after(changes)
    assert _ids(folded) == list(range(MAX_ON_SCREEN - MESSAGE_PAGE + 2, MAX_ON_SCREEN + 2))
    assert len(folded.shown()) == MESSAGE_PAGE and folded.has_earlier


def test_a_long_chat_never_shows_more_than_max_on_screen() -> None:
    screen = Screen(messages=[_view(i) for i in range(1, MAX_ON_SCREEN)])
    for i in range(MAX_ON_SCREEN, MAX_ON_SCREEN + 6, 2):
        screen = screen.after(chat_screen.ask(screen, _view(i)))
        screen = screen.after(chat_screen.answered(screen, _view(i + 1, "assistant")))
        assert len(screen.shown()) <= MAX_ON_SCREEN
    shown = _ids(screen)
    assert shown[-1] == MAX_ON_SCREEN + 5 and shown == sorted(shown)
    assert screen.has_earlier


def test_show_resends_the_page_and_clears_only_lists_that_hold_something() -> None:
    screen = Screen(messages=[_view(1)], question=[_view(2)], has_earlier=True)
    assert chat_screen.show(screen, [_view(9)], has_earlier=True) == {
        "messages": [_view(9)],
        "question": [],
    }
    assert chat_screen.show(screen, [], has_earlier=False) == {
        "messages": [],
        "question": [],
        "has_earlier": False,
    }


def test_replace_shown_changes_only_the_list_holding_the_message() -> None:
    screen = Screen(
        messages=list(_turn(1)), recent=list(_turn(3)), question=[_view(5)], answer=[_view(6)]
    )
    for message_id, holder in ((1, "messages"), (4, "recent"), (5, "question"), (6, "answer")):
        changes, changed = chat_screen.replace_shown(screen, message_id, feedback=-1)
        assert set(changes) == {holder}
        assert changed is not None and changed.id == message_id and changed.feedback == -1
        after = screen.after(changes)
        assert [m.feedback for m in after.shown()] == [
            -1 if m.id == message_id else 0 for m in screen.shown()
        ]
    assert screen.messages[0].feedback == 0  # the screen it was given is left as it was
    assert chat_screen.replace_shown(screen, 99, feedback=1) == ({}, None)


def test_the_model_is_sent_only_finished_successful_messages() -> None:
    shown = [
        _view(1),
        _view(2, "assistant"),
        _view(3),
        _view(4, "assistant", error_category="timeout"),
        _view(5, "assistant", status="interrupted"),
    ]
    assert [t.content for t in chat_screen.model_messages(shown)] == ["m1", "m2", "m3"]
    assert chat_screen.index_of(shown, 2, "assistant") == 1
    assert chat_screen.index_of(shown, 2, "user") is None
