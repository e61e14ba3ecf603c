"""Scale-out: two chatmon instances sharing Redis (Reflex state) and PostgreSQL (data).

The topology of docs/scaling.md, reduced to one machine: a load balancer in front of two
app instances (each ``scripts/start.sh`` with ``REFLEX_REDIS_URL`` and two granian
workers), one Redis database, one PostgreSQL database. The balancer is Debian's nginx
running deploy/nginx/chatmon.conf, the config the README recommends
(:class:`tests.nginx.Balancer`); the test drains an instance as an operator would, by
naming the other one in the upstream and reloading nginx, which drops the open
websockets: the browser keeps one origin, so one profile, one localStorage and one
sessionStorage, and only the instance behind it changes.
Both instances are built with ``REFLEX_API_URL`` pointing at the balancer, as a real
deployment bakes its public URL into the frontend.
"""

from __future__ import annotations

import asyncio
import os
import re
import threading
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis
from playwright.sync_api import Browser, Locator, Page, expect
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, make_url, text
from sqlmodel import Session, select

from bench.chat_load import chat_turn
from bench.reflex_client import CompiledApp, ReflexSession, chat_messages
from chatmon.db import make_engine
from chatmon.devtools.fake_llm_server import FakeLLMServer
from chatmon.migrate import upgrade_head
from chatmon.models import ChatMessage, Conversation
from tests.integration.conftest import (
    MONITOR_USER,
    RunningApp,
    identity_cookie,
    launch_app,
    run_async,
)
from tests.integration.test_chat_page import send
from tests.nginx import Balancer
from tests.peers import WebhookReceiver, wait_for
from tests.services import postgres_admin_url, redis_url

pytestmark = pytest.mark.browser

REDIS_DB = 11  # this module's own; bench/concurrency.py uses 12
MONITOR_PASSWORD = "scale-out-monitor-password"
ALERT_CHECK_INTERVAL = 1.0


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
    client = redis.Redis.from_url(f"{redis_url()}/{REDIS_DB}")
    try:
        client.flushdb()
    except redis.ConnectionError as exc:
        pytest.fail(f"Redis is not reachable at {redis_url()}: {exc}")
    yield f"{redis_url()}/{REDIS_DB}"
    client.flushdb()
    client.close()


@pytest.fixture(scope="module")
def shared_postgres() -> Iterator[str]:
    """A migrated PostgreSQL database of this module's own, dropped at the end."""
    name = f"chatmon_scale_out_{os.getpid()}"
    admin_url = postgres_admin_url()
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
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
        balancer = stack.enter_context(
            Balancer(tmp_path_factory.mktemp("nginx"), backend="http://127.0.0.1:1")
        )
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
            return chat_messages(session)[-1]["correlation_id"]
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
    cluster.balancer.switch_to(cluster.a.url)  # also closes (logs) every earlier websocket
    earlier = len(cluster.balancer.websockets)  # of tests before this one, in any order
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
        assert set(cluster.balancer.websockets[earlier:]) == {cluster.a.url}
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
        # a worker's first monitor read (with the Alerts panel's 7-day replay) takes seconds
        expect(page.locator("#kpi-requests")).to_have_text(f"{expected:,}", timeout=30_000)

        cluster.balancer.switch_to(cluster.a.url)
        page.reload()
        expect(page.locator("#monitor-page")).to_be_visible()
        page.click("#window-1h")
        # a worker's first monitor read (with the Alerts panel's 7-day replay) takes seconds
        expect(page.locator("#kpi-requests")).to_have_text(f"{expected:,}", timeout=30_000)
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
