"""Whether this worker has finished starting (its LiteLLM warm-up), for the health checks.

Per process: each worker warms up on its own (``chatmon.tasks.warm_up.warm_up_llm``), and a
balancer asking ``/health/ready`` reaches one worker at a time.
"""

from __future__ import annotations

import threading

_warmed = threading.Event()


def mark_warmed() -> None:
    """The warm-up is over (done, or failed and left to the first request)."""
    _warmed.set()


def warmed() -> bool:
    """Whether :func:`mark_warmed` was called in this process."""
    return _warmed.is_set()


def reset() -> None:
    """Back to "starting" (tests)."""
    _warmed.clear()
