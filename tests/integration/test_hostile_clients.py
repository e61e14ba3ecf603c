"""A hostile stranger with nothing but a websocket client, against the real app.

The stranger speaks the browser's protocol (bench/reflex_client.py): it can send any
event, background and "internal" handlers included, with any arguments, and any cookie
or localStorage value it likes, including everything chatmon exports. None of it may
reach another browser's conversations, make a provider call without an accepted
message, or stall the server.
"""

from __future__ import annotations

import asyncio
import csv
import io
import time
import uuid
from collections.abc import Iterator
from datetime import UTC
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bench.reflex_client import CompiledApp, ReflexSession, chat_messages, form_data
from chatmon.db import make_engine
from chatmon.devtools.fake_llm_server import FakeLLMServer
from chatmon.models import ChatMessage, Conversation, LLMRequest
from tests.integration.conftest import RunningApp, launch_app, run_async

CHAT = "chat"
MONITOR = "chatmon___states___monitor____monitor_state"
ALERTS = "chatmon___states___alerts____alerts_state"
REPLY_TIMEOUT = 30.0
MONITOR_PASSWORD = "hostile-test-monitor-password"

# Every ChatState event handler, with the arguments a page sends; the test below fails
# when a handler is added without being listed here (so it is attacked too).
CHAT_HANDLERS = {
    "load": {},
    "watch_provider": {},
    "watch_reply": {},
    "select_conversation": {"conversation_id": "x"},
    "new_conversation": {},
    "rename_conversation": {"form_data": {}},
    "delete_conversation": {"conversation_id": "x"},
    "clear_chat": {},
    "set_temperature": {"value": [0.5]},
    "rate": {"message_id": 1, "rating": 1},
    "close_feedback_form": {},
    "submit_feedback": {"form_data": {}},
    "send_message": {"form_data": {}},
    "stop": {},
    "stream_reply": {},
    "load_earlier": {},
    "regenerate": {"message_id": 1},
    "start_edit": {"message_id": 1},
    "cancel_edit": {},
    "submit_edit": {"form_data": {}},
    "show_alternative": {"message_id": 1, "step": 1},
    "export_markdown": {},
    "setvar": {"var_name": "temperature", "value": 0.5},  # Reflex's built-in "set_<name>"
}
GARBAGE = [None, 7, -1.5, True, "", "x" * 20_000, ["a", 1], {"$ne": None}, {"message": {"a": 1}}]


def _app(running: RunningApp) -> CompiledApp:
    return CompiledApp.from_web_dir(running.web_dir)


async def _victim_chat(running: RunningApp, text: str) -> tuple[ReflexSession, dict[str, Any]]:
    """A real browser tab (page loaded, cookie kept) that sent ``text`` and got its reply."""
    victim = ReflexSession(running.url, _app(running))
    await victim.connect()
    await victim.send(victim.app.handler(CHAT, "send_message"), form_data=form_data(message=text))
    await victim.wait_until(
        lambda s: len(chat_messages(s) or []) >= 2 and not s.get(CHAT, "streaming"),
        timeout=REPLY_TIMEOUT,
    )
    return victim, chat_messages(victim)[-1]


def _conversation_rows(engine: Engine, conversation_id: str) -> list[tuple[object, ...]]:
    with Session(engine) as session:
        conversation = session.get(Conversation, conversation_id)
        assert conversation is not None
        rows = session.exec(
            select(ChatMessage)
            .where(ChatMessage.conversation_id == conversation_id)
            .order_by(ChatMessage.id)
        ).all()
        return [
            (conversation.title, m.content, m.feedback, m.feedback_reasons, m.feedback_comment)
            for m in rows
        ]


@pytest.fixture(scope="module")
def engine(app_server: RunningApp) -> Iterator[Engine]:
    engine = make_engine(app_server.database_url)
    yield engine
    engine.dispose()


def test_every_chat_handler_is_covered_by_these_tests() -> None:
    from chatmon.states.chat import ChatState

    assert set(ChatState.event_handlers) == set(CHAT_HANDLERS)


async def _request_row(engine: Engine, correlation_id: str) -> LLMRequest:
    """The reply's request row: the recorder writes it just after the reply is shown,
    so a read at that moment can come too early (seen once under load)."""
    deadline = time.monotonic() + 30
    while True:
        with Session(engine) as session:
            row = session.exec(
                select(LLMRequest).where(LLMRequest.correlation_id == correlation_id)
            ).first()
        if row is not None or time.monotonic() > deadline:
            assert row is not None, f"no request row for {correlation_id} after 30 s"
            return row
        await asyncio.sleep(0.1)


def test_forged_stolen_and_exported_identities_see_and_change_nothing(
    app_server: RunningApp, fake_llm: FakeLLMServer, engine: Engine
) -> None:
    async def scenario() -> tuple[list[str], list[Any]]:
        victim, reply = await _victim_chat(app_server, "my private question")
        conversation_id = victim.get(CHAT, "conversation_id")
        victim_cookie = victim.cookies["chatmon_id"]
        with Session(engine) as session:
            owner = session.get(Conversation, conversation_id).owner_id  # type: ignore[union-attr]  # the row exists: a None fails the test
        row = await _request_row(engine, reply["correlation_id"])
        exported_session_id = row.session_id
        before = _conversation_rows(engine, conversation_id)
        identities = {
            "no cookie": {},
            "forged token": {"chatmon_id": "v1." + "0" * 32 + ".forged"},
            "the exported session id": {"chatmon_id": exported_session_id},
            "the owner key": {"chatmon_id": owner},
            "the victim's id, re-signed by nobody": {
                "chatmon_id": "v1." + victim_cookie.split(".")[1] + ".x"
            },
            "malformed bytes": {"chatmon_id": "\udcff\x00;;=="},
        }
        seen: list[Any] = []
        for name, cookies in identities.items():
            for legacy in ("", owner, exported_session_id, victim_cookie.split(".")[1]):
                stranger = ReflexSession(
                    app_server.url,
                    victim.app,
                    load_page=False,
                    cookies={
                        k: v.encode("utf-8", "surrogateescape").decode("latin-1")
                        for k, v in cookies.items()
                    },
                    local_storage={
                        "chatmon_conversation_id": conversation_id,
                        "chatmon_client_id": legacy,
                    },
                )
                await stranger.connect()
                await asyncio.sleep(0.3)
                for handler, kwargs in [
                    ("select_conversation", {"conversation_id": conversation_id}),
                    (
                        "rename_conversation",
                        {"form_data": form_data(conversation_id=conversation_id, title="pwned")},
                    ),
                    ("rate", {"message_id": reply["id"], "rating": -1}),
                    (
                        "submit_feedback",
                        {"form_data": form_data(**{"reason-0": "wrong", "comment": "pwned"})},
                    ),
                    ("clear_chat", {}),
                    ("delete_conversation", {"conversation_id": conversation_id}),
                ]:
                    await stranger.send(stranger.app.handler(CHAT, handler), **kwargs)
                await asyncio.sleep(0.5)
                seen.append(
                    (
                        name,
                        legacy[:8],
                        chat_messages(stranger),
                        stranger.get(CHAT, "conversations"),
                    )
                )
                await stranger.close()
        after = _conversation_rows(engine, conversation_id)
        # and the victim, reloading, still has everything
        again = ReflexSession(
            app_server.url,
            victim.app,
            cookies=victim.cookies,
            local_storage=dict(victim.local_storage),
        )
        await again.connect()
        await again.wait_until(lambda s: len(chat_messages(s) or []) == 2, timeout=10)
        await again.close()
        await victim.close()
        assert after == before, "a stranger changed the victim's conversation"
        return [victim_cookie, exported_session_id, owner], seen

    secrets, seen = run_async(scenario())
    for name, legacy, messages, conversations in seen:
        assert messages == [] and conversations == [], f"{name} / legacy {legacy!r} saw data"
    victim_cookie, exported, owner = secrets
    assert victim_cookie.split(".")[1] not in exported and victim_cookie not in owner
    assert exported.startswith("b_")  # a keyed hash stands for the browser outside chatmon


def test_the_csv_export_and_the_log_never_carry_the_identity(
    app_server: RunningApp, fake_llm: FakeLLMServer
) -> None:
    async def scenario() -> str:
        victim, _ = await _victim_chat(app_server, "what do exports show?")
        await victim.close()
        return victim.cookies["chatmon_id"]

    cookie = run_async(scenario())
    browser_id = cookie.split(".")[1]
    export = (
        httpx.get(
            app_server.url + "/api/requests.csv?window=1h", auth=app_server.monitor_auth, timeout=30
        )
        .raise_for_status()
        .text
    )
    session_ids = {row["session_id"] for row in csv.DictReader(io.StringIO(export))}
    assert session_ids and all(s.startswith(("b_", "legacy_", "")) for s in session_ids)
    assert browser_id not in export
    time.sleep(0.5)  # the log line of the request is written by the worker
    assert browser_id not in app_server.log_file.read_text()


def test_direct_stream_reply_calls_never_reach_the_provider(
    app_server: RunningApp, fake_llm: FakeLLMServer, engine: Engine
) -> None:
    async def scenario() -> tuple[int, int, list[Any]]:
        tab = ReflexSession(app_server.url, _app(app_server))
        await tab.connect()
        stream = tab.app.handler(CHAT, "stream_reply")
        before = fake_llm.hits
        for _ in range(3):  # no message was accepted: nothing to answer
            await tab.send(stream)
        await asyncio.sleep(2)
        unsolicited = fake_llm.hits - before
        # one accepted message, then the stranger tries to make it answered three times
        await tab.send(tab.app.handler(CHAT, "send_message"), form_data=form_data(message="once"))
        for _ in range(3):
            await tab.send(stream)
        await tab.wait_until(
            lambda s: len(chat_messages(s) or []) >= 2 and not s.get(CHAT, "streaming"),
            timeout=REPLY_TIMEOUT,
        )
        await asyncio.sleep(2)
        answered = fake_llm.hits - before
        messages = chat_messages(tab)
        await tab.close()
        return unsolicited, answered, messages

    unsolicited, answered, messages = run_async(scenario())
    assert unsolicited == 0
    assert answered == 1
    assert [m["role"] for m in messages] == ["user", "assistant"]


def test_every_chat_handler_survives_garbage_arguments(
    app_server: RunningApp, fake_llm: FakeLLMServer
) -> None:
    async def scenario() -> tuple[list[str], Any, int]:
        tab = ReflexSession(app_server.url, _app(app_server))
        await tab.connect()
        before = fake_llm.hits
        for handler, kwargs in CHAT_HANDLERS.items():
            for junk in GARBAGE:
                payload = dict.fromkeys(kwargs, junk)
                await tab.send(tab.app.handler(CHAT, handler), **payload)
        await tab.send(tab.app.handler(CHAT, "set_temperature"), value=[float("nan")])
        names = (
            "streaming",
            "_reply_ticket",
            "messages",
            "recent",
            "answer",
            "conversations",
            "notice",
        )
        for name in (*names, "feedback_form_for", "reason_choices"):
            await tab.send(tab.app.handler(CHAT, "setvar"), var_name=name, value="pwned")
        await asyncio.sleep(3)
        async with httpx.AsyncClient(timeout=5) as client:
            ping = (await client.get(app_server.url + "/ping")).status_code
        errors = list(tab.errors)
        temperature = tab.get(CHAT, "temperature")
        # the tab is still usable: a normal message gets its reply
        await tab.send(tab.app.handler(CHAT, "send_message"), form_data=form_data(message="ok?"))
        await tab.wait_until(
            lambda s: any(m["role"] == "assistant" for m in chat_messages(s) or [])
            and not s.get(CHAT, "streaming"),
            timeout=REPLY_TIMEOUT,
        )
        await tab.close()
        assert ping == 200
        return errors, temperature, fake_llm.hits - before

    errors, temperature, hits = run_async(scenario())
    assert errors == []  # the server never dropped the connection
    assert isinstance(temperature, (int, float)) and 0.0 <= temperature <= 2.0
    assert hits == 1  # only the real message reached the provider


# ----- an instance with a monitor login and tight rate limits --------------------------
@pytest.fixture(scope="module")
def locked_app(
    fake_llm: FakeLLMServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningApp]:
    with launch_app(
        workdir=tmp_path_factory.mktemp("locked"),
        fake_llm_url=fake_llm.url,
        MONITOR_PASSWORD=MONITOR_PASSWORD,
        RATE_LIMIT_PER_MINUTE="2",
        RATE_LIMIT_PER_IP_PER_MINUTE="3",
    ) as app:
        yield app


def test_rate_limits_survive_a_changed_identity(
    locked_app: RunningApp, fake_llm: FakeLLMServer
) -> None:
    """Four fresh browser profiles (four identities) from one address, back to back: the
    address's limit (3 a minute) refuses one, before anything of it is saved."""

    async def scenario() -> list[tuple[str, str, list[dict]]]:
        app = _app(locked_app)
        tabs = [ReflexSession(locked_app.url, app) for _ in range(4)]
        for tab in tabs:
            await tab.connect()
        assert len({tab.cookies["chatmon_id"] for tab in tabs}) == 4
        for number, tab in enumerate(tabs):  # within a fraction of a second: no refill
            await tab.send(
                app.handler(CHAT, "send_message"), form_data=form_data(message=f"attempt {number}")
            )
        outcomes = []
        for number, tab in enumerate(tabs):
            await tab.wait_until(
                lambda s: s.get(CHAT, "notice")
                or (len(chat_messages(s) or []) >= 2 and not s.get(CHAT, "streaming")),
                timeout=REPLY_TIMEOUT,
            )
            outcomes.append((f"attempt {number}", tab.get(CHAT, "notice"), chat_messages(tab)))
            await tab.close()
        return outcomes

    hits = fake_llm.hits
    outcomes = run_async(scenario())
    refused = [(text, messages) for text, notice, messages in outcomes if notice]
    assert len(refused) == 1, outcomes
    [(refused_text, refused_messages)] = refused
    assert "You can send again in" in next(n for _, n, _ in outcomes if n)
    assert refused_messages == []  # not shown as sent
    assert fake_llm.hits - hits == 3
    engine = make_engine(locked_app.database_url)
    try:
        with Session(engine) as session:
            texts = [m.content for m in session.exec(select(ChatMessage)).all()]
            refusals = session.exec(
                select(LLMRequest).where(LLMRequest.error_category == "rate_limited_local")
            ).all()
    finally:
        engine.dispose()
    assert refused_text not in texts  # the refused message was not stored
    assert len(refusals) == 1  # and the refusal is still on the monitor


MONITOR_DATA = (
    "kpis",
    "series",
    "errors_by_category",
    "cost_by_model",
    "spenders",
    "budgets",
    "rows",
    "total_rows",
    "models",
    "detail",
    "updated_at",
)
ALERTS_DATA = ("rules", "history", "attempts", "channels")


def test_monitor_and_alerts_handlers_give_strangers_nothing(
    locked_app: RunningApp, fake_llm: FakeLLMServer
) -> None:
    from chatmon.states.alerts import AlertsState
    from chatmon.states.monitor import MonitorState

    _record_requests(locked_app, count=5)  # data the stranger wants (whatever ran before)

    async def scenario() -> tuple[dict, dict, dict]:
        app = _app(locked_app)
        stranger = ReflexSession(locked_app.url, app, path="/monitor")
        await stranger.connect()
        for state, handlers in (
            (MONITOR, MonitorState.event_handlers),
            (ALERTS, AlertsState.event_handlers),
        ):
            for handler in handlers:
                if handler == "setvar":
                    continue
                for junk in (None, "1h", "started_at", {"start": "x"}, "x" * 5000):
                    await stranger.send(
                        app.handler(state, handler), **_args_of(state, handler, junk)
                    )
        await asyncio.sleep(4)
        monitor = dict(stranger.state[stranger._full(MONITOR)])
        alerts = dict(stranger.state[stranger._full(ALERTS)])
        errors = list(stranger.errors)
        await stranger.close()
        return monitor, alerts, {"errors": errors}

    monitor, alerts, extra = run_async(scenario())
    app = _app(locked_app)
    initial_monitor = app.initial_state[next(k for k in app.initial_state if k.endswith(MONITOR))]
    initial_alerts = app.initial_state[next(k for k in app.initial_state if k.endswith(ALERTS))]
    for var in MONITOR_DATA:
        key = var + "_rx_state_"
        assert monitor.get(key) == initial_monitor.get(key), f"monitor {var} shown to a stranger"
    for var in ALERTS_DATA:
        key = var + "_rx_state_"
        assert alerts.get(key) == initial_alerts.get(key), f"alerts {var} shown to a stranger"
    assert extra["errors"] == []


def _record_requests(running: RunningApp, *, count: int) -> None:
    """Put ``count`` finished requests into the app's request log, as the recorder does."""
    from datetime import datetime

    from chatmon.services import request_log
    from chatmon.services.events import LLMCall

    calls = [
        LLMCall(
            correlation_id=uuid.uuid4().hex[:16],
            session_id="b_victim",
            conversation_id="c",
            model="openai/fake",
            provider="openai",
            started_at=datetime.now(UTC),
            first_token_seconds=0.1,
            total_seconds=0.5,
            input_tokens=10,
            output_tokens=20,
            cost_usd=0.001,
            status="ok",
            error_category=None,
            retries=0,
            temperature=0.7,
            prompt_version="v",
        )
        for _ in range(count)
    ]
    engine = make_engine(running.database_url)
    try:
        with Session(engine) as session:
            request_log.record_calls(session=session, calls=calls, price_known=lambda _m: True)
            session.commit()
    finally:
        engine.dispose()


def _args_of(state: str, handler: str, junk: Any) -> dict[str, Any]:
    """Arguments for a monitor/alerts handler, by its signature, all set to ``junk``."""
    import inspect

    from chatmon.states.alerts import AlertsState
    from chatmon.states.monitor import MonitorState

    cls = MonitorState if state == MONITOR else AlertsState
    fn = cls.event_handlers[handler].fn
    names = [p for p in inspect.signature(fn).parameters if p != "self"]
    return dict.fromkeys(names, junk)
