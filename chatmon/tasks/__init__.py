"""Every background task of a worker's life, in the order they start (Reflex lifespan
tasks: each runs once per worker). ``chatmon.chatmon`` registers exactly these.

Two of them live beside the service they serve, because they are that service's own
start and stop: the recorder's writer (``services.recorder.lifespan``) and the retention
prune (``services.retention.prune_loop``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chatmon.services import recorder, retention

# Modules, not their functions: a function named like its module (alert_monitor) would
# hide the module behind the package's attribute of the same name.
from chatmon.tasks import (
    access,
    alert_monitor,
    capacity,
    implicit_abandoned,
    observability,
    warm_up,
)

LIFESPAN_TASKS: tuple[Callable[..., Any], ...] = (
    warm_up.warm_up_llm,  # LiteLLM imported in a thread; /health/ready says "starting" until then
    access.keep_access_fresh,  # first-start secrets, monitor gate refresh, login-throttle prune
    observability.observability_lifespan,  # flushes Langfuse, OTLP and Sentry on shutdown
    recorder.lifespan,  # the llm_request writer; flushes pending rows on shutdown
    retention.prune_loop,  # METRICS_RETENTION_DAYS
    alert_monitor.alert_monitor,  # ALERT_CHECK_INTERVAL_SECONDS, claims in the database
    capacity.capacity_loop,  # per-worker CPU, memory, websockets for /metrics
    implicit_abandoned.abandoned_loop,  # IMPLICIT_ABANDON_MINUTES, claimed in the database
)
