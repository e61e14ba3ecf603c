"""The system prompt is re-read when its file changes, without a restart."""

from __future__ import annotations

import os
from pathlib import Path

from chatmon.services.prompts import DEFAULT_SYSTEM_PROMPT, SystemPromptSource


def _write(path: Path, text: str, mtime_ns: int) -> None:
    path.write_text(text, encoding="utf-8")
    os.utime(path, ns=(mtime_ns, mtime_ns))


def test_prompt_reloads_when_file_changes(tmp_path: Path) -> None:
    path = tmp_path / "prompt.txt"
    _write(path, "You are a pirate.", 1_000_000_000)
    source = SystemPromptSource(path)
    first = source.current()
    assert first.text == "You are a pirate."
    _write(path, "You are a poet.", 2_000_000_000)
    second = source.current()
    assert second.text == "You are a poet."
    assert second.version != first.version


def test_prompt_version_is_stable_for_same_text(tmp_path: Path) -> None:
    path = tmp_path / "prompt.txt"
    _write(path, "Be brief.", 1_000_000_000)
    version = SystemPromptSource(path).current().version
    _write(path, "Be brief.", 3_000_000_000)
    assert SystemPromptSource(path).current().version == version


def test_prompt_missing_file_keeps_last_good_prompt(tmp_path: Path) -> None:
    path = tmp_path / "prompt.txt"
    source = SystemPromptSource(path)
    assert source.current().text == DEFAULT_SYSTEM_PROMPT
    _write(path, "Answer in French.", 1_000_000_000)
    assert source.current().text == "Answer in French."
    path.unlink()
    assert source.current().text == "Answer in French."


def test_prompt_empty_file_falls_back_to_default(tmp_path: Path) -> None:
    path = tmp_path / "prompt.txt"
    _write(path, "   \n", 1_000_000_000)
    assert SystemPromptSource(path).current().text == DEFAULT_SYSTEM_PROMPT
