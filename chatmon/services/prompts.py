"""The system prompt, re-read from its file whenever the file changes."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

DEFAULT_SYSTEM_PROMPT = "You are a helpful, concise assistant."


@dataclass(frozen=True)
class SystemPrompt:
    """The prompt text and a short hash that identifies this version of it."""

    text: str
    version: str


def _prompt_of(text: str) -> SystemPrompt:
    return SystemPrompt(text=text, version=hashlib.sha256(text.encode()).hexdigest()[:12])


class SystemPromptSource:
    """Serves the current system prompt, re-reading the file when it changes.

    A ``stat`` per request is cheap; the file is only read when its modification
    time or size differ from the last read. A missing or unreadable file falls back
    to the last good prompt (or the built-in default) so the chat keeps working.

    ``listener``, if given, is told the prompt each :meth:`current` returns (the chat's
    source passes :meth:`PromptVersionBook.note`, which keeps the ``prompt_version``
    table); it must be cheap and must not raise.
    """

    def __init__(
        self, path: Path, *, listener: Callable[[SystemPrompt], None] | None = None
    ) -> None:
        self._path = path
        self._listener = listener
        self._signature: tuple[int, int] | None = None
        self._prompt = _prompt_of(DEFAULT_SYSTEM_PROMPT)
        self._lock = threading.Lock()

    def current(self) -> SystemPrompt:
        """The prompt as the file holds it now."""
        prompt = self._read()
        if self._listener is not None:
            self._listener(prompt)
        return prompt

    def _read(self) -> SystemPrompt:
        try:
            stat = self._path.stat()
        except OSError:
            return self._prompt
        signature = (stat.st_mtime_ns, stat.st_size)
        if signature != self._signature:
            with self._lock:
                self._reload(signature)
        return self._prompt

    def _reload(self, signature: tuple[int, int]) -> None:
        try:
            text = self._path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError):
            return
        self._prompt = _prompt_of(text or DEFAULT_SYSTEM_PROMPT)
        self._signature = signature
