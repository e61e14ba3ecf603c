"""ChatState's message actions, called as any client could call them: regenerate, edit,
switch alternative, export. The handlers run in-process on a real state tree and a real
database; the browser tests (tests/integration/test_message_actions*.py) cover the page
and the websocket."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from reflex.istate.data import RouterData
from reflex.state import State
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from chatmon import db, deps
from chatmon.models import ChatMessage
from chatmon.services import chat_messages, events
from chatmon.services import conversations as convo
from chatmon.services.identity import IdentityIssuer
from chatmon.settings import get_settings
from chatmon.states.chat import ChatState

ISSUER = IdentityIssuer(b"k" * 32)


@pytest.fixture(autouse=True)
def _app_db(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(db, "get_engine", lambda: engine)
    monkeypatch.setattr(deps, "identity_issuer", lambda: ISSUER)
    yield


async def _tab(cookie: str) -> ChatState:
    """A tab of the browser holding identity ``cookie``."""
    root = State(_reflex_internal_init=True)  # type: ignore[call-arg]  # Reflex's own way to build a tree outside an app
    root.router = RouterData.from_router_data(
        {"headers": {"cookie": f"chatmon_id={cookie}"}, "token": cookie[-12:]}
    )
    tab = await root.get_state(ChatState)
    tab.router = root.router
    return tab


def _owner(cookie: str) -> str:
    owner = ISSUER.owner_of(cookie)
    assert owner is not None
    return owner


def _rows(engine: Engine, conversation_id: str) -> list[tuple[Any, ...]]:
    with Session(engine) as session:
        rows = session.exec(
            select(ChatMessage)
            .where(ChatMessage.conversation_id == conversation_id)
            .order_by(col(ChatMessage.id))
        ).all()
        return [(m.id, m.content, m.parent_id, m.active) for m in rows]


@pytest.fixture
def alice(engine: Engine) -> tuple[str, str, int, int]:
    """Alice's cookie and her conversation: q1 → a1; (cookie, conversation id, q1, a1)."""
    cookie = ISSUER.issue()
    owner = _owner(cookie)
    with Session(engine) as session:
        conversation = convo.create_conversation(session=session, owner_id=owner)
        q1 = chat_messages.add_message(
            session=session,
            owner_id=owner,
            conversation_id=conversation.id,
            role="user",
            content="q1",
        )
        a1 = chat_messages.add_message(
            session=session,
            owner_id=owner,
            conversation_id=conversation.id,
            role="assistant",
            content="a1",
            correlation_id="corra1",
        )
        session.commit()
        return cookie, conversation.id, q1.id or 0, a1.id or 0


async def _open(cookie: str, conversation_id: str, *, as_owner: str | None = None) -> ChatState:
    tab = await _tab(cookie)
    assert await tab._load_messages(as_owner or _owner(cookie), conversation_id)
    tab.conversation_id = conversation_id
    return tab


@pytest.fixture
def signals() -> Iterator[list[events.ImplicitSignal]]:
    """The implicit signals published meanwhile (what the recorder would write)."""
    seen: list[events.ImplicitSignal] = []
    events.on_signal(seen.append)
    yield seen
    events.off_signal(seen.append)


async def test_regenerate_accepts_a_reply_to_the_same_question(alice, signals) -> None:
    cookie, conversation_id, q1, a1 = alice
    tab = await _open(cookie, conversation_id)
    follow_up = await tab.regenerate(a1)
    assert follow_up is ChatState.stream_reply
    assert tab.streaming and [m.id for m in tab.messages] == [q1]
    assert tab._reply_parent_id == q1 and tab._reply_ticket
    # the replaced reply's request is flagged "regenerated" (implicit dissatisfaction)
    assert [(s.correlation_id, s.signal) for s in signals] == [("corra1", "regenerated")]


async def test_a_strangers_tab_can_do_nothing_with_anothers_messages(
    alice, engine, signals
) -> None:
    cookie, conversation_id, q1, a1 = alice
    before = _rows(engine, conversation_id)
    # the stranger's state even holds the victim's conversation and messages (a forged
    # state): every handler still asks the database who owns them
    stranger = await _open(ISSUER.issue(), conversation_id, as_owner=_owner(cookie))
    assert await stranger.regenerate(a1) is None
    assert signals == []  # nor flags the victim's request
    await stranger.show_alternative(a1, -1)
    stranger.start_edit(q1)
    assert stranger.editing_id == q1
    assert await stranger.submit_edit({"text": "pwned"}) is None
    assert await stranger.export_markdown() is None
    assert not stranger.streaming
    assert _rows(engine, conversation_id) == before


async def test_bad_arguments_do_nothing(alice, engine) -> None:
    cookie, conversation_id, q1, a1 = alice
    before = _rows(engine, conversation_id)
    tab = await _open(cookie, conversation_id)
    for junk in (q1, "1", None, True, 1.5, 10**30, -a1, {"$ne": 1}):
        assert await tab.regenerate(junk) is None  # type: ignore[arg-type]  # any client sends anything
    for step in (0, 2, -2, "1", None, True):
        await tab.show_alternative(a1, step)  # type: ignore[arg-type]
    tab.start_edit(a1)  # a reply is not edited
    assert tab.editing_id == 0
    assert await tab.submit_edit({"text": "no box open"}) is None
    tab.start_edit(q1)
    limit = get_settings().max_message_chars
    assert await tab.submit_edit({"text": "x" * (limit + 1)}) is None
    assert f"the limit is {limit:,}" in tab.notice
    for bad in ({"text": "   "}, {"text": ["a"]}, "not a form", None):
        assert await tab.submit_edit(bad) is None  # type: ignore[arg-type]
    assert not tab.streaming and _rows(engine, conversation_id) == before


async def test_nothing_while_a_reply_streams(alice, engine) -> None:
    cookie, conversation_id, q1, a1 = alice
    before = _rows(engine, conversation_id)
    tab = await _open(cookie, conversation_id)
    tab.streaming = True
    assert await tab.regenerate(a1) is None
    tab.start_edit(q1)
    assert tab.editing_id == 0
    tab.editing_id = q1  # even with the box already open
    assert await tab.submit_edit({"text": "edited"}) is None
    await tab.show_alternative(a1, -1)
    assert _rows(engine, conversation_id) == before


async def test_edit_then_flip_back_to_the_old_branch(alice, engine) -> None:
    cookie, conversation_id, q1, a1 = alice
    tab = await _open(cookie, conversation_id)
    tab.start_edit(q1)
    assert await tab.submit_edit({"text": "  q1, better  "}) is ChatState.stream_reply
    [edited] = tab.messages
    assert edited.content == "q1, better" and (edited.alt_index, edited.alt_count) == (2, 2)
    assert tab._reply_parent_id == edited.id and tab.editing_id == 0
    tab.streaming = False  # as if its reply had finished
    tab._reply_ticket = ""
    await tab.show_alternative(edited.id, -1)
    assert [(m.id, m.alt_index, m.alt_count) for m in tab.messages] == [(q1, 1, 2), (a1, 1, 1)]
    await tab.show_alternative(q1, -1)  # no earlier one: nothing changes
    assert [m.id for m in tab.messages] == [q1, a1]


async def test_export_is_a_markdown_download_of_the_visible_branch(alice) -> None:
    cookie, conversation_id, _, _ = alice
    tab = await _open(cookie, conversation_id)
    download = await tab.export_markdown()
    assert download is not None
    text = str(download)
    assert "chatmon-q1.md" in text and "data:text/markdown;base64," in text


async def test_load_earlier_puts_older_messages_before_what_the_tab_added(alice, engine) -> None:
    """A tab that chatted (its messages in ``recent``/``question``/``answer``) and then
    loads earlier messages shows them first, in order, with nothing lost or doubled."""
    from chatmon.presenters.chat_screen import MESSAGE_PAGE
    from chatmon.presenters.chat_screen import message_view as _message_view

    cookie, conversation_id, q1, a1 = alice
    owner = _owner(cookie)
    with Session(engine) as session:
        for i in range(MESSAGE_PAGE):
            chat_messages.add_message(
                session=session,
                owner_id=owner,
                conversation_id=conversation_id,
                role="user" if i % 2 == 0 else "assistant",
                content=f"m{i}",
            )
        session.commit()
    tab = await _open(cookie, conversation_id)
    assert tab.has_earlier and len(tab.messages) == MESSAGE_PAGE
    with Session(engine, expire_on_commit=False) as session:
        added = [
            chat_messages.add_message(
                session=session,
                owner_id=owner,
                conversation_id=conversation_id,
                role=role,
                content=text,
            )
            for role, text in (("user", "new question"), ("assistant", "new answer"))
        ]
        session.commit()
    tab._ask(_message_view(added[0]))
    tab._answered(_message_view(added[1]))
    await tab.load_earlier()
    shown = [m.id for m in tab._shown()]
    assert shown == sorted(shown) and len(shown) == len(set(shown)) == MESSAGE_PAGE + 4
    assert shown[:2] == [q1, a1] and not tab.has_earlier
    assert [m.content for m in tab._shown()[-2:]] == ["new question", "new answer"]
