"""Prices from LiteLLM's real bundled map: right, or loudly unknown, never a silent $0."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from chatmon.devtools.fake_llm_server import FakeLLMServer
from chatmon.services import pricing
from chatmon.services.llm import LLMClient, warm_up
from chatmon.services.stream_stats import StreamStats
from chatmon.settings import load_settings

MESSAGES = [{"role": "user", "content": "one two three four five six seven eight nine ten"}]


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeLLMServer]:
    warm_up()
    with FakeLLMServer() as server:
        yield server


@pytest.fixture(autouse=True)
def _reset(upstream: FakeLLMServer) -> None:
    upstream.reset()


async def _stream_cost(upstream: FakeLLMServer, **overrides: object) -> StreamStats:
    settings = load_settings(
        llm_api_base=upstream.url, llm_api_key="sk-unit-test", llm_max_retries=0, **overrides
    )
    stats = StreamStats()
    chunks = LLMClient(settings).stream(messages=MESSAGES, temperature=0.0, stats=stats)
    assert "".join([t async for t in chunks])
    return stats


def test_priced_model_uses_the_map() -> None:
    price = pricing.price_of(load_settings(llm_model="openai/gpt-4o-mini"))
    assert (price.source, price.input_per_1m, price.output_per_1m) == ("map", 0.15, 0.6)
    assert price.warning() == ""


def test_zero_zero_map_entry_is_unknown_not_free() -> None:
    price = pricing.price_of(load_settings(llm_model="openai/gemini-3-flash"))
    assert not price.known
    assert "$0" in price.reason
    assert "cost alerts cannot fire for model openai/gemini-3-flash" in price.warning()
    assert "LLM_PRICE_INPUT_PER_1M" in price.warning()


def test_unmapped_model_is_unknown() -> None:
    assert pricing.price_of(load_settings(llm_model="openai/no-such-model-xyz")).source == (
        "unknown"
    )


def test_explicit_zero_prices_are_free() -> None:
    settings = load_settings(
        llm_model="ollama/llama3", llm_price_input_per_1m=0, llm_price_output_per_1m=0
    )
    assert pricing.price_of(settings).source == "custom"
    assert pricing.cost_usd(settings, input_tokens=1000, output_tokens=1000) == 0.0


def test_custom_prices_do_not_apply_to_another_model() -> None:
    settings = load_settings(
        llm_model="openai/gemini-3-flash", llm_price_input_per_1m=1, llm_price_output_per_1m=2
    )
    assert pricing.price_of(settings, "openai/gemini-3-flash").source == "custom"
    assert pricing.price_of(settings, "ollama/llama3").source == "unknown"


def test_demo_model_is_free() -> None:
    assert pricing.cost_usd(load_settings(), input_tokens=10, output_tokens=10) == 0.0


async def test_zero_zero_model_streams_with_tokens_but_no_cost(upstream: FakeLLMServer) -> None:
    stats = await _stream_cost(upstream, llm_model="openai/gemini-3-flash")
    assert stats.input_tokens == 10 and stats.output_tokens
    assert stats.cost_usd is None


async def test_custom_price_of_gemini_3_flash_through_the_stream(upstream: FakeLLMServer) -> None:
    stats = await _stream_cost(
        upstream,
        llm_model="openai/gemini-3-flash",
        llm_price_input_per_1m=0.075,
        llm_price_output_per_1m=0.30,
    )
    expected = (stats.input_tokens * 0.075 + stats.output_tokens * 0.30) / 1e6
    assert stats.cost_usd == pytest.approx(expected)


async def test_cached_input_tokens_cost_the_cache_price(upstream: FakeLLMServer) -> None:
    upstream.configure(cached_tokens=8)
    stats = await _stream_cost(upstream, llm_model="openai/gpt-4o-mini")
    # gpt-4o-mini: $0.15/1M input, $0.075/1M cached input, $0.60/1M output
    expected = (2 * 0.15 + 8 * 0.075 + stats.output_tokens * 0.60) / 1e6
    assert stats.cost_usd == pytest.approx(expected)
    uncached = (10 * 0.15 + stats.output_tokens * 0.60) / 1e6
    assert stats.cost_usd < uncached


def test_prices_must_come_in_pairs() -> None:
    from chatmon.settings import SettingsError

    with pytest.raises(SettingsError, match="LLM_PRICE_OUTPUT_PER_1M"):
        load_settings(llm_price_input_per_1m=0)


def test_recorder_flags_a_failed_request_of_a_zero_priced_model() -> None:
    from datetime import UTC, datetime

    from chatmon.services.events import LLMCall
    from chatmon.services.request_log import row_values

    call = LLMCall(
        correlation_id="c-zero",
        session_id="s",
        conversation_id="v",
        model="openai/gemini-3-flash",
        provider="openai",
        started_at=datetime.now(UTC),
        first_token_seconds=None,
        total_seconds=0.2,
        input_tokens=None,
        output_tokens=None,
        cost_usd=None,
        status="error",
        error_category="server_error",
        retries=0,
        temperature=0.5,
        prompt_version="p",
    )
    row = row_values(call, price_known=pricing.price_known)
    assert row["priced"] is False and row["cost_usd"] is None


def test_monitor_warning_names_the_model_and_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    from chatmon.presenters import dashboard as dashboard_view

    settings = load_settings(llm_model="openai/gemini-3-flash")
    monkeypatch.setattr(dashboard_view, "get_settings", lambda: settings)
    warning = dashboard_view.price_warning(3)
    assert warning.startswith("Cost alerts cannot fire for model openai/gemini-3-flash")
    assert "3 requests in this window have no known price" in warning
    assert "LLM_PRICE_INPUT_PER_1M" in warning


def test_monitor_shows_no_warning_when_everything_is_priced(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from chatmon.presenters import dashboard as dashboard_view

    settings = load_settings(llm_model="openai/gpt-4o-mini")
    monkeypatch.setattr(dashboard_view, "get_settings", lambda: settings)
    assert dashboard_view.price_warning(0) == ""
