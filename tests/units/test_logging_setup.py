"""JSON log lines with request ids, to stdout and a rotating file, secrets masked on every path."""

from __future__ import annotations

import io
import json
import logging
import re
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from chatmon.logging_setup import (
    LOG_FILE_BACKUPS,
    LOG_FILE_MAX_BYTES,
    configure_logging,
)
from chatmon.observability.log_context import log_context
from chatmon.services.limits import LOG_MESSAGE_MAX_CHARS, LOG_TRACEBACK_MAX_CHARS
from chatmon.settings import Settings, load_settings

LLM_KEY = "sk-live-4f9a8b7c6d5e4f3a2b1c"
LANGFUSE_SECRET = "sk-lf-0a1b2c3d-4e5f-6789"
METRICS_TOKEN = "metrics-tok-7Hq2Zx9"
PLAIN_PASSWORD = "hunter2-but-longer"


@pytest.fixture
def log_setup(tmp_path: Path) -> Iterator[tuple[io.StringIO, Path, Settings]]:
    """Configure logging into a buffer and a temp file; restore the root logger afterwards."""
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    stream = io.StringIO()
    settings = load_settings(
        log_file=str(tmp_path / "logs" / "chatmon.log"),
        llm_api_key=LLM_KEY,
        langfuse_public_key="pk-lf-public-123456",
        langfuse_secret_key=LANGFUSE_SECRET,
        metrics_token=METRICS_TOKEN,
    )
    configure_logging(settings, stream=stream)
    yield stream, settings.log_path, settings
    logging.captureWarnings(False)
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    for handler in saved_handlers:
        root.addHandler(handler)
    root.setLevel(saved_level)


def _lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_log_lines_are_json_with_request_ids(log_setup) -> None:
    stream, path, _ = log_setup
    with log_context(correlation_id="corr-1234", session_id="sess-5678"):
        logging.getLogger("chatmon.test").info("reply finished in %.1f s", 1.25)
    logging.getLogger("chatmon.test").info("outside any request")
    first, second = _lines(stream)[-2:]
    assert first["message"] == "reply finished in 1.2 s"
    assert (first["level"], first["logger"]) == ("INFO", "chatmon.test")
    assert (first["correlation_id"], first["session_id"]) == ("corr-1234", "sess-5678")
    assert first["timestamp"].endswith("+00:00")
    assert second["correlation_id"] is None and second["session_id"] is None
    file_lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert file_lines[-2]["correlation_id"] == "corr-1234"


def test_log_context_is_per_task_not_global(log_setup) -> None:
    stream, _, _ = log_setup
    seen: dict[str, str | None] = {}

    def other_thread() -> None:
        logging.getLogger("chatmon.test").info("from another thread")

    with log_context(correlation_id="only-here"):
        thread = threading.Thread(target=other_thread)
        thread.start()
        thread.join()
    for line in _lines(stream):
        seen[line["message"]] = line["correlation_id"]
    assert seen["from another thread"] is None


def test_file_handler_rotates_at_10_mb_keeping_5(log_setup) -> None:
    root = logging.getLogger()
    rotating = [h for h in root.handlers if isinstance(h, logging.handlers.RotatingFileHandler)]
    assert len(rotating) == 1
    assert (rotating[0].maxBytes, rotating[0].backupCount) == (LOG_FILE_MAX_BYTES, LOG_FILE_BACKUPS)
    assert LOG_FILE_MAX_BYTES == 10 * 1024 * 1024 and LOG_FILE_BACKUPS == 5


def test_litellm_chatter_is_quiet_by_default(log_setup) -> None:
    stream, _, _ = log_setup
    logging.getLogger("LiteLLM").info("POST Request Sent from LiteLLM: curl ...")
    logging.getLogger("httpx").info("HTTP Request: POST http://upstream/v1/chat/completions")
    logging.getLogger("LiteLLM").warning("provider returned 429")
    messages = [line["message"] for line in _lines(stream)]
    assert "provider returned 429" in messages
    assert not any("POST" in message for message in messages)


def test_secrets_are_masked_on_every_logging_path(log_setup) -> None:
    stream, path, _ = log_setup
    log = logging.getLogger("chatmon.test")
    webhook = "https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXXXXXX"
    log.info("calling provider with key %s", LLM_KEY)  # in args
    log.info(f"langfuse secret {LANGFUSE_SECRET}")  # noqa: G004 - the case under test: a secret in the message itself
    log.warning("scrape header Authorization: Bearer %s", METRICS_TOKEN)
    log.error("db at postgresql://chatmon:%s@db.internal/chatmon", PLAIN_PASSWORD)
    log.error("smtp login failed: password=%s", PLAIN_PASSWORD)
    log.info("posting alert to %s", webhook)
    log.info(
        "gemini GET https://generativelanguage.googleapis.com/v1/models?key=AIzaSyA1b2C3d4E5f6G7h8I9j0KlMnOpQrStUvW"
    )
    try:
        raise RuntimeError(f"provider said: Incorrect API key provided: {LLM_KEY}")
    except RuntimeError:
        log.exception("llm call failed")  # in a traceback
    logging.getLogger("LiteLLM").error("litellm.AuthenticationError: key=%s", LLM_KEY)  # library
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        logging.captureWarnings(True)
        warnings.warn(f"deprecated call with api_key={LLM_KEY}", UserWarning, stacklevel=1)
    worker = threading.Thread(target=lambda: log.info("thread saw %s", LANGFUSE_SECRET))
    worker.start()
    worker.join()

    for output in (stream.getvalue(), path.read_text()):
        assert output.count("\n") >= 10
        for secret in (
            LLM_KEY,
            LANGFUSE_SECRET,
            METRICS_TOKEN,
            PLAIN_PASSWORD,
            "XXXXXXXXXXXXXXXX",
            "AIzaSyA1b2C3d4E5f6G7h8I9j0KlMnOpQrStUvW",
            "4f9a8b7c6d5e",
        ):
            assert secret not in output, secret
        assert "llm call failed" in output and "RuntimeError" in output  # still useful


def test_a_huge_hostile_line_is_cut_before_masking(log_setup) -> None:
    """What a client sends can reach a log line (Reflex logs payloads it cannot handle):
    the line stays bounded, and a secret near the cut is not left half-visible."""
    stream, path, _ = log_setup
    hostile = "ab-" * 300_000  # ~900 KB of the near-miss that used to take seconds
    logging.getLogger("chatmon.test").warning(
        "client sent %s", hostile[: LOG_MESSAGE_MAX_CHARS - 16] + LLM_KEY + hostile
    )
    [line] = [line for line in _lines(stream) if line["message"].startswith("client sent")]
    assert len(line["message"]) < LOG_MESSAGE_MAX_CHARS + 40
    assert re.search(r"…\[truncated \d+ chars\]$", line["message"])
    for output in (stream.getvalue(), path.read_text()):
        assert LLM_KEY[:8] not in output and LLM_KEY[-8:] not in output


def test_a_huge_traceback_is_cut_before_masking(log_setup) -> None:
    stream, _, _ = log_setup
    try:
        raise ValueError("Failed to deserialize event data: " + "x:" * 500_000)
    except ValueError:
        logging.getLogger("chatmon.test").exception("event rejected")
    [line] = [line for line in _lines(stream) if line["message"] == "event rejected"]
    assert "ValueError: Failed to deserialize event data" in line["exception"]
    assert len(line["exception"]) < LOG_TRACEBACK_MAX_CHARS + 40
    assert "…[truncated" in line["exception"]


async def test_log_lines_during_a_request_carry_its_ids(log_setup, tmp_path: Path) -> None:
    from chatmon.services import events
    from chatmon.services.history import ModelMessage
    from chatmon.services.llm import LLMClient
    from chatmon.services.prompts import SystemPromptSource
    from chatmon.services.turn import TurnRequest, TurnService

    stream, _, _ = log_setup
    prompt = tmp_path / "prompt.txt"
    prompt.write_text("Be brief.")
    settings = load_settings()  # the offline demo model
    service = TurnService(
        settings=settings, client=LLMClient(settings), prompts=SystemPromptSource(prompt)
    )

    def listener(_call) -> None:
        logging.getLogger("chatmon.test").info("call published")

    events.on_call(listener)
    try:
        request = TurnRequest(
            session_id="sess-42",
            conversation_id="conv-1",
            history=[ModelMessage(role="user", content="hello there")],
            temperature=0.5,
        )
        async with service.reply(request) as reply:
            async for _ in reply:
                pass
    finally:
        events.off_call(listener)
    logging.getLogger("chatmon.test").info("after the request")
    lines = {line["message"]: line for line in _lines(stream)}
    assert lines["call published"]["correlation_id"] == request.correlation_id
    assert lines["call published"]["session_id"] == "sess-42"
    assert lines["after the request"]["correlation_id"] is None


def test_servers_own_handlers_are_replaced_or_masked(tmp_path: Path) -> None:
    """A plain root handler installed by the server before the app (Granian does) is
    replaced; a non-propagating logger's own handler gets the masking filter."""
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    server_out, access_out, app_out = io.StringIO(), io.StringIO(), io.StringIO()
    server_handler = logging.StreamHandler(server_out)
    root.addHandler(server_handler)
    access = logging.getLogger("test.server.access")
    access.propagate = False
    access_handler = logging.StreamHandler(access_out)
    access.addHandler(access_handler)
    try:
        configure_logging(
            load_settings(log_file=str(tmp_path / "x.log"), llm_api_key=LLM_KEY), stream=app_out
        )
        logging.getLogger("chatmon.test").warning("key %s", LLM_KEY)
        access.warning("GET /?api_key=%s 200", LLM_KEY)
    finally:
        access.removeHandler(access_handler)
        logging.captureWarnings(False)
        for handler in list(root.handlers):
            root.removeHandler(handler)
            handler.close()
        for handler in saved_handlers:
            root.addHandler(handler)
        root.setLevel(saved_level)
    assert server_out.getvalue() == ""  # the unmasked plain handler is gone
    assert "key ***" in app_out.getvalue()
    assert "GET /?api_key=***" in access_out.getvalue() and LLM_KEY not in access_out.getvalue()


def test_litellm_imported_after_logging_is_set_up_logs_through_ours(tmp_path: Path) -> None:
    """LiteLLM attaches a plain-text handler of its own when it is imported (lazily, after
    the app's logging is configured): its errors must still come out once, as masked JSON
    lines a log shipper can parse, not also as a second plain-text line on stderr."""
    import subprocess
    import sys

    script = f"""
import io, logging
from chatmon.logging_setup import configure_logging
from chatmon.services.litellm_import import litellm_module
from chatmon.settings import load_settings
stream = io.StringIO()
configure_logging(load_settings(log_file={str(tmp_path / "x.log")!r}, llm_api_key={LLM_KEY!r}),
                  stream=stream)
litellm_module()
logging.getLogger("LiteLLM").error("litellm.AuthenticationError: key=%s", {LLM_KEY!r})
print(stream.getvalue())
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    assert LLM_KEY not in done.stdout + done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert [line["logger"] for line in lines if "AuthenticationError" in line["message"]] == [
        "LiteLLM"
    ]
    assert "AuthenticationError" not in done.stderr
