"""Scale-out: two chatmon instances sharing Redis (Reflex state) and PostgreSQL (data).

The topology of docs/scaling.md, reduced to one machine: a load balancer in front of two
app instances (each ``scripts/start.sh`` with ``REFLEX_REDIS_URL`` and two granian
workers), one Redis database, one PostgreSQL database. The balancer is a small real
HTTP + websocket reverse proxy (:class:`Balancer`) whose backend the test switches, as a
real balancer does when an instance is drained: the browser keeps one origin, so one
profile, one localStorage and one sessionStorage, and only the instance behind it changes.
Both instances are built with ``REFLEX_API_URL`` pointing at the balancer, as a real
deployment bakes its public URL into the frontend.
"""

from __future__ import annotations

import asyncio
import os
import re
import threading
from collections.abc import Coroutine, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import httpx
import pytest
import redis
from aiohttp import WSMsgType, web
from multidict import CIMultiDict
from playwright.sync_api import Browser, Locator, Page, expect
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, make_url, text
from sqlmodel import Session, select

from bench.concurrency import CHAT_STATE, chat_turn
from bench.reflex_client import CompiledApp, ReflexSession
from chatmon.db import make_engine
from chatmon.devtools.fake_llm import FakeLLMServer
from chatmon.migrate import upgrade_head
from chatmon.models import ChatMessage, Conversation
from tests.conftest import POSTGRES_ADMIN_URL
from tests.integration.conftest import (
    MONITOR_USER,
    RunningApp,
    free_port,
    identity_cookie,
    launch_app,
    run_async,
)
from tests.integration.test_chat_page import send
from tests.peers import WebhookReceiver, wait_for

pytestmark = pytest.mark.browser

REDIS_URL = os.environ.get("CHATMON_TEST_REDIS_URL", "redis://127.0.0.1:6379")
REDIS_DB = 11  # this module's own; bench/concurrency.py uses 12
MONITOR_PASSWORD = "scale-out-monitor-password"
ALERT_CHECK_INTERVAL = 1.0
T = TypeVar("T")

# Hop-by-hop headers a proxy must not forward (RFC 9110 7.6.1), plus Content-Length, which
# the proxy sets itself. Host is kept, as balancers do: redirects then name the public host.
_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
}


class Balancer:
    """A reverse proxy for HTTP and websockets with one switchable backend.

    ``switch_to`` changes the backend for new requests and closes the open websockets,
    which is what a browser sees when its instance is drained: the socket drops and
    socket.io reconnects, now to the other instance. ``websockets`` records which backend
    each websocket went to.
    """

    def __init__(self, backend: str) -> None:
        self.backend = backend
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.websockets: list[str] = []
        self._open: set[web.WebSocketResponse] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="balancer", daemon=True)
        self._runner: web.AppRunner | None = None
        self._client: aiohttp.ClientSession | None = None

    def __enter__(self) -> Balancer:
        self._thread.start()
        self._call(self._start())
        return self

    def __exit__(self, *_exc: object) -> None:
        self._call(self._stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    def switch_to(self, backend: str) -> None:
        """Send new traffic to ``backend`` and drop the websockets open to the old one."""
        self._call(self._switch(backend))

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(30)

    async def _start(self) -> None:
        self._client = aiohttp.ClientSession(auto_decompress=False)
        app = web.Application(client_max_size=16 * 2**20)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def _stop(self) -> None:
        for ws in list(self._open):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()
        if self._client is not None:
            await self._client.close()

    async def _switch(self, backend: str) -> None:
        self.backend = backend
        for ws in list(self._open):
            await ws.close(code=1001, message=b"instance drained")

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await self._websocket(request)
        return await self._http(request)

    @staticmethod
    def _forwarded(headers: Any) -> CIMultiDict[str]:
        """The end-to-end headers, repeated ones kept (a login sets several cookies)."""
        return CIMultiDict((k, v) for k, v in headers.items() if k.lower() not in _HOP_BY_HOP)

    async def _http(self, request: web.Request) -> web.StreamResponse:
        assert self._client is not None
        async with self._client.request(
            request.method,
            self.backend + request.path_qs,
            headers=self._forwarded(request.headers),
            data=await request.read(),
            allow_redirects=False,
        ) as upstream:
            response = web.StreamResponse(
                status=upstream.status, headers=self._forwarded(upstream.headers)
            )
            if upstream.content_length is not None:
                response.content_length = upstream.content_length
            await response.prepare(request)
            async for chunk in upstream.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
            return response

    async def _websocket(self, request: web.Request) -> web.WebSocketResponse:
        assert self._client is not None
        backend = self.backend
        protocols = request.headers.get("Sec-WebSocket-Protocol", "")
        offered = [p.strip() for p in protocols.split(",") if p.strip()]
        passed = {"host", "origin", "cookie", "user-agent"}
        headers = {k: v for k, v in request.headers.items() if k.lower() in passed}
        upstream = await self._client.ws_connect(
            backend.replace("http", "ws", 1) + request.path_qs, protocols=offered, headers=headers
        )
        chosen = [upstream.protocol] if upstream.protocol else []
        downstream = web.WebSocketResponse(protocols=chosen)
        await downstream.prepare(request)
        self.websockets.append(backend)
        self._open.add(downstream)
        try:
            pumps = [
                asyncio.ensure_future(self._pump(downstream, upstream)),
                asyncio.ensure_future(self._pump(upstream, downstream)),
            ]
            _, pending = await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
            for task in pending:
                task.cancel()
        finally:
            self._open.discard(downstream)
            await upstream.close()
            await downstream.close()
        return downstream

    @staticmethod
    async def _pump(source: Any, sink: Any) -> None:
        async for message in source:
            if message.type == WSMsgType.TEXT:
                await sink.send_str(message.data)
            elif message.type == WSMsgType.BINARY:
                await sink.send_bytes(message.data)
            else:
                break


@dataclass
class Cluster:
    """Two instances behind one balancer, sharing Redis and PostgreSQL."""

    balancer: Balancer
    a: RunningApp
    b: RunningApp
    web_dirs: dict[str, Path]  # instance URL -> its built frontend
    database_url: str
    webhook: WebhookReceiver


@pytest.fixture(scope="module")
def shared_redis() -> Iterator[str]:
    """Redis db ``REDIS_DB``, emptied before and after (``make test`` starts Redis)."""
    client = redis.Redis.from_url(f"{REDIS_URL}/{REDIS_DB}")
    try:
        client.flushdb()
    except redis.ConnectionError as exc:
        pytest.fail(f"Redis is not reachable at {REDIS_URL} (scripts/ensure-redis.sh): {exc}")
    yield f"{REDIS_URL}/{REDIS_DB}"
    client.flushdb()
    client.close()


@pytest.fixture(scope="module")
def shared_postgres() -> Iterator[str]:
    """A migrated PostgreSQL database of this module's own, dropped at the end."""
    name = f"chatmon_scale_out_{os.getpid()}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    upgrade_head(url)  # before the instances start, so they never race to migrate
    yield url
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="module")
def cluster(
    browser: Browser,
    fake_llm: FakeLLMServer,
    shared_redis: str,
    shared_postgres: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Cluster]:
    """Instances A and B (two granian workers each) behind a balancer pointing at A.

    Every worker of both instances runs the alert loop each second; the Slack channel
    points at a webhook receiver. Output tokens cost $1 each, so the first reply fires
    the hourly cost rule.
    """
    with ExitStack() as stack:
        balancer = stack.enter_context(Balancer(backend="http://127.0.0.1:1"))
        webhook = stack.enter_context(WebhookReceiver())
        shared = {
            "DATABASE_URL": shared_postgres,
            "REFLEX_REDIS_URL": shared_redis,
            "GRANIAN_WORKERS": "2",
            "REFLEX_API_URL": balancer.url,
            "PUBLIC_URL": balancer.url,
            "MONITOR_PASSWORD": MONITOR_PASSWORD,
            "SESSION_SECRET": "scale-out-session-secret-shared-by-all",
            "REQUEST_TIMEOUT": "30",  # this machine is shared: no timeouts from CPU contention
            "SLACK_WEBHOOK_URL": webhook.url,
            "ALERT_CHECK_INTERVAL_SECONDS": str(ALERT_CHECK_INTERVAL),
            "LLM_PRICE_INPUT_PER_1M": "0",
            "LLM_PRICE_OUTPUT_PER_1M": "1000000",
        }
        a_dir, b_dir = tmp_path_factory.mktemp("instance-a"), tmp_path_factory.mktemp("instance-b")
        a = stack.enter_context(launch_app(workdir=a_dir, fake_llm_url=fake_llm.url, **shared))
        b = stack.enter_context(launch_app(workdir=b_dir, fake_llm_url=fake_llm.url, **shared))
        balancer.switch_to(a.url)
        yield Cluster(
            balancer=balancer,
            a=a,
            b=b,
            web_dirs={a.url: a_dir / "web", b.url: b_dir / "web"},
            database_url=shared_postgres,
            webhook=webhook,
        )


def chat_on(cluster: Cluster, instance: RunningApp, count: int) -> list[str]:
    """``count`` simultaneous one-message chats straight to ``instance``, each in a tab of
    its own (its own websocket, which the kernel hands to either worker), through the
    browser's websocket protocol (bench/reflex_client.py). Returns the replies'
    correlation ids."""
    app = CompiledApp.from_web_dir(cluster.web_dirs[instance.url])

    async def one(index: int) -> str:
        # The page a browser would be on is the public one (the balancer's origin).
        session = ReflexSession(instance.url, app, origin=cluster.balancer.url)
        await session.connect(timeout=60)
        try:
            outcome = await chat_turn(session, f"scale-out chat {index}", reply_words=12)
            assert outcome.seconds is not None, outcome.error
            return session.get(CHAT_STATE, "messages")[-1]["correlation_id"]
        finally:
            await session.close()

    async def all_of_them() -> list[str]:
        return list(await asyncio.gather(*(one(i) for i in range(count))))

    return run_async(all_of_them())


def ok_requests(instance: RunningApp) -> float:
    """``chatmon_llm_requests_total{status="ok"}`` summed over models, from /metrics."""
    body = (
        httpx.get(  # /metrics is behind the monitor's login (no METRICS_TOKEN here)
            instance.url + "/metrics", auth=("ops", MONITOR_PASSWORD), timeout=10
        )
        .raise_for_status()
        .text
    )
    return sum(
        sample.value
        for family in text_string_to_metric_families(body)
        for sample in family.samples
        if sample.name == "chatmon_llm_requests_total" and sample.labels.get("status") == "ok"
    )


def monitor_get(instance: RunningApp, path: str) -> httpx.Response:
    """GET a monitor API route with the monitor credentials (HTTP Basic, any user)."""
    response = httpx.get(instance.url + path, auth=("ops", MONITOR_PASSWORD), timeout=30)
    return response.raise_for_status()


def replies(page: Page) -> Locator:
    """Finished replies (and error notices): not the bubble still streaming."""
    return page.locator(".bubble-assistant:not(.bubble-streaming), .bubble-error")


def wait_replies(page: Page, count: int) -> None:
    """Wait until ``count`` replies are finished, then insist none is an error notice.

    Generous: the machine is shared, and a worker's first reply can wait for CPU.
    """
    expect(replies(page)).to_have_count(count, timeout=60_000)
    expect(page.locator("#streaming-reply")).to_have_count(0, timeout=60_000)
    errors = page.locator(".bubble-error").all_inner_texts()
    assert not errors, errors


def history(page: Page) -> list[str]:
    return [t.strip() for t in page.locator(".bubble-user, .bubble-assistant").all_inner_texts()]


@pytest.mark.timeout(900)  # includes starting both instances (module fixture)
def test_conversation_moves_to_another_instance(
    browser: Browser, cluster: Cluster, fake_llm: FakeLLMServer
) -> None:
    """Started on A, the conversation continues on B: the open tab reconnects there and
    gets its next reply, and a reload served entirely by B shows the whole history."""
    cluster.balancer.switch_to(cluster.a.url)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30_000)
    try:
        page.goto(cluster.balancer.url + "/")
        page.wait_for_selector("#message:not([disabled])")
        page.wait_for_selector("#chat-loaded", state="attached")
        send(page, "first message, on A")
        wait_replies(page, 1)
        expect(replies(page).last).to_have_text(re.compile("Echo: first message, on A"))
        assert set(cluster.balancer.websockets) == {cluster.a.url}
        identity = identity_cookie(context)

        # A is drained: its websocket drops, and socket.io reconnects through the balancer to B.
        cluster.balancer.switch_to(cluster.b.url)
        assert wait_for(lambda: cluster.balancer.websockets[-1] == cluster.b.url)
        expect(page.locator("#message")).to_be_enabled()
        hits = fake_llm.hits
        send(page, "second message, on B")
        wait_replies(page, 2)
        expect(replies(page).last).to_have_text(re.compile("Echo: second message, on B"))
        assert fake_llm.hits == hits + 1
        # B sent the model the whole conversation, first turn (served by A) included.
        assert "first message, on A" in str(fake_llm.requests[-1]["messages"])

        # A reload served entirely by B (page, hydrate, on_load) shows the whole history.
        a_sockets = cluster.balancer.websockets.count(cluster.a.url)
        page.reload()
        page.wait_for_selector("#message:not([disabled])")
        expect(page.locator(".bubble-user")).to_have_count(2)
        shown = history(page)
        assert shown[0] == "first message, on A"
        assert shown[1].startswith("Echo: first message, on A")
        assert shown[2] == "second message, on B"
        assert shown[3].startswith("Echo: second message, on B")
        assert identity_cookie(context) == identity  # the same browser identity on B
        send(page, "third message, still on B")
        wait_replies(page, 3)
        expect(replies(page).last).to_have_text(re.compile("Echo: third message, still on B"))
        assert cluster.balancer.websockets.count(cluster.a.url) == a_sockets  # A saw none of it
    finally:
        context.close()

    engine = make_engine(cluster.database_url)
    try:
        with Session(engine) as session:
            owned = select(Conversation).where(Conversation.title == "first message, on A")
            conversations = session.exec(owned).all()
            assert len(conversations) == 1
            assert conversations[0].owner_id.startswith("b_")  # a keyed hash, not the cookie
            assert identity.split(".")[1] not in conversations[0].owner_id
            messages = session.exec(
                select(ChatMessage)
                .where(ChatMessage.conversation_id == conversations[0].id)
                .order_by(ChatMessage.id)
            ).all()
            assert [m.role for m in messages] == ["user", "assistant"] * 3
    finally:
        engine.dispose()


def test_metrics_of_each_instance_count_exactly_what_it_served(cluster: Cluster) -> None:
    """Each instance's /metrics covers every worker of its own (multiprocess mode: a scrape
    answered by one worker reads all workers' files) and nothing of the other instance:
    Prometheus adds the instances up, so neither may miss or double count."""
    before_a, before_b = ok_requests(cluster.a), ok_requests(cluster.b)
    chat_on(cluster, cluster.a, 4)
    chat_on(cluster, cluster.b, 2)
    expected = (before_a + 4, before_b + 2)
    wait_for(lambda: (ok_requests(cluster.a), ok_requests(cluster.b)) == expected, timeout=15)
    assert ok_requests(cluster.a) - before_a == 4
    assert ok_requests(cluster.b) - before_b == 2


def test_monitor_data_of_either_instance_shows_requests_from_both(cluster: Cluster) -> None:
    """The request log and the stats come from the shared database: A and B show the same."""
    on_a = chat_on(cluster, cluster.a, 1)[0]
    on_b = chat_on(cluster, cluster.b, 1)[0]

    def logged_by_both() -> bool:
        return all(
            on_a in monitor_get(instance, "/api/requests.csv?window=1h").text
            and on_b in monitor_get(instance, "/api/requests.csv?window=1h").text
            for instance in (cluster.a, cluster.b)
        )

    assert wait_for(logged_by_both, timeout=15), "each instance's request log lists both requests"
    stats_a = monitor_get(cluster.a, "/api/stats?window=1h").json()
    stats_b = monitor_get(cluster.b, "/api/stats?window=1h").json()
    assert stats_a["requests"] == stats_b["requests"] >= 2
    assert stats_a["cost_usd"] == pytest.approx(stats_b["cost_usd"])


def test_monitor_page_shows_both_instances_and_its_login_holds_on_either(
    browser: Browser, cluster: Cluster
) -> None:
    """Signed in on B, the monitor shows every request of both instances; drained to A,
    the same browser stays signed in (shared SESSION_SECRET) and A shows the same figure."""
    chat_on(cluster, cluster.a, 1)
    chat_on(cluster, cluster.b, 1)
    expected = monitor_get(cluster.a, "/api/stats?window=1h").json()["requests"]
    assert wait_for(
        lambda: monitor_get(cluster.b, "/api/stats?window=1h").json()["requests"] == expected
    )
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(30_000)
    try:
        cluster.balancer.switch_to(cluster.b.url)
        page.goto(cluster.balancer.url + "/monitor")
        page.wait_for_url(lambda url: "/login" in url)
        page.fill("#login-user", MONITOR_USER)
        page.fill("#login-password", MONITOR_PASSWORD)
        page.click("#login-submit")
        page.wait_for_url(lambda url: url.split("?")[0].rstrip("/").endswith("/monitor"))
        page.click("#window-1h")
        expect(page.locator("#kpi-requests")).to_have_text(f"{expected:,}")

        cluster.balancer.switch_to(cluster.a.url)
        page.reload()
        expect(page.locator("#monitor-page")).to_be_visible()
        page.click("#window-1h")
        expect(page.locator("#kpi-requests")).to_have_text(f"{expected:,}")
        assert "/login" not in page.url
    finally:
        context.close()


def test_alert_is_sent_once_by_four_workers_on_two_instances(cluster: Cluster) -> None:
    """Four alert loops (2 instances x 2 workers) check every second; the firing cost
    alert reaches Slack exactly once (the send is claimed in the shared database)."""
    chat_on(cluster, cluster.a, 1)  # at least one $1-per-token reply in the last hour

    def firing() -> list[str]:
        with cluster.webhook.lock:
            headers = [body["blocks"][0]["text"]["text"] for body in cluster.webhook.bodies]
        return [h for h in headers if h.startswith("FIRING:")]

    assert wait_for(lambda: any("cost" in h.lower() for h in firing()), timeout=30), firing()
    # Let every loop check a few more times; none may send the same alert again.
    threading.Event().wait(6 * ALERT_CHECK_INTERVAL)
    sent = firing()
    assert len(sent) == len(set(sent)), sent
