"""Unhandled backend exceptions to a local Sentry envelope receiver over real HTTP."""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Iterator

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.testclient import TestClient

from chatmon import __version__, wiring
from chatmon.api import routes as chatmon_routes
from chatmon.devtools.sentry_receiver import SentryReceiver, parse_envelope
from chatmon.observability import error_tracking
from chatmon.settings import SettingsError, load_settings

FAKE_KEY = "sk-proj-FAKEKEY0123456789abcdef"
CONFIGURED_KEY = "AIzaSyFakeConfiguredKey0123456789"


async def _boom(request: Request) -> Response:
    raise RuntimeError(
        f"upstream refused key {FAKE_KEY} for jane.doe@example.com (configured {CONFIGURED_KEY})"
    )


def _app() -> Starlette:
    """chatmon's backend routes plus one that fails the way a bug would."""
    return Starlette(routes=[*chatmon_routes, Route("/api/boom", _boom, methods=["GET"])])


@pytest.fixture
def sentry() -> Iterator[SentryReceiver]:
    with SentryReceiver() as receiver:
        try:
            yield receiver
        finally:
            error_tracking.reset()


def _start(receiver: SentryReceiver, **overrides: object) -> None:
    values: dict[str, object] = dict(
        sentry_dsn=receiver.dsn, sentry_environment="staging", llm_api_key=CONFIGURED_KEY
    )
    values.update(overrides)
    assert wiring.install_error_tracking(load_settings(**values))


def _fail_once(client: TestClient) -> float:
    started = time.perf_counter()
    response = client.get("/api/boom?token=query-secret-123")
    assert response.status_code == 500
    return time.perf_counter() - started


def test_route_exception_arrives_with_release_and_environment(sentry: SentryReceiver) -> None:
    _start(sentry)
    with TestClient(_app(), raise_server_exceptions=False) as client:
        _fail_once(client)
    error_tracking.flush(5)
    [event] = sentry.wait_for(lambda r: r.events)
    assert event["release"] == f"chatmon@{__version__}"
    assert event["environment"] == "staging"
    [exception] = event["exception"]["values"]
    assert exception["type"] == "RuntimeError"
    assert exception["mechanism"]["type"] == "starlette"
    assert exception["mechanism"]["handled"] is False
    assert event["request"]["url"].endswith("/api/boom")


def test_reported_exception_holds_no_secret_and_no_pii(sentry: SentryReceiver) -> None:
    _start(sentry)
    with TestClient(_app(), raise_server_exceptions=False) as client:
        _fail_once(client)
    error_tracking.flush(5)
    [event] = sentry.wait_for(lambda r: r.events)
    [exception] = event["exception"]["values"]
    assert exception["value"] == "upstream refused key sk-*** for [EMAIL] (configured ***)"
    raw = b"".join(sentry.state.raw_bodies)
    for leaked in (b"FAKEKEY", CONFIGURED_KEY.encode(), b"jane.doe", b"query-secret-123"):
        assert leaked not in raw
    assert b'"vars"' not in raw  # no local variables of stack frames
    assert "cookie" not in {k.lower() for k in event["request"].get("headers", {})}


def test_pii_is_kept_when_redaction_is_off_but_secrets_never(sentry: SentryReceiver) -> None:
    _start(sentry, enable_pii_redaction=False)
    with TestClient(_app(), raise_server_exceptions=False) as client:
        _fail_once(client)
    error_tracking.flush(5)
    [event] = sentry.wait_for(lambda r: r.events)
    value = event["exception"]["values"][0]["value"]
    assert "jane.doe@example.com" in value and FAKE_KEY not in value


def test_captured_framework_exception_is_reported(sentry: SentryReceiver) -> None:
    """What the app's Reflex backend exception handler hands over (a state handler's)."""
    _start(sentry)
    try:
        raise ValueError(f"state handler failed with {FAKE_KEY}")
    except ValueError as exc:
        error_tracking.capture(exc)
    error_tracking.flush(5)
    [event] = sentry.wait_for(lambda r: r.events)
    assert event["exception"]["values"][0]["value"] == "state handler failed with sk-***"


def test_an_error_log_line_is_an_event_with_its_secret_masked(sentry: SentryReceiver) -> None:
    import logging

    _start(sentry)
    logging.getLogger("chatmon.tasks.test").error("alert check failed: key %s", FAKE_KEY)
    error_tracking.flush(5)
    [event] = sentry.wait_for(lambda r: r.events)
    assert event["logentry"]["formatted"] == "alert check failed: key sk-***"
    assert FAKE_KEY.encode() not in b"".join(sentry.state.raw_bodies)


def test_hung_sentry_never_delays_a_request(sentry: SentryReceiver) -> None:
    _start(sentry)
    with TestClient(_app(), raise_server_exceptions=False) as client:
        baseline = sorted(_fail_once(client) for _ in range(5))[2]
        sentry.set_hang(True)
        _fail_once(client)
        sentry.wait_for(lambda r: r.state.hung >= 1)  # the SDK's sender is stuck on it now
        while_hung = sorted(_fail_once(client) for _ in range(20))
        healthy = client.get("/health/live")
        assert healthy.status_code == 200
    median = while_hung[len(while_hung) // 2]
    print(f"\nfailing request: {baseline * 1000:.1f} ms, while Sentry hangs {median * 1000:.1f} ms")
    assert median < baseline + 0.1, f"{median * 1000:.1f} ms vs {baseline * 1000:.1f} ms"
    assert while_hung[-1] < 1.0
    started = time.perf_counter()
    error_tracking.flush(1.0)
    assert time.perf_counter() - started < 2.0  # shutdown's flush is bounded


def test_receiver_parses_gzip_envelopes_with_and_without_lengths() -> None:
    event = json.dumps({"event_id": "abc", "message": "hi"}).encode()
    body = (
        b'{"event_id":"abc"}\n'
        + json.dumps({"type": "event", "length": len(event)}).encode()
        + b"\n"
        + event
        + b'\n{"type":"client_report"}\n{"discarded_events":[]}\n'
    )
    parsed = parse_envelope(gzip.decompress(gzip.compress(body)), project="7")
    assert [item.type for item in parsed.items] == ["event", "client_report"]
    assert parsed.items[0].payload == {"event_id": "abc", "message": "hi"}
    assert parsed.items[1].payload == {"discarded_events": []}


@pytest.mark.parametrize(
    "dsn",
    ["sentry.example.com/1", "https://sentry.example.com/1", "https://key@sentry.example.com/"],
)
def test_a_bad_dsn_stops_startup_naming_the_variable(dsn: str) -> None:
    with pytest.raises(SettingsError, match="SENTRY_DSN"):
        load_settings(sentry_dsn=dsn)


def test_error_tracking_is_off_without_a_dsn() -> None:
    assert not wiring.install_error_tracking(load_settings())
