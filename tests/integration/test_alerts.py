"""Alerts, end to end: two real chatmon processes sharing one PostgreSQL database, the
fake upstream failing every other request, a real SMTP server (aiosmtpd) and a real
webhook receiver, the chat driven in Chromium.

One scenario, in the order an on-call engineer lives it:
1. half the requests fail: the error-rate alert arrives once by email and once on
   Slack, with the right figures, although two processes check every second;
2. nothing more during the cooldown;
3. the SMTP server goes down and the webhook answers 500 while the provider recovers:
   the resolved message is recorded as failed on both channels and retried, the chat
   and /health are unaffected;
4. the channels come back: the resolved message arrives once on each;
5. the monitor page's Alerts panel shows all of it.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from chatmon.db import make_engine
from chatmon.devtools.fake_llm_server import FakeLLMServer
from chatmon.migrate import upgrade_head
from chatmon.models import AlertAttempt, AlertDelivery, AlertNotification, LLMRequest
from tests.integration.conftest import RunningApp, launch_app, sign_in
from tests.integration.test_chat_page import assistant_bubbles, send
from tests.peers import SMTPSink, WebhookReceiver, text_part, wait_for
from tests.services import postgres_admin_url

pytestmark = pytest.mark.browser

PUBLIC_URL = "http://chat.example.test"


@pytest.fixture(scope="module")
def shared_database() -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for the two app processes."""
    name = f"chatmon_alerts_{os.getpid()}"
    admin_url = postgres_admin_url()
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    upgrade_head(url)  # before the apps start, so their own migrate step finds nothing to do
    yield url
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="module")
def sink() -> Iterator[SMTPSink]:
    with SMTPSink() as server:
        yield server


@pytest.fixture(scope="module")
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as server:
        yield server


@pytest.fixture(scope="module")
def two_apps(
    fake_llm: FakeLLMServer,
    shared_database: str,
    sink: SMTPSink,
    receiver: WebhookReceiver,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[RunningApp, RunningApp]]:
    """Two chatmon instances on one database, checking alerts every second."""
    env = {
        "DATABASE_URL": shared_database,
        "SMTP_HOST": sink.host,
        "SMTP_PORT": str(sink.port),
        "SMTP_STARTTLS": "false",  # aiosmtpd without TLS; STARTTLS is covered by the unit tests
        "ALERT_EMAIL_FROM": "chatmon@example.test",
        "ALERT_EMAIL_TO": "oncall@example.test",
        "SLACK_WEBHOOK_URL": receiver.url,
        "PUBLIC_URL": PUBLIC_URL,
        # PUBLIC_URL is only for the links in the messages: the browser uses each
        # instance's own address ("{url}")
        "CORS_ALLOWED_ORIGINS": "{url}",
        "ALERT_CHECK_INTERVAL_SECONDS": "1",
        "ALERT_MIN_REQUESTS": "10",
        "ALERT_WINDOW_MINUTES": "30",
        "ALERT_ERROR_RATE_THRESHOLD": "20",
        # only the error-rate rule is under test: a loaded CI machine may well be slow
        "ALERT_LATENCY_P95_THRESHOLD": "120",
        "ALERT_COST_THRESHOLD": "1000",
        "DAILY_COST_THRESHOLD": "1000",
        "ALERT_COOLDOWN_HOURS": "1",
        "LLM_MAX_RETRIES": "0",  # one provider failure = one failed request
        "RATE_LIMIT_PER_MINUTE": "0",
        "REQUEST_TIMEOUT": "30",  # no spurious timeouts on a loaded machine
    }
    with (
        launch_app(
            workdir=tmp_path_factory.mktemp("alerts-a"), fake_llm_url=fake_llm.url, **env
        ) as a,
        launch_app(
            workdir=tmp_path_factory.mktemp("alerts-b"), fake_llm_url=fake_llm.url, **env
        ) as b,
    ):
        yield a, b


@pytest.fixture(scope="module")
def shared_db(shared_database: str) -> Iterator[Engine]:
    engine = make_engine(shared_database)
    yield engine
    engine.dispose()


def open_page(browser: Browser, url: str) -> Page:
    page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    page.set_default_timeout(20_000)
    page.goto(url)
    return page


def open_chat(browser: Browser, app: RunningApp) -> Page:
    page = open_page(browser, app.url + "/")
    page.wait_for_selector("#message:not([disabled])")
    page.wait_for_selector("#chat-loaded", state="attached")
    return page


def send_and_wait(page: Page, message: str) -> None:
    """Send and wait for the reply (or error notice), patiently: two app processes, a
    browser and PostgreSQL share a small machine here."""
    before = assistant_bubbles(page).count()
    send(page, message)
    expect(assistant_bubbles(page)).to_have_count(before + 1, timeout=30_000)
    expect(page.locator("#send-button")).to_be_visible(timeout=30_000)


def recorded(db: Engine) -> list[LLMRequest]:
    with Session(db) as session:
        return list(session.exec(select(LLMRequest).order_by(LLMRequest.started_at)).all())


def deliveries(db: Engine, kind: str) -> dict[str, AlertDelivery]:
    with Session(db) as session:
        query = (
            select(AlertDelivery)
            .join(AlertNotification, AlertNotification.id == AlertDelivery.notification_id)
            .where(AlertNotification.kind == kind)
        )
        return {d.channel: d for d in session.exec(query).all()}


def failed_attempts(db: Engine) -> dict[str, int]:
    with Session(db) as session:
        rows = session.exec(select(AlertAttempt).where(AlertAttempt.result == "failed")).all()
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.channel] = counts.get(row.channel, 0) + 1
    return counts


@pytest.mark.timeout(900)  # two app starts (up to a minute each here) and ~30 chat turns
def test_alert_fires_once_resolves_once_across_two_instances_and_survives_channel_outages(
    browser: Browser,
    fake_llm: FakeLLMServer,
    two_apps: tuple[RunningApp, RunningApp],
    shared_db: Engine,
    sink: SMTPSink,
    receiver: WebhookReceiver,
) -> None:
    app_a, app_b = two_apps
    chat_a, chat_b = open_chat(browser, app_a), open_chat(browser, app_b)

    # 1. Ten requests, every other one failing (500), spread over both instances.
    for i in range(10):
        if i % 2:
            fake_llm.configure(fail_first=1, fail_with="500")
        send_and_wait(chat_a if i < 5 else chat_b, f"question {i}")
    assert wait_for(lambda: sink.count() >= 1 and receiver.count() >= 1, timeout=30)
    rows = recorded(shared_db)
    errors = [r for r in rows if r.status == "error"]
    assert len(rows) == 10
    assert len(errors) >= 5  # the five 500s (a loaded machine may add a timeout)
    rate = f"{100 * len(errors) / 10:.1f} %"
    firing = f"[chatmon] FIRING: Error rate {rate} (threshold 20 %)"
    assert sink.subjects() == [firing]
    email = text_part(sink.messages[0])
    assert (
        f"{rate} of requests failed in the last 30 min ({len(errors)} of 10); threshold 20 %"
        in email
    )
    categories = Counter(r.error_category for r in errors).most_common()
    top = ", ".join(
        f"{name} ({count})" for name, count in sorted(categories, key=lambda c: (-c[1], c[0]))[:3]
    )
    assert f"Top error categories: {top}" in email
    ids = re.findall(r"^  ([0-9a-f]{8,32})$", email, flags=re.MULTILINE)
    assert ids and set(ids) <= {r.correlation_id for r in errors}
    assert f"Monitor: {PUBLIC_URL}/monitor" in email
    assert receiver.texts() == [firing]
    slack = str(receiver.bodies[0]["blocks"])
    assert f"*Value*\\n{rate}" in slack and top in slack and ids[0] in slack

    # 2. Both instances keep checking every second: nothing more during the cooldown.
    assert not wait_for(lambda: sink.count() > 1 or receiver.posts() > 1, timeout=5)

    # 3. Channels down; the provider recovers: good requests until the rate is <= 20 %.
    sink.stop()
    receiver.status = 500
    fake_llm.reset()
    for i in range(40):
        send_and_wait(chat_a if i % 2 else chat_b, f"recovered {i}")
        if deliveries(shared_db, "resolved"):
            break
    assert wait_for(
        lambda: min(failed_attempts(shared_db).values() or [0]) >= 2
        and len(failed_attempts(shared_db)) == 2,
        timeout=30,
    )
    resolved = deliveries(shared_db, "resolved")
    assert {d.status for d in resolved.values()} <= {"failed", "sending"}  # sending: a retry
    assert "Connection refused" in (resolved["email"].last_error or "")
    assert (resolved["slack"].last_error or "").startswith("HTTP 500")
    assert receiver.url not in str(resolved["slack"].last_error)
    for app in two_apps:  # the app is unaffected
        assert httpx.get(app.url + "/health", timeout=10).status_code == 200
    send_and_wait(chat_b, "still answering")
    expect(assistant_bubbles(chat_b).last).to_contain_text("Echo: still answering")

    # 4. Channels back: the resolved message arrives once on each.
    with SMTPSink(port=sink.port) as restarted:
        receiver.status = 200
        assert wait_for(lambda: restarted.count() >= 1 and receiver.count() >= 2, timeout=60)
        assert not wait_for(lambda: restarted.count() > 1 or receiver.count() > 2, timeout=5)
    (resolved_subject,) = restarted.subjects()
    assert receiver.texts() == [firing, resolved_subject]
    # the figures of the check that saw the rate fall to 20 % or below: the first n requests
    found = re.search(r"\((\d+) of (\d+)\)", text_part(restarted.messages[0]))
    assert found is not None
    failed_then, n = int(found.group(1)), int(found.group(2))
    assert failed_then == sum(r.status == "error" for r in recorded(shared_db)[:n])
    assert 100 * failed_then / n <= 20
    assert (
        resolved_subject
        == f"[chatmon] RESOLVED: Error rate is back to {100 * failed_then / n:.1f} %"
    )
    with Session(shared_db) as session:
        notes = session.exec(select(AlertNotification).order_by(AlertNotification.id)).all()
    assert [(n.rule, n.kind) for n in notes] == [
        ("error_rate", "firing"),
        ("error_rate", "resolved"),
    ]

    # 5. The Alerts panel on the monitor page tells the same story.
    monitor = open_page(browser, app_a.url + "/")
    sign_in(monitor, app_a)  # the monitor is behind its login (launch_app's password)
    try:
        panel = monitor.locator("#alerts-panel")
        # the first load of the page's data, patiently (expect's own default is 5 s)
        expect(panel.locator("#alert-rule-error_rate .alert-status")).to_have_text(
            "ok", timeout=30_000
        )
        expect(panel.locator("#alert-channels")).to_contain_text("email, slack")
        history = panel.locator(".alert-history-row")
        expect(history).to_have_count(2)
        expect(history.first).to_contain_text("resolved")
        expect(history.first).to_contain_text("email: sent · slack: sent")
        expect(history.last).to_contain_text("firing")
        expect(panel.locator(".alert-attempt-row", has_text="failed").first).to_be_visible()
    finally:
        monitor.context.close()
        chat_a.context.close()
        chat_b.context.close()
