"""The Starlette sub-app Reflex runs in front of its own backend: the routes table.

Reflex matches these routes first, so none of them may shadow a page path
(``/``, ``/monitor``). Handlers live in ``chatmon/routes/``, one module per concern.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.routing import Route

from chatmon.routes.health import health
from chatmon.routes.metrics import metrics_endpoint

routes = [
    Route("/health", health, methods=["GET"]),
    Route("/metrics", metrics_endpoint, methods=["GET"]),
]

api = Starlette(routes=routes)
