"""The offline demo model streams a labelled, deterministic reply."""

from __future__ import annotations

from chatmon.services.llm import LLMClient
from chatmon.services.stream_stats import StreamStats
from chatmon.settings import load_settings


async def test_demo_model_streams_reply_in_many_chunks() -> None:
    client = LLMClient(load_settings(llm_model="demo"))
    stats = StreamStats()
    chunks = [
        chunk
        async for chunk in client.stream(
            messages=[{"role": "system", "content": "s"}, {"role": "user", "content": "hi there"}],
            temperature=0.7,
            stats=stats,
        )
    ]
    text = "".join(chunks)
    assert len(chunks) > 5
    assert "demo model" in text
    assert "hi there" in text
    assert "LLM_MODEL" in text  # tells the user how to configure a real model
    assert stats.first_token_seconds is not None
    assert stats.output_tokens == len(chunks)
    assert stats.cost_usd == 0.0
