"""The monitor's request table and one request's detail, as display strings."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlmodel import Session

from chatmon.models import LLMRequest
from chatmon.presenters.format import SIGNAL_LABELS, count, seconds, usd, utc
from chatmon.services import implicit_signals, stats, tracing
from chatmon.services.errors import ErrorCategory, human_message


@dataclass
class RequestRow:
    """One line of the request table."""

    correlation_id: str = ""
    started_at: str = ""
    model: str = ""
    status: str = ""
    error_category: str = ""
    latency: str = ""
    ttft: str = ""
    tokens_input: str = ""
    tokens_output: str = ""
    cost: str = ""
    feedback: str = ""


@dataclass
class DetailField:
    """One labelled value of the request detail."""

    label: str = ""
    value: str = ""


@dataclass
class RequestDetail:
    """Everything recorded about one request."""

    correlation_id: str = ""
    fields: list[DetailField] = field(default_factory=list)
    conversation_id: str = ""
    error_message: str = ""
    trace_url: str = ""  # the request's trace in Langfuse, when tracing and LANGFUSE_HOST are set


def _feedback(value: int | None) -> str:
    return {1: "👍", -1: "👎"}.get(value or 0, "")


def request_row(row: LLMRequest) -> RequestRow:
    """A request as a table line."""
    cost = (
        usd(row.cost_usd) if row.cost_usd is not None else ("no price" if not row.priced else "–")
    )
    return RequestRow(
        correlation_id=row.correlation_id,
        started_at=utc(row.started_at),
        model=row.model,
        status=row.status,
        error_category=row.error_category or "",
        latency=seconds(row.latency_seconds),
        ttft=seconds(row.ttft_seconds),
        tokens_input=count(row.input_tokens),
        tokens_output=count(row.output_tokens),
        cost=cost,
        feedback=_feedback(row.feedback),
    )


def request_detail(row: LLMRequest) -> RequestDetail:
    """Every recorded field of a request, labelled."""
    if row.cost_usd is not None:
        cost = usd(row.cost_usd)
    else:
        cost = (
            "unknown: the model has no known price" if not row.priced else "– (no usage reported)"
        )
    pairs = [
        ("Correlation id", row.correlation_id),
        ("Started (UTC)", utc(row.started_at)),
        ("Status", row.status),
        ("Error category", row.error_category or "–"),
        ("Model", row.model),
        ("Provider", row.provider or "–"),
        ("Total latency", seconds(row.latency_seconds)),
        ("Time to first token", seconds(row.ttft_seconds)),
        ("Input tokens", count(row.input_tokens)),
        ("Output tokens", count(row.output_tokens)),
        ("Cost", cost),
        ("Retries", str(row.retries)),
        ("Temperature", f"{row.temperature:g}"),
        ("Prompt version", row.prompt_version or "–"),
        ("Feedback", {1: "thumbs up", -1: "thumbs down"}.get(row.feedback or 0, "none")),
        (
            "Implicit signals",
            ", ".join(SIGNAL_LABELS[name] for name in implicit_signals.bits(row.implicit_flags))
            or "none",
        ),
        ("Session", row.session_id or "–"),
        ("Conversation", row.conversation_id or "–"),
    ]
    message = ""
    if row.error_category:
        try:
            message = human_message(ErrorCategory(row.error_category))
        except ValueError:
            message = ""
    return RequestDetail(
        correlation_id=row.correlation_id,
        fields=[DetailField(label=label, value=value) for label, value in pairs],
        conversation_id=row.conversation_id,
        error_message=message,
        trace_url=tracing.trace_url(row.correlation_id) or "",
    )


def load_detail(session: Session, correlation_id: str) -> RequestDetail | None:
    """The detail of one request, or None if it is not (or no longer) recorded."""
    row = stats.get_request(session=session, correlation_id=correlation_id)
    return None if row is None else request_detail(row)
