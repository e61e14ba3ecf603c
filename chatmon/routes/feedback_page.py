"""``GET /api/feedback/review``: the review queue as a plain read-only HTML page.

Server-rendered (no script, no Reflex state: nothing a client can call with other
arguments), behind the monitor login like every ``/api/*``. The filters are a GET form
with the parameters of ``/api/feedback``; ``id=<correlation_id>`` opens the
conversation around that reply (audited, see ``routes.feedback``). The latest recorded
reads are listed at the bottom of the same page. Every value is HTML-escaped.
"""

from __future__ import annotations

from html import escape
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from chatmon.routes.feedback import (
    MAX_ID,
    Query,
    latest_views,
    parse_params,
    rated_rows,
    read_conversation,
    viewer_of,
)
from chatmon.services import feedback_review
from chatmon.services.feedback import REASONS
from chatmon.services.stats import WindowError
from chatmon.settings import get_settings

_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:20px;color:#222}"
    "table{border-collapse:collapse;font-size:14px}td,th{border:1px solid #ccc;padding:4px 8px}"
    ".down{color:#b00}.up{color:#070}.msg{border:1px solid #ccc;border-radius:6px;"
    "padding:8px;margin:6px 0;white-space:pre-wrap;max-width:60em}.rated{border:2px solid #b00}"
)


def _page(body: str, status: int = 200) -> HTMLResponse:
    html = (
        "<!doctype html><html><head><meta charset='utf-8'><title>chatmon review queue</title>"
        f"<style>{_STYLE}</style></head><body><p><a href='/monitor'>← Monitor</a></p>"
        f"<h1>Review queue</h1>{body}</body></html>"
    )
    return HTMLResponse(html, status_code=status)


def _form(params: dict[str, str]) -> str:
    def field(name: str, label: str) -> str:
        value = escape(params.get(name, ""), quote=True)
        return f"<label>{label} <input name='{name}' id='review-{name}' value='{value}'></label> "

    def choice(name: str, options: tuple[str, ...]) -> str:
        chosen = params.get(name, "")
        items = "".join(
            f"<option{' selected' if o == chosen else ''}>{escape(o)}</option>" for o in options
        )
        return f"<label>{name} <select name='{name}' id='review-{name}'>{items}</select></label> "

    return (
        "<form method='get' id='review-filters'>"
        + choice("window", ("24h", "1h", "6h", "7d"))
        + choice("rating", ("", "down", "up", "flagged"))
        + choice("reason", ("", *REASONS))
        + choice("order", ("newest", "worst"))
        + field("model", "model")
        + field("prompt_version", "prompt version")
        + "<button type='submit' id='review-apply'>Apply</button></form>"
    )


def _queue(rows: list[feedback_review.RatedReply], params: dict[str, str], review: bool) -> str:
    if not rows:
        return "<p id='review-empty'>No rated or flagged replies in this window.</p>"
    head = "".join(
        f"<th>{escape(n)}</th>"
        for n in ("when", "rating", "reasons", "signals", "model", "prompt", "status")
    )
    lines = []
    for row in rows:
        link = escape(row.correlation_id)
        if review:
            href = escape("?" + urlencode({**params, "id": row.correlation_id}), quote=True)
            link = f"<a href='{href}' class='review-open'>{link}</a>"
        status = row.status + (f" ({row.error_category})" if row.error_category else "")
        lines.append(
            f"<tr><td>{escape(row.started_at.strftime('%Y-%m-%d %H:%M'))}</td>"
            f"<td class='{row.rating}'>{row.rating}</td>"
            f"<td class='review-reasons'>{escape(', '.join(row.reasons))}</td>"
            f"<td class='review-signals'>{escape(', '.join(row.signals))}</td>"
            f"<td>{escape(row.model)}</td>"
            f"<td>{escape(row.prompt_version)}</td><td>{escape(status)}</td><td>{link}</td></tr>"
        )
    return f"<table id='review-rows'><tr>{head}<th>request</th></tr>{''.join(lines)}</table>"


def _messages(shown: list[feedback_review.ShownMessage] | None, redacted: bool) -> str:
    if shown is None:
        return "<p id='review-conversation'>That reply is no longer stored.</p>"
    note = " (PII redacted)" if redacted else ""
    items = "".join(
        f"<div class='msg{' rated' if m.rated else ''}'><b>{escape(m.role)}</b>: "
        f"{escape(m.content)}</div>"
        for m in shown
    )
    return f"<section id='review-conversation'><h2>Conversation{note}</h2>{items}</section>"


def _audit(views: list[feedback_review.ReviewView]) -> str:
    if not views:
        return "<h2>Conversation reads</h2><p id='review-audit'>Nobody has read one yet.</p>"
    lines = "".join(
        f"<tr><td>{escape(v.viewed_at.strftime('%Y-%m-%d %H:%M:%S'))}</td>"
        f"<td>{escape(v.viewer)}</td><td>{escape(v.conversation_id)}</td>"
        f"<td>{escape(v.correlation_id)}</td></tr>"
        for v in views
    )
    return (
        "<h2>Conversation reads</h2><table id='review-audit'><tr><th>when (UTC)</th>"
        f"<th>who</th><th>conversation</th><th>request</th></tr>{lines}</table>"
    )


async def review_page(request: Request) -> Response:
    """The queue, the opened conversation (if ``id``), and the audit log."""
    settings = get_settings()
    params = {k: v for k, v in request.query_params.items() if v != ""}
    correlation_id = params.pop("id", None)
    try:
        query: Query = parse_params(dict(params))
    except WindowError as exc:
        return _page(f"<p id='review-error'>{escape(str(exc))}</p>", status=400)
    opened = ""
    if correlation_id is not None:
        if not settings.feedback_review:
            return _page("<p id='review-error'>Conversation review is off.</p>", status=404)
        if not correlation_id.isalnum() or len(correlation_id) > MAX_ID:
            return _page("<p id='review-error'>Not a request id.</p>", status=400)
        shown = await read_conversation(correlation_id, viewer_of(request))
        opened = _messages(shown, settings.enable_pii_redaction)
    rows = await rated_rows(query)
    off = (
        ""
        if settings.feedback_review
        else "<p id='review-off'>Conversation review is off (FEEDBACK_REVIEW=off).</p>"
    )
    body = _form(params) + off + opened + _queue(rows, params, settings.feedback_review)
    body += _audit(await latest_views(50))
    return _page(body)
