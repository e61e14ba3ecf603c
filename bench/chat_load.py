"""The per-session driver of the chat benchmarks: websocket sessions that send a message
like the composer form does and wait for the complete, correct reply, and the reference
beside them, streaming completions straight to the upstream.

A session (:mod:`bench.reflex_client`: hydrate and on_load, then ``send_message`` with the
form's ``message`` field, exactly what the browser sends) is done when ``streaming`` is
false again and the reply, with the text the fake sends, is appended to ``messages``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass

import httpx

from bench.reflex_client import CompiledApp, ReflexSession, chat_messages, form_data
from bench.servers import SYSTEM_PROMPT
from chatmon.devtools.fake_llm import expected_reply

CHAT_STATE = "chat"
LIVE_STATE = ".live"  # the live reply's frames (full name ends so: LiveState.get_name)
REPLY_TIMEOUT = 120.0
CONNECT_TIMEOUT = 60.0


@dataclass
class Outcome:
    """One session's (or one direct upstream call's) result."""

    seconds: float | None  # message sent -> reply complete; None when it failed
    error: str = ""
    update_bytes: int = 0  # JSON bytes of the state updates the tab received meanwhile
    live_bytes: int = 0  # of which the live reply's frames
    reply_bytes: int = 0  # UTF-8 bytes of the reply's text


def message_text(index: int) -> str:
    """The message session (or direct call) ``index`` sends."""
    return f"bench session {index} says hello"


def _reply_done(before: int) -> Callable[[ReflexSession], bool]:
    """The predicate of a finished reply: not streaming, user message and reply appended."""

    def done(session: ReflexSession) -> bool:
        messages = chat_messages(session) or []
        return len(messages) >= before + 2 and not session.get(CHAT_STATE, "streaming")

    return done


async def chat_turn(session: ReflexSession, text: str, reply_words: int) -> Outcome:
    """Send ``text`` like the composer form does and wait for the complete, correct reply."""
    before = len(chat_messages(session) or [])
    bytes_before = session.received_bytes
    live_before = _live_bytes(session)
    sent = await session.send(
        session.app.handler(CHAT_STATE, "send_message"), form_data=form_data(message=text)
    )
    try:
        await session.wait_until(_reply_done(before), timeout=REPLY_TIMEOUT)
    except TimeoutError:
        return Outcome(None, f"no complete reply within {REPLY_TIMEOUT:.0f} s")
    finished = session.last_update_at
    reply = (chat_messages(session) or [])[-1]
    if reply.get("role") != "assistant" or reply.get("error_category"):
        return Outcome(None, f"error reply: {reply.get('error_category') or reply.get('role')}")
    if reply.get("content") != expected_reply(text, reply_words):
        return Outcome(None, f"unexpected reply: {reply.get('content', '')[:80]!r}")
    return Outcome(
        finished - sent,
        update_bytes=session.received_bytes - bytes_before,
        live_bytes=_live_bytes(session) - live_before,
        reply_bytes=len(reply["content"].encode()),
    )


def _live_bytes(session: ReflexSession) -> int:
    return sum(
        size
        for name, size in session.received_bytes_by_substate.items()
        if name.endswith(LIVE_STATE)
    )


async def _one_session(
    url: str,
    app: CompiledApp,
    index: int,
    arrive: Callable[[], None],
    go: asyncio.Event,
    reply_words: int,
) -> Outcome:
    session = ReflexSession(url, app)
    try:
        try:
            await session.connect(timeout=CONNECT_TIMEOUT)
        finally:
            arrive()
        await go.wait()
        return await chat_turn(session, message_text(index), reply_words)
    except Exception as exc:  # noqa: BLE001 - a failed session is a result, not a crash of the bench
        return Outcome(None, f"{type(exc).__name__}: {exc}"[:200])
    finally:
        with suppress(Exception):
            await session.close()


async def chat_sessions(url: str, app: CompiledApp, n: int, reply_words: int) -> list[Outcome]:
    """N tabs connect (hydrate + on_load), then all send one message at the same moment."""
    arrived = 0
    all_in, go = asyncio.Event(), asyncio.Event()

    def arrive() -> None:  # connected, or gave up connecting
        nonlocal arrived
        arrived += 1
        if arrived == n:
            all_in.set()

    tasks = [
        asyncio.create_task(_one_session(url, app, i, arrive, go, reply_words)) for i in range(n)
    ]
    with suppress(TimeoutError):
        await asyncio.wait_for(all_in.wait(), CONNECT_TIMEOUT + 5)
    go.set()
    return list(await asyncio.gather(*tasks))


async def _upstream_call(
    client: httpx.AsyncClient, url: str, text: str, go: asyncio.Event
) -> Outcome:
    body = {
        "model": "fake",
        "messages": [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": text},
        ],
        "stream": True,
        "stream_options": {"include_usage": True},
        "temperature": 0.7,
    }
    await go.wait()
    started = time.perf_counter()
    try:
        async with client.stream("POST", url + "/chat/completions", json=body) as response:
            response.raise_for_status()
            async for line in response.aiter_lines():
                if line == "data: [DONE]":
                    return Outcome(time.perf_counter() - started)
        return Outcome(None, "stream ended without [DONE]")
    except httpx.HTTPError as exc:
        return Outcome(None, f"{type(exc).__name__}: {exc}"[:200])


async def upstream_calls(url: str, n: int) -> list[Outcome]:
    """The reference: N streaming completions straight to the fake, started together."""
    limits = httpx.Limits(max_connections=n + 10, max_keepalive_connections=n + 10)
    async with httpx.AsyncClient(limits=limits, timeout=REPLY_TIMEOUT) as client:
        go = asyncio.Event()
        calls = [_upstream_call(client, url, message_text(i), go) for i in range(n)]
        tasks = [asyncio.create_task(call) for call in calls]
        await asyncio.sleep(0.1)
        go.set()
        return list(await asyncio.gather(*tasks))
