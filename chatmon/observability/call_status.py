"""How an LLM request ended: :class:`CallStatus`, one word per outcome.

The values are what ``llm_request.status`` (and the rollups) store, and what the
``CallRecorded`` event carries; a ``CallStatus`` compares equal to its string, so rows
read from the database compare with it directly.
"""

from __future__ import annotations

from enum import StrEnum


class CallStatus(StrEnum):
    """The outcome of one LLM request."""

    OK = "ok"  # the reply arrived in full
    ERROR = "error"  # the provider or chatmon failed it (``error_category`` says how)
    CANCELLED = "cancelled"  # the person stopped it
    INTERRUPTED = "interrupted"  # its worker died while it streamed (duration unknown)


# Statuses that count as failures: a provider or chatmon error, and a reply whose worker
# died while it streamed.
ERROR_STATUSES: tuple[CallStatus, ...] = (CallStatus.ERROR, CallStatus.INTERRUPTED)
