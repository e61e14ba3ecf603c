"""What happened, told to whoever listens: one event per LLM request, one per rating,
one per implicit signal that only the chat can see (a reply regenerated).

The chat publishes; the recorder, Prometheus metrics and tracing subscribe. Listeners
run on the publisher's thread and must only enqueue or update in-memory state: they
never block, and one failing listener never stops the others or the chat.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

log = logging.getLogger(__name__)
Event = TypeVar("Event")


@dataclass(frozen=True)
class LLMCall:
    """One user request to the model, as it ended (ok, error or cancelled)."""

    correlation_id: str
    session_id: str  # the browser that asked (never a metrics label)
    conversation_id: str
    model: str
    provider: str | None
    started_at: datetime  # UTC
    first_token_seconds: float | None
    total_seconds: float
    input_tokens: int | None
    output_tokens: int | None
    cost_usd: float | None  # None: the model has no known price
    status: str  # a CallStatus value (chatmon.observability.call_status)
    error_category: str | None
    retries: int
    temperature: float
    prompt_version: str
    input_text: str = ""  # the user's message (redact before storing or tracing)
    output_text: str = ""  # the reply as streamed
    synthetic: bool = False  # the probe's request: recorded, but in no user figure or series
    fallback: bool = False  # served by (or last tried on) a model of LLM_FALLBACK_MODELS


@dataclass(frozen=True)
class Feedback:
    """A thumbs up (+1), down (-1) or cleared (0) rating of one reply."""

    correlation_id: str
    session_id: str
    rating: int
    # chatmon.services.feedback.REASONS, fixed order; the comment is the user's raw
    # text (a listener that sends it anywhere redacts it first)
    reasons: tuple[str, ...] = ()
    comment: str = ""
    # False: the same rating again, now with reasons or a comment (counted once)
    rating_changed: bool = True


@dataclass(frozen=True)
class ImplicitSignal:
    """An implicit sign of dissatisfaction with one reply, seen by the chat (issue #15 §2).

    ``signal`` is one of ``chatmon.services.implicit_signals.SIGNALS``. Signals the
    request log can see by itself (stopped, rephrased, abandoned) are found there.
    """

    correlation_id: str
    signal: str


CallListener = Callable[[LLMCall], None]
FeedbackListener = Callable[[Feedback], None]
SignalListener = Callable[[ImplicitSignal], None]

_call_listeners: list[CallListener] = []
_feedback_listeners: list[FeedbackListener] = []
_signal_listeners: list[SignalListener] = []


def on_call(listener: CallListener) -> CallListener:
    """Subscribe to finished LLM requests (usable as a decorator)."""
    if listener not in _call_listeners:
        _call_listeners.append(listener)
    return listener


def on_feedback(listener: FeedbackListener) -> FeedbackListener:
    """Subscribe to ratings (usable as a decorator)."""
    if listener not in _feedback_listeners:
        _feedback_listeners.append(listener)
    return listener


def on_signal(listener: SignalListener) -> SignalListener:
    """Subscribe to implicit signals (usable as a decorator)."""
    if listener not in _signal_listeners:
        _signal_listeners.append(listener)
    return listener


def off_signal(listener: SignalListener) -> None:
    """Unsubscribe a signal listener (no error when it was not subscribed)."""
    if listener in _signal_listeners:
        _signal_listeners.remove(listener)


def off_call(listener: CallListener) -> None:
    """Unsubscribe a call listener (no error when it was not subscribed)."""
    if listener in _call_listeners:
        _call_listeners.remove(listener)


def off_feedback(listener: FeedbackListener) -> None:
    """Unsubscribe a feedback listener (no error when it was not subscribed)."""
    if listener in _feedback_listeners:
        _feedback_listeners.remove(listener)


def publish_call(call: LLMCall) -> None:
    """Tell every call listener; failures are logged, never raised."""
    _notify(_call_listeners, call)


def publish_feedback(feedback: Feedback) -> None:
    """Tell every feedback listener; failures are logged, never raised."""
    _notify(_feedback_listeners, feedback)


def publish_signal(signal: ImplicitSignal) -> None:
    """Tell every signal listener; failures are logged, never raised."""
    _notify(_signal_listeners, signal)


def _notify(listeners: list[Callable[[Event], None]], event: Event) -> None:
    for listener in list(listeners):
        try:
            listener(event)
        except Exception:
            log.exception("event listener %r failed", getattr(listener, "__name__", listener))
