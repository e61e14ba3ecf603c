"""Observability wiring for the app module: logs, metrics, tracing, OpenTelemetry export
and error tracking, once per process.

The composition of a worker: ``install`` runs when a worker imports the app and makes
every subscription to the event bus (metrics, the recorder, Langfuse, OTLP); the
process-wide service objects are made on first use in ``chatmon.deps``, and the lifespan
tasks are listed in ``chatmon.tasks``. LiteLLM's loggers are taken over where it is
imported (``services.litellm_import``).
"""

from __future__ import annotations

import logging

from chatmon import __version__, metrics
from chatmon.logging_setup import configure_logging
from chatmon.observability import error_tracking, otel_export, series
from chatmon.services import events, recorder, tracing
from chatmon.services.redaction import redact
from chatmon.services.secrets import (
    mask_secrets,
    register_secret_values,
    register_settings_secrets,
)
from chatmon.settings import Settings

log = logging.getLogger(__name__)


def install(settings: Settings) -> None:
    """JSON logs with secret masking, Prometheus series, Langfuse tracing and OTLP export
    on events, and error tracking (each of the last three only when configured)."""
    configure_logging(settings)
    for notice in settings.startup_notices():
        log.info("%s", notice)
    metrics.subscribe()
    for model in [settings.llm_model, *(f.model for f in settings.fallback_models)]:
        metrics.init_series(model)
    recorder.install()  # one llm_request row per request, written off the event loop
    recorder.get_recorder().on_drop = lambda reason, count: series.RECORDER_DROPPED.labels(
        reason=reason
    ).inc(count)
    if tracing.setup(settings) is not None:
        log.info("langfuse tracing on (host %s)", settings.langfuse_host or "Langfuse Cloud")
    install_otel(settings)
    install_error_tracking(settings)


def install_otel(settings: Settings) -> otel_export.OtelExporter | None:
    """Request spans to OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT, when one is set."""
    if otel_export.exporter() is not None:
        return otel_export.exporter()
    built = otel_exporter(settings)
    if built is None:
        return None
    exporter = otel_export.setup(built)
    events.on_call(exporter.on_call)
    events.on_feedback(exporter.on_feedback)
    log.info("opentelemetry export on (%s)", mask_secrets(built.endpoint))
    return exporter


def otel_exporter(settings: Settings) -> otel_export.OtelExporter | None:
    """An OTLP exporter configured from the settings, not subscribed to the chat's events
    (:func:`install_otel` makes and subscribes the process's one); None without an endpoint."""
    endpoint = settings.otel_traces_endpoint
    if endpoint is None:
        return None
    headers = settings.otel_headers
    register_secret_values(headers.values())  # an auth header never reaches a log line
    config = otel_export.OtelConfig(
        traces_endpoint=endpoint,
        headers=headers,
        timeout_seconds=settings.otel_exporter_otlp_timeout / 1000.0,
        compression=settings.otel_exporter_otlp_compression,
        service_name=settings.otel_service_name,
        service_version=__version__,
        resource_attributes=settings.otel_resource,
        capture_content=settings.otel_instrumentation_genai_capture_message_content,
    )
    return otel_export.OtelExporter(
        config,
        clean=tracing.trace_text_cleaner(settings.enable_pii_redaction),
        clean_comment=tracing.trace_text_cleaner(True),  # as Langfuse's score comment
    )


def install_error_tracking(settings: Settings) -> bool:
    """Unhandled backend exceptions to SENTRY_DSN (Sentry or GlitchTip), when it is set."""
    if settings.sentry_dsn is None:
        return False
    dsn = settings.sentry_dsn.get_secret_value()
    register_settings_secrets(settings)  # (logging's setup did too; a test may not have run it)
    register_secret_values([dsn, error_tracking.dsn_key(dsn)])
    pii = settings.enable_pii_redaction

    def scrub(text: str) -> str:
        return mask_secrets(redact(text) if pii else text)

    started = error_tracking.setup(
        dsn=dsn,
        release=f"chatmon@{__version__}",
        environment=settings.sentry_environment,
        traces_sample_rate=settings.sentry_traces_sample_rate,
        scrub=scrub,
    )
    if started:
        log.info("error tracking on (environment %s)", settings.sentry_environment)
    return started
