"""Tests for the fake OpenAI-compatible upstream (real sockets, no mocks)."""

from __future__ import annotations

import asyncio
import json
import os
import selectors
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from chatmon.cli_fake_llm import FAKE_LLM_FAIL_MODES
from chatmon.devtools.fake_llm import FAIL_MODES, FakeLLMConfig, expected_reply
from chatmon.devtools.fake_llm_server import FakeLLMServer
from chatmon.devtools.procs import free_port

REPO_ROOT = Path(__file__).resolve().parents[3]
MESSAGES = [
    {"role": "system", "content": "You are a terse assistant."},
    {"role": "user", "content": "first question"},
    {"role": "assistant", "content": "first answer"},
    {"role": "user", "content": "how are you today"},
]
PROMPT_WORDS = 5 + 2 + 2 + 4
REPLY = "Echo: how are you today. lorem ipsum dolor sit amet consectetur adipiscing"


@pytest.fixture(scope="module")
def server() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as srv:
        yield srv


@pytest.fixture
def llm(server: FakeLLMServer) -> FakeLLMServer:
    """The shared server, reset to defaults with zeroed counters."""
    server.reset()
    return server


@pytest.fixture
def client(llm: FakeLLMServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=llm.url, timeout=5) as c:
        yield c


def _body(**extra: Any) -> dict[str, Any]:
    return {"model": "fake", "messages": MESSAGES, **extra}


def _stream_lines(client: httpx.Client, **extra: Any) -> list[str]:
    with client.stream("POST", "/chat/completions", json=_body(stream=True, **extra)) as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        return [line for line in resp.iter_lines() if line]


def _events(lines: list[str]) -> list[dict[str, Any]]:
    return [json.loads(line.removeprefix("data: ")) for line in lines if line != "data: [DONE]"]


def test_reply_helpers_are_deterministic() -> None:
    assert expected_reply("how are you today") == REPLY
    assert len(expected_reply("x", reply_words=3).split()) == 3
    long = " ".join(["w"] * 20)
    assert expected_reply(long, reply_words=5) == f"Echo: {long}."


def test_non_streaming_reply_and_usage(client: httpx.Client, llm: FakeLLMServer) -> None:
    resp = client.post("/chat/completions", json=_body(temperature=0.2))
    assert resp.status_code == 200
    data = resp.json()
    assert data["object"] == "chat.completion"
    assert data["model"] == "fake"
    choice = data["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": REPLY, "refusal": None}
    assert choice["finish_reason"] == "stop"
    assert data["usage"] == {
        "prompt_tokens": PROMPT_WORDS,
        "completion_tokens": 12,
        "total_tokens": PROMPT_WORDS + 12,
    }
    assert llm.hits == 1 and llm.successes == 1 and llm.failures == 0
    assert llm.requests[-1]["temperature"] == 0.2


def test_route_without_v1_prefix_and_models(llm: FakeLLMServer) -> None:
    base = llm.base_url
    assert httpx.post(f"{base}/chat/completions", json=_body()).status_code == 200
    models = httpx.get(f"{llm.url}/models").json()
    assert [m["id"] for m in models["data"]] == ["fake"]


def test_max_tokens_truncates_with_length_finish(client: httpx.Client) -> None:
    data = client.post("/chat/completions", json=_body(max_tokens=3)).json()
    assert data["choices"][0]["message"]["content"] == "Echo: how are "
    assert data["choices"][0]["finish_reason"] == "length"
    assert data["usage"]["completion_tokens"] == 3


def test_streaming_chunks_with_usage(client: httpx.Client) -> None:
    lines = _stream_lines(client, stream_options={"include_usage": True})
    assert lines[-1] == "data: [DONE]"
    events = _events(lines)
    assert all(e["object"] == "chat.completion.chunk" for e in events)
    content = [e["choices"][0]["delta"].get("content") for e in events if e["choices"]]
    pieces = [c for c in content if c]
    assert len(pieces) == 12
    assert "".join(pieces) == REPLY
    assert events[0]["choices"][0]["delta"]["role"] == "assistant"
    assert events[-2]["choices"][0]["finish_reason"] == "stop"
    usage_chunk = events[-1]
    assert usage_chunk["choices"] == []
    assert usage_chunk["usage"] == {
        "prompt_tokens": PROMPT_WORDS,
        "completion_tokens": 12,
        "total_tokens": PROMPT_WORDS + 12,
    }


def test_streaming_without_include_usage_has_no_usage(client: httpx.Client) -> None:
    events = _events(_stream_lines(client))
    assert all(e["choices"] for e in events)
    assert all("usage" not in e for e in events)


def test_latency_and_pacing(client: httpx.Client, llm: FakeLLMServer) -> None:
    llm.configure(latency=0.2, tokens_per_second=100, reply_words=5)
    start = time.monotonic()
    lines = _stream_lines(client)
    elapsed = time.monotonic() - start
    assert lines[-1] == "data: [DONE]"
    assert 0.2 + 4 / 100 <= elapsed < 2


@pytest.mark.parametrize(
    ("mode", "status", "code"),
    [
        ("429", 429, "rate_limit_exceeded"),
        ("500", 500, "server_error"),
        ("503", 503, "service_unavailable"),
        ("401", 401, "invalid_api_key"),
        ("400", 400, "invalid_request_error"),
        ("context_length", 400, "context_length_exceeded"),
    ],
)
def test_http_faults_look_like_openai(
    client: httpx.Client, llm: FakeLLMServer, mode: str, status: int, code: str
) -> None:
    llm.configure(fail_rate=1.0, fail_with=mode, retry_after=2)
    for stream in (False, True):
        resp = client.post("/chat/completions", json=_body(stream=stream))
        assert resp.status_code == status
        error = resp.json()["error"]
        assert set(error) >= {"message", "type", "code"}
        assert error["code"] == code
        assert isinstance(error["message"], str) and error["message"]
        if status in (429, 503):
            assert resp.headers["retry-after"] == "2"
        else:
            assert "retry-after" not in resp.headers
    if mode == "context_length":
        assert "maximum context length" in error["message"]
    assert llm.failures == 2 and llm.successes == 0


def test_429_without_retry_after_has_no_header(client: httpx.Client, llm: FakeLLMServer) -> None:
    llm.configure(fail_first=1, fail_with=429)  # ints are accepted
    resp = client.post("/chat/completions", json=_body())
    assert resp.status_code == 429
    assert "retry-after" not in resp.headers


def test_timeout_hangs_without_blocking_others(client: httpx.Client, llm: FakeLLMServer) -> None:
    llm.configure(fail_first=1, fail_with="timeout")
    outcome: dict[str, BaseException] = {}

    def hung_request() -> None:
        try:
            httpx.post(f"{llm.url}/chat/completions", json=_body(), timeout=0.5)
        except BaseException as exc:  # noqa: BLE001 - recorded for the assertion below
            outcome["exc"] = exc

    thread = threading.Thread(target=hung_request)
    thread.start()
    _wait_for(lambda: llm.hits == 1)
    start = time.monotonic()
    assert client.post("/chat/completions", json=_body()).status_code == 200
    assert time.monotonic() - start < 0.5
    thread.join(5)
    assert isinstance(outcome.get("exc"), httpx.ReadTimeout)


def test_timeout_times_out_streaming_client(client: httpx.Client, llm: FakeLLMServer) -> None:
    llm.configure(fail_first=1, fail_with="timeout")
    start = time.monotonic()
    with pytest.raises(httpx.TimeoutException):
        client.post("/chat/completions", json=_body(stream=True), timeout=0.3)
    assert time.monotonic() - start < 2


@pytest.mark.parametrize("stream", [False, True])
def test_drop_closes_connection_without_response(
    client: httpx.Client, llm: FakeLLMServer, stream: bool
) -> None:
    llm.configure(fail_first=1, fail_with="drop")
    with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
        client.post("/chat/completions", json=_body(stream=stream))
    assert client.post("/chat/completions", json=_body()).status_code == 200


def test_drop_mid_stream_cuts_after_some_chunks(client: httpx.Client, llm: FakeLLMServer) -> None:
    llm.configure(fail_first=1, fail_with="drop-mid")
    received: list[str] = []
    with (
        pytest.raises(httpx.TransportError),
        client.stream("POST", "/chat/completions", json=_body(stream=True)) as resp,
    ):
        assert resp.status_code == 200
        for line in resp.iter_lines():
            if line:
                received.append(line)
    assert received, "expected some chunks before the cut"
    assert "data: [DONE]" not in received
    pieces = [e["choices"][0]["delta"]["content"] for e in _events(received)]
    assert REPLY.startswith("".join(pieces))
    assert llm.failures == 1


def test_drop_mid_non_streaming_truncates_body(client: httpx.Client, llm: FakeLLMServer) -> None:
    llm.configure(fail_first=1, fail_with="drop-mid")
    with pytest.raises(httpx.RemoteProtocolError):
        client.post("/chat/completions", json=_body())


def test_fail_first_fails_exactly_n(client: httpx.Client, llm: FakeLLMServer) -> None:
    llm.configure(fail_first=2, fail_with="503")
    statuses = [client.post("/chat/completions", json=_body()).status_code for _ in range(4)]
    assert statuses == [503, 503, 200, 200]
    assert (llm.hits, llm.failures, llm.successes) == (4, 2, 2)
    assert llm.config.fail_first == 0


def test_fail_rate_extremes(client: httpx.Client, llm: FakeLLMServer) -> None:
    llm.configure(fail_rate=1.0, fail_with="500")
    assert {client.post("/chat/completions", json=_body()).status_code for _ in range(5)} == {500}
    llm.configure(fail_rate=0.0)
    assert {client.post("/chat/completions", json=_body()).status_code for _ in range(5)} == {200}


def test_control_plane(client: httpx.Client, llm: FakeLLMServer) -> None:
    control = f"{llm.base_url}/_control"
    state = httpx.get(control).json()
    assert state["counters"] == {"hits": 0, "failures": 0, "successes": 0}
    assert state["config"]["reply_words"] == 12

    updated = httpx.post(
        control, json={"reply_words": 3, "fail_first": 1, "fail_with": "429"}
    ).json()
    assert updated["config"]["reply_words"] == 3 and updated["config"]["fail_with"] == "429"
    assert llm.config.reply_words == 3
    assert client.post("/chat/completions", json=_body()).status_code == 429
    reply = client.post("/chat/completions", json=_body(temperature=0.7)).json()
    assert (
        reply["choices"][0]["message"]["content"] == "Echo: how are you today."
    )  # echo is never cut

    counters = httpx.get(control).json()["counters"]
    assert counters == {"hits": 2, "failures": 1, "successes": 1}
    logged = httpx.get(f"{llm.base_url}/_requests").json()
    assert [r.get("temperature") for r in logged] == [None, 0.7]
    assert logged[-1]["messages"][0] == MESSAGES[0]

    bad = httpx.post(control, json={"fail_rate": 3})
    assert bad.status_code == 400 and "fail_rate" in bad.json()["error"]["message"]
    assert httpx.post(control, json={"nope": 1}).status_code == 400
    assert llm.config.fail_rate == 0.0

    reset = httpx.post(control, json={"reset_counters": True}).json()
    assert reset["counters"] == {"hits": 0, "failures": 0, "successes": 0}
    assert httpx.get(f"{llm.base_url}/_requests").json() == []


def test_request_log_keeps_last_50(client: httpx.Client, llm: FakeLLMServer) -> None:
    for i in range(55):
        client.post("/chat/completions", json=_body(seed=i))
    seeds = [r["seed"] for r in llm.requests]
    assert seeds == list(range(5, 55))
    assert llm.hits == 55


def test_invalid_body_is_openai_400(client: httpx.Client, llm: FakeLLMServer) -> None:
    resp = client.post(
        "/chat/completions", content=b"not json", headers={"content-type": "application/json"}
    )
    assert resp.status_code == 400
    assert resp.json()["error"]["type"] == "invalid_request_error"
    assert llm.hits == 1 and llm.failures == 1


def test_config_validation() -> None:
    with pytest.raises(ValueError):
        FakeLLMConfig(fail_with="418")
    with pytest.raises(ValueError):
        FakeLLMConfig(reply_words=0)
    config = FakeLLMConfig()
    with pytest.raises(ValueError):
        config.update(latency=-1, reply_words=3)
    assert config.reply_words == 12  # all-or-nothing


def test_litellm_streaming_against_fake(llm: FakeLLMServer) -> None:
    os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    import litellm

    async def run() -> tuple[str, Any]:
        response = await litellm.acompletion(
            model="openai/fake",
            api_base=llm.url,
            api_key="sk-test",
            messages=MESSAGES,
            stream=True,
            stream_options={"include_usage": True},
            max_retries=0,
            timeout=5,
        )
        text, usage = "", None
        async for chunk in response:
            if chunk.choices and chunk.choices[0].delta.content:
                text += chunk.choices[0].delta.content
            usage = getattr(chunk, "usage", None) or usage
        return text, usage

    text, usage = asyncio.run(run())
    assert text == REPLY
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens) == (PROMPT_WORDS, 12)
    assert usage.total_tokens == PROMPT_WORDS + 12
    assert llm.hits == 1
    assert llm.requests[-1]["stream_options"] == {"include_usage": True}


def test_cli_fail_modes_match_module() -> None:
    assert tuple(FAKE_LLM_FAIL_MODES) == FAIL_MODES


def test_cli_runs_fake_llm_subprocess() -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "chatmon", "fake-llm", "--port", str(port), "--reply-words", "4"],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = _read_line(proc, timeout=15)
        assert line.strip() == f"fake-llm listening on http://127.0.0.1:{port}/v1"
        resp = httpx.post(
            f"http://127.0.0.1:{port}/v1/chat/completions",
            json={"model": "fake", "messages": [{"role": "user", "content": "ping"}]},
            timeout=5,
        )
        assert resp.status_code == 200
        assert resp.json()["choices"][0]["message"]["content"] == "Echo: ping. lorem ipsum"
    finally:
        proc.terminate()
        _, stderr = proc.communicate(timeout=10)
    assert "Traceback" not in stderr


def _wait_for(predicate: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def _read_line(proc: subprocess.Popen[str], timeout: float) -> str:
    assert proc.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            raise AssertionError("fake-llm CLI printed nothing in time")
    return proc.stdout.readline()
