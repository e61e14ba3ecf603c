"""The Starlette sub-app Reflex runs in front of its own backend: the routes table.

Reflex matches these routes first, so none of them may shadow a page path
(``/``, ``/monitor``, ``/login``: hence ``/auth/login`` for the login form's POST).
Handlers live in ``chatmon/routes/``, one module per concern.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.routing import Route

from chatmon.routes.auth import login, logout
from chatmon.routes.budget import api_budget
from chatmon.routes.feedback import (
    api_feedback,
    api_feedback_conversation,
    api_feedback_csv,
    api_feedback_views,
)
from chatmon.routes.feedback_page import review_page
from chatmon.routes.health import health, health_live, health_ready
from chatmon.routes.metrics import metrics_endpoint
from chatmon.routes.stats import api_requests_csv, api_stats
from chatmon.routes.usage import api_usage, api_usage_csv
from chatmon.routes.versions import api_versions

routes = [
    Route("/health", health, methods=["GET"]),
    Route("/health/ready", health_ready, methods=["GET"]),
    Route("/health/live", health_live, methods=["GET"]),
    Route("/metrics", metrics_endpoint, methods=["GET"]),
    Route("/api/stats", api_stats, methods=["GET"]),
    Route("/api/requests.csv", api_requests_csv, methods=["GET"]),
    Route("/api/usage", api_usage, methods=["GET"]),
    Route("/api/budget", api_budget, methods=["GET"]),
    Route("/api/usage.csv", api_usage_csv, methods=["GET"]),
    Route("/api/feedback", api_feedback, methods=["GET"]),
    Route("/api/feedback.csv", api_feedback_csv, methods=["GET"]),
    Route("/api/feedback/conversation", api_feedback_conversation, methods=["GET"]),
    Route("/api/feedback/views", api_feedback_views, methods=["GET"]),
    Route("/api/feedback/review", review_page, methods=["GET"]),
    Route("/api/versions", api_versions, methods=["GET"]),
    Route("/auth/login", login, methods=["POST"]),
    Route("/auth/logout", logout, methods=["POST"]),
]

api = Starlette(routes=routes)
