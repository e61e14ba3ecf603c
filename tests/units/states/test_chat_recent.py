"""What a tab is sent when it adds messages: only the new ones, never the loaded page.

Reflex resends a whole var on every change, so ``ChatState`` keeps the loaded page in
``messages`` and the messages the tab adds in ``recent`` / ``question`` / ``answer``
(see chatmon/presenters/chat_screen.py). These tests read the delta Reflex would
send after each step.
"""

from __future__ import annotations

from typing import Any

from reflex.state import State

from chatmon.presenters import chat_screen
from chatmon.presenters.chat_screen import MessageView
from chatmon.states.chat import ChatState


async def _tab() -> ChatState:
    root = State(_reflex_internal_init=True)  # type: ignore[call-arg]  # Reflex's own way to build a tree outside an app
    return await root.get_state(ChatState)


def _view(message_id: int, role: str = "user", content: str = "") -> MessageView:
    return MessageView(id=message_id, role=role, content=content or f"m{message_id}")


def _sent(tab: ChatState) -> dict[str, Any]:
    """The vars of ``tab`` the next update carries (names without Reflex's suffix)."""
    delta = tab.get_delta().get(tab.get_full_name(), {})
    tab._clean()
    return {name.removesuffix("_rx_state_"): value for name, value in delta.items()}


def _ids(tab: ChatState) -> list[int]:
    return [m.id for m in tab._shown()]


async def test_a_send_and_a_reply_carry_only_the_new_message() -> None:
    tab = await _tab()
    tab._show([_view(i, "user" if i % 2 else "assistant") for i in range(1, 41)])
    _sent(tab)

    tab._ask(_view(41, content="a new question"))
    sent = _sent(tab)
    assert "messages" not in sent and "recent" not in sent
    assert [m.content for m in sent["question"]] == ["a new question"]

    tab._answered(_view(42, "assistant", "its answer"))
    sent = _sent(tab)
    assert set(sent) == {"answer"} and [m.content for m in sent["answer"]] == ["its answer"]
    assert _ids(tab) == list(range(1, 43))


async def test_later_turns_move_to_recent_and_fold_into_the_page_past_recent_max() -> None:
    tab = await _tab()
    tab._show([_view(1), _view(2, "assistant")])
    _sent(tab)
    next_id = 3
    for turn in range(chat_screen.RECENT_MAX // 2 + 2):
        tab._ask(_view(next_id))
        sent = _sent(tab)
        if turn == chat_screen.RECENT_MAX // 2 + 1:  # recent is full: one resend of the page
            assert "messages" in sent and tab.recent == []
        else:
            assert "messages" not in sent
            assert len(tab.recent) == 2 * turn
        tab._answered(_view(next_id + 1, "assistant"))
        assert set(_sent(tab)) == {"answer"}
        next_id += 2
    assert _ids(tab) == list(range(1, next_id))


async def test_a_long_chat_keeps_a_page_on_screen_and_offers_the_rest() -> None:
    tab = await _tab()
    tab._show([_view(i) for i in range(1, chat_screen.MAX_ON_SCREEN)], has_earlier=False)
    for i in range(chat_screen.MAX_ON_SCREEN, chat_screen.MAX_ON_SCREEN + 6, 2):
        tab._ask(_view(i))
        tab._answered(_view(i + 1, "assistant"))
    shown = _ids(tab)
    assert len(shown) <= chat_screen.MAX_ON_SCREEN
    assert shown[-1] == chat_screen.MAX_ON_SCREEN + 5 and shown == sorted(shown)
    assert tab.has_earlier


async def test_a_rating_changes_the_list_that_holds_the_message() -> None:
    tab = await _tab()
    tab._show([_view(1), _view(2, "assistant")])
    tab._ask(_view(3))
    tab._answered(_view(4, "assistant"))
    _sent(tab)
    assert tab._replace_shown(4, feedback=1) is not None
    assert set(_sent(tab)) == {"answer"}
    assert tab._replace_shown(2, feedback=-1) is not None
    assert set(_sent(tab)) == {"messages"}
    assert tab._replace_shown(99, feedback=1) is None
    assert [m.feedback for m in tab._shown()] == [0, -1, 0, 1]
