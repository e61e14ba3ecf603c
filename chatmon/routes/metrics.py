"""GET /metrics: every chatmon series in Prometheus text format.

With ``METRICS_TOKEN`` set, the scrape must send ``Authorization: Bearer <token>``;
Prometheus does that with ``authorization: {credentials_file: ...}`` in its scrape
config. Without it /metrics is behind the monitor's login like /api/* (the middleware
checks; Prometheus sends ``basic_auth``), unless MONITOR_AUTH=off.
"""

from __future__ import annotations

import asyncio
import hmac

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from chatmon import metrics
from chatmon.settings import get_settings


def _authorized(request: Request) -> bool:
    token = get_settings().metrics_token
    if token is None:
        return True
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    expected = token.get_secret_value().encode()
    return scheme.lower() == "bearer" and hmac.compare_digest(
        credentials.strip().encode(), expected
    )


async def metrics_endpoint(request: Request) -> Response:
    """The exposition, or 401 when a token is configured and not presented.

    A malformed or non-ASCII Authorization header is a 401 like a wrong token.
    """
    if not _authorized(request):
        return PlainTextResponse(
            "unauthorized: send Authorization: Bearer <METRICS_TOKEN>\n",
            status_code=401,
            headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
        )
    # In multiprocess mode rendering reads every worker's files: off the event loop.
    body, content_type = await asyncio.to_thread(metrics.render)
    return Response(body, media_type=content_type)
