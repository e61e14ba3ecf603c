"""Process-wide service objects, created on first use from the settings."""

from __future__ import annotations

import functools

from chatmon.services.llm import LLMClient
from chatmon.services.prompts import SystemPromptSource
from chatmon.settings import get_settings


@functools.cache
def llm_client() -> LLMClient:
    """The one LLM client of this process."""
    return LLMClient(get_settings())


@functools.cache
def system_prompt_source() -> SystemPromptSource:
    """The hot-reloaded system prompt of this process."""
    return SystemPromptSource(get_settings().system_prompt_path)
