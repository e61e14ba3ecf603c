"""Only the most recent messages are sent; over-long input is refused clearly."""

from __future__ import annotations

import pytest

from chatmon.services.history import (
    EmptyMessage,
    MessageTooLong,
    ModelMessage,
    build_messages,
    check_user_message,
)


def _history(count: int) -> list[ModelMessage]:
    return [
        ModelMessage(role="user" if i % 2 == 0 else "assistant", content=f"m{i}")
        for i in range(count)
    ]


def test_history_keeps_system_prompt_and_most_recent_turns() -> None:
    messages = build_messages(system_prompt="sys", history=_history(31), max_history=20)
    assert messages[0] == {"role": "system", "content": "sys"}
    contents = [m["content"] for m in messages[1:]]
    assert contents == [f"m{i}" for i in range(12, 31)]  # 20 would start with an assistant turn
    assert messages[1]["role"] == "user"
    assert len(messages) - 1 <= 20


def test_history_short_conversation_is_sent_whole() -> None:
    messages = build_messages(system_prompt="sys", history=_history(3), max_history=20)
    assert [m["content"] for m in messages[1:]] == ["m0", "m1", "m2"]


def test_history_limit_of_one_sends_only_the_question() -> None:
    messages = build_messages(system_prompt="sys", history=_history(5), max_history=1)
    assert [m["content"] for m in messages[1:]] == ["m4"]


def test_message_over_limit_is_refused_with_lengths() -> None:
    with pytest.raises(MessageTooLong, match="16,001 characters.*16,000"):
        check_user_message("x" * 16_001, max_chars=16_000)


def test_message_at_limit_is_accepted() -> None:
    assert check_user_message("x" * 16_000, max_chars=16_000) == "x" * 16_000


@pytest.mark.parametrize("text", ["", "   ", "\n\t "])
def test_blank_message_is_refused(text: str) -> None:
    with pytest.raises(EmptyMessage):
        check_user_message(text, max_chars=100)


def test_control_characters_are_removed_but_lines_kept() -> None:
    assert check_user_message("a\x00b\x07c\n\td\x7f", max_chars=100) == "a" + "bc\n\td"


def test_unpaired_surrogate_becomes_replacement() -> None:
    cleaned = check_user_message("bad \ud800 half", max_chars=100)
    cleaned.encode("utf-8")  # storable
    assert cleaned == "bad ? half"


def test_only_control_characters_is_empty() -> None:
    with pytest.raises(EmptyMessage):
        check_user_message("\x00\x01\x02", max_chars=100)
