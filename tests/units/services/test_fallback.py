"""LLM_FALLBACK_MODELS: when the primary fails before any text, the next model answers.

Two fake upstreams over real HTTP, one per model, so every hit is counted where it
landed: the one-retry-layer rule holds across models (primary 1 + retries, then
fallback 1 + retries, never more), each model has its own breaker, and the request
is recorded once, under the model that served it, flagged as a fallback.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from chatmon.devtools.fake_llm import expected_reply
from chatmon.devtools.fake_llm_server import FakeLLMServer
from chatmon.models import LLMRequest
from chatmon.services import events
from chatmon.services.breaker import CircuitBreaker
from chatmon.services.errors import ErrorCategory
from chatmon.services.events import LLMCall
from chatmon.services.history import ModelMessage
from chatmon.services.llm import LLMClient, warm_up
from chatmon.services.llm_credentials import fallback_credential_warnings
from chatmon.services.prompts import SystemPromptSource
from chatmon.services.recorder import Recorder
from chatmon.services.turn import TurnRequest, TurnResult, TurnService
from chatmon.settings import Settings, load_settings

FALLBACK_KEY = "sk-fallback-secret-4f9a2c71"


@pytest.fixture(scope="module")
def primary() -> Iterator[FakeLLMServer]:
    warm_up()  # as the app does at startup: the first call's imports are not the test's
    with FakeLLMServer() as server:
        yield server


@pytest.fixture(scope="module")
def backup() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as server:
        yield server


@pytest.fixture(autouse=True)
def _reset(primary: FakeLLMServer, backup: FakeLLMServer) -> None:
    primary.reset()
    backup.reset()


@pytest.fixture
def calls() -> Iterator[list[LLMCall]]:
    seen: list[LLMCall] = []
    events.on_call(seen.append)
    yield seen
    events.off_call(seen.append)


class Models:
    """A primary and a fallback model (fresh names: breakers and series are per model)."""

    def __init__(self) -> None:
        suffix = uuid.uuid4().hex[:8]
        self.primary = f"openai/main-{suffix}"
        self.fallback = f"openai/backup-{suffix}"


def settings_for(
    primary: FakeLLMServer, backup: FakeLLMServer, models: Models, **overrides: object
) -> Settings:
    options: dict[str, object] = {
        "llm_model": models.primary,
        "llm_api_base": primary.url,
        "llm_api_key": "sk-primary-unit",
        "llm_fallback_models": models.fallback,
        "llm_fallback_1_api_base": backup.url,
        "llm_fallback_1_api_key": FALLBACK_KEY,
        "request_timeout": 15,  # a ceiling for a loaded machine; tests of timeouts set their own
        "llm_max_retries": 2,
    }
    return load_settings(**(options | overrides))


def breaker_of(model: str, threshold: int = 5) -> CircuitBreaker:
    return CircuitBreaker(model, failure_threshold=threshold, reset_seconds=300)


def service_for(
    settings: Settings,
    tmp_path: Path,
    *,
    primary_breaker: CircuitBreaker | None = None,
    fallback_breaker: CircuitBreaker | None = None,
) -> TurnService:
    prompt_file = tmp_path / "prompt.txt"
    prompt_file.write_text("be brief")
    [endpoint] = settings.fallback_models
    return TurnService(
        settings=settings,
        client=LLMClient(settings, breaker=primary_breaker or breaker_of(settings.llm_model)),
        prompts=SystemPromptSource(prompt_file),
        fallbacks=[
            LLMClient(
                settings, breaker=fallback_breaker or breaker_of(endpoint.model), endpoint=endpoint
            )
        ],
    )


def request(text: str = "hello there") -> TurnRequest:
    return TurnRequest(
        session_id="browser-1",
        conversation_id="conv-1",
        history=[ModelMessage(role="user", content=text)],
        temperature=0.2,
    )


async def run(service: TurnService, req: TurnRequest | None = None) -> TurnResult:
    async with service.reply(req or request()) as reply:
        async for _text in reply:
            pass
    return reply.result


def fallback_used(model: str, reason: str) -> float:
    value = REGISTRY.get_sample_value(
        "chatmon_llm_fallback_used_total", {"model": model, "reason": reason}
    )
    return value or 0.0


async def test_failing_primary_is_answered_by_the_fallback_after_its_retries(
    primary: FakeLLMServer, backup: FakeLLMServer, tmp_path: Path, calls: list[LLMCall]
) -> None:
    models = Models()
    primary.configure(fail_with="503", fail_rate=1.0)
    settings = settings_for(primary, backup, models)
    result = await run(service_for(settings, tmp_path))
    assert result.status == "ok"
    assert result.text == expected_reply("hello there")
    assert (primary.hits, backup.hits) == (1 + 2, 1)  # primary and its 2 retries, then fallback
    assert models.fallback in result.notice and models.primary in result.notice
    [call] = calls
    assert (call.model, call.fallback, call.status) == (models.fallback, True, "ok")
    assert call.retries == 0  # the serving model's; the primary's are in its own series
    assert REGISTRY.get_sample_value("chatmon_llm_retries_total", {"model": models.primary}) == 2
    assert fallback_used(models.fallback, "server_error") == 1


async def test_hits_never_exceed_one_plus_retries_per_model_when_all_fail(
    primary: FakeLLMServer, backup: FakeLLMServer, tmp_path: Path, calls: list[LLMCall]
) -> None:
    models = Models()
    primary.configure(fail_with="500", fail_rate=1.0)
    backup.configure(fail_with="503", fail_rate=1.0)
    result = await run(service_for(settings_for(primary, backup, models), tmp_path))
    assert (primary.hits, backup.hits) == (3, 3)
    assert result.status == "error" and result.category is ErrorCategory.SERVER_ERROR
    assert "not answering" in result.notice
    [call] = calls  # still exactly one recorded request
    assert (call.model, call.fallback, call.status) == (models.fallback, True, "error")


async def test_open_primary_breaker_goes_straight_to_the_fallback(
    primary: FakeLLMServer, backup: FakeLLMServer, tmp_path: Path, calls: list[LLMCall]
) -> None:
    models = Models()
    tripped = breaker_of(models.primary, threshold=1)
    tripped.record_failure(tripped.acquire(), ErrorCategory.SERVER_ERROR)
    service = service_for(settings_for(primary, backup, models), tmp_path, primary_breaker=tripped)
    result = await run(service)
    assert result.status == "ok" and result.fallback
    assert (primary.hits, backup.hits) == (0, 1)
    assert calls[0].model == models.fallback
    assert fallback_used(models.fallback, "circuit_open") == 1


async def test_each_model_has_its_own_breaker(
    primary: FakeLLMServer, backup: FakeLLMServer, tmp_path: Path
) -> None:
    models = Models()
    primary.configure(fail_with="503", fail_rate=1.0)
    main, spare = breaker_of(models.primary, threshold=1), breaker_of(models.fallback, threshold=1)
    settings = settings_for(primary, backup, models, llm_max_retries=0)
    service = service_for(settings, tmp_path, primary_breaker=main, fallback_breaker=spare)
    assert (await run(service)).status == "ok"
    assert (main.state.value, spare.state.value) == ("open", "closed")
    assert (await run(service)).status == "ok"
    assert (primary.hits, backup.hits) == (1, 2)  # the open primary is not asked again


async def test_open_fallback_breaker_means_no_call_to_the_fallback(
    primary: FakeLLMServer, backup: FakeLLMServer, tmp_path: Path
) -> None:
    models = Models()
    primary.configure(fail_with="503", fail_rate=1.0)
    spare = breaker_of(models.fallback, threshold=1)
    spare.record_failure(spare.acquire(), ErrorCategory.TIMEOUT)
    settings = settings_for(primary, backup, models, llm_max_retries=0)
    result = await run(service_for(settings, tmp_path, fallback_breaker=spare))
    assert result.category is ErrorCategory.CIRCUIT_OPEN
    assert (primary.hits, backup.hits) == (1, 0)


@pytest.mark.parametrize(
    ("fail_with", "category"),
    [("400", ErrorCategory.BAD_REQUEST), ("context_length", ErrorCategory.CONTEXT_LENGTH)],
)
async def test_a_request_the_provider_refuses_does_not_fall_back(
    primary: FakeLLMServer,
    backup: FakeLLMServer,
    tmp_path: Path,
    calls: list[LLMCall],
    fail_with: str,
    category: ErrorCategory,
) -> None:
    models = Models()
    primary.configure(fail_with=fail_with, fail_rate=1.0)
    result = await run(service_for(settings_for(primary, backup, models), tmp_path))
    assert result.category is category
    assert (primary.hits, backup.hits) == (1, 0)
    assert (calls[0].model, calls[0].fallback) == (models.primary, False)
    assert result.notice == ""


async def test_a_failure_after_the_first_token_does_not_fall_back(
    primary: FakeLLMServer, backup: FakeLLMServer, tmp_path: Path
) -> None:
    models = Models()
    primary.configure(fail_with="drop-mid", fail_rate=1.0)
    result = await run(service_for(settings_for(primary, backup, models), tmp_path))
    assert result.status == "error" and result.text  # what arrived is kept, never repeated
    assert (primary.hits, backup.hits) == (1, 0)
    assert not result.fallback


async def test_healthy_primary_never_touches_the_fallback(
    primary: FakeLLMServer, backup: FakeLLMServer, tmp_path: Path, calls: list[LLMCall]
) -> None:
    models = Models()
    result = await run(service_for(settings_for(primary, backup, models), tmp_path))
    assert result.status == "ok" and result.notice == ""
    assert (primary.hits, backup.hits) == (1, 0)
    assert (calls[0].model, calls[0].fallback) == (models.primary, False)


async def test_fallback_row_records_the_serving_model_and_the_flag(
    primary: FakeLLMServer, backup: FakeLLMServer, tmp_path: Path, engine: Engine
) -> None:
    models = Models()
    recorder = Recorder(engine=lambda: engine, price_known=lambda _model: True)
    events.on_call(recorder.submit_call)
    try:
        service = service_for(settings_for(primary, backup, models, llm_max_retries=0), tmp_path)
        primary.configure(fail_with="429", fail_rate=1.0)
        served = await run(service)
        primary.configure(fail_rate=0.0)
        normal = await run(service)
        assert recorder.flush(timeout=10)
    finally:
        events.off_call(recorder.submit_call)
        recorder.close()
    with Session(engine) as session:
        rows = {
            row.correlation_id: (row.model, row.status, row.fallback)
            for row in session.exec(select(LLMRequest))
        }
    assert rows[served.correlation_id] == (models.fallback, "ok", True)
    assert rows[normal.correlation_id] == (models.primary, "ok", False)


async def test_the_fallback_key_is_never_logged(
    primary: FakeLLMServer,
    backup: FakeLLMServer,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    models = Models()
    primary.configure(fail_with="503", fail_rate=1.0)
    settings = settings_for(primary, backup, models, llm_max_retries=0)
    with caplog.at_level(logging.DEBUG):
        result = await run(service_for(settings, tmp_path))
    assert result.fallback
    assert "falling back to" in caplog.text
    assert FALLBACK_KEY not in caplog.text
    assert FALLBACK_KEY not in repr(settings) and FALLBACK_KEY not in str(settings.fallback_models)


def test_startup_names_a_fallback_without_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """A fallback never borrows LLM_API_KEY (another provider's): without its own key and
    without the provider's variable, startup says so, naming variables, never values."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    settings = load_settings(
        llm_model="openai/main-model",
        llm_api_key="sk-primary-must-not-leak-55",
        llm_fallback_models="openai/gpt-4o-mini,openai/gpt-4.1-nano",
        llm_fallback_2_api_key=FALLBACK_KEY,
    )
    [warning] = fallback_credential_warnings(settings)
    assert "openai/gpt-4o-mini" in warning and "LLM_FALLBACK_1_API_KEY" in warning
    assert "OPENAI_API_KEY" in warning
    assert "sk-primary-must-not-leak-55" not in warning and FALLBACK_KEY not in warning


async def test_a_fallback_without_credentials_is_not_called(
    primary: FakeLLMServer, backup: FakeLLMServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    models = Models()
    primary.configure(fail_with="503", fail_rate=1.0)
    settings = settings_for(primary, backup, models, llm_max_retries=0, llm_fallback_1_api_key=None)
    result = await run(service_for(settings, tmp_path))
    assert result.category is ErrorCategory.AUTH  # known up front: no call to the fallback
    assert (primary.hits, backup.hits) == (1, 0)


def test_the_app_builds_one_client_and_breaker_per_fallback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from chatmon import deps
    from chatmon.services import breaker

    models = Models()
    second = models.fallback + "-2"
    settings = load_settings(
        llm_model=models.primary,
        llm_api_key="sk-primary-unit",
        llm_fallback_models=f"{models.fallback},{second}",
        llm_fallback_1_api_base="http://127.0.0.1:9/v1",
        llm_fallback_1_api_key=FALLBACK_KEY,
    )
    monkeypatch.setattr("chatmon.deps.get_settings", lambda: settings)
    deps.fallback_model_clients.cache_clear()
    try:
        first_client, second_client = deps.fallback_model_clients()
    finally:
        deps.fallback_model_clients.cache_clear()
    assert (first_client.model, second_client.model) == (models.fallback, second)
    assert first_client.breaker is not second_client.breaker
    assert first_client.breaker is breaker.for_model(
        models.fallback, failure_threshold=1, reset_seconds=1
    )  # the process-wide one, which /health and the gauge read
    assert {models.fallback, second} <= set(breaker.snapshot())
