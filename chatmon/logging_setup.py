"""Structured logs: one JSON object per line, to stdout and to a rotating file.

Every line carries the correlation id and session id of the request it belongs to
(from :func:`log_context`, a contextvar, so concurrent requests never mix them up)
and passes through :class:`SecretMaskingFilter`, so no key, token, password or
webhook URL reaches a log, whichever logger or library wrote it.

Usage::

    configure_logging(get_settings())          # once per process, at app import
    with log_context(correlation_id=cid, session_id=sid):
        log.info("llm call finished")          # both ids are on the line
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import sys
from datetime import UTC, datetime
from typing import TextIO

from chatmon.observability.log_context import current_ids
from chatmon.services import litellm_import
from chatmon.services.limits import LOG_MESSAGE_MAX_CHARS, LOG_TRACEBACK_MAX_CHARS
from chatmon.services.secrets import mask_secrets, register_settings_secrets
from chatmon.settings import Settings

LOG_FILE_MAX_BYTES = 10 * 1024 * 1024
LOG_FILE_BACKUPS = 5

# Libraries that chat at INFO/DEBUG about every request; WARNING unless LOG_LEVEL=DEBUG.
NOISY_LOGGERS = (
    "LiteLLM",
    "LiteLLM Router",
    "LiteLLM Proxy",
    "litellm",
    "httpx",
    "httpcore",
    "openai",
    "langfuse",
    "opentelemetry",
    "urllib3",
    "asyncio",
    "multipart",
    "alembic.runtime.plugins",
)
# Libraries that install their own (non-JSON, unmasked) handlers: we take them over.
ADOPTED_LOGGERS = ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy", "langfuse")

_HANDLER_MARK = "_chatmon_handler"


class SecretMaskingFilter(logging.Filter):
    """Renders the message (and traceback) once, caps it and masks secrets in it.

    Placed on every handler, so it covers records from any logger, including
    third-party ones, and text that only appears in ``args`` or a traceback. The
    message is cut to ``LOG_MESSAGE_MAX_CHARS`` and a traceback or stack to
    ``LOG_TRACEBACK_MAX_CHARS`` before masking: a library that logs what a client
    sent (Reflex logs event payloads it cannot handle) writes a bounded line.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_chatmon_masked", False):
            return True
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string must not lose the line
            message = f"{record.msg!r} {record.args!r}"
        record.msg = mask_secrets(message, max_chars=LOG_MESSAGE_MAX_CHARS)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_secrets(record.exc_text, max_chars=LOG_TRACEBACK_MAX_CHARS)
        record.exc_info = None  # the masked exc_text is what gets printed
        if record.stack_info:
            record.stack_info = mask_secrets(record.stack_info, max_chars=LOG_TRACEBACK_MAX_CHARS)
        record._chatmon_masked = True
        return True


class ContextFilter(logging.Filter):
    """Stamps the current correlation and session ids onto the record."""

    def filter(self, record: logging.LogRecord) -> bool:
        correlation_id, session_id = current_ids()
        if not hasattr(record, "correlation_id"):
            record.correlation_id = correlation_id
        if not hasattr(record, "session_id"):
            record.session_id = session_id
        return True


class JsonFormatter(logging.Formatter):
    """timestamp, level, logger, message, correlation_id, session_id (+ exception)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),  # masked and capped by SecretMaskingFilter
            "correlation_id": getattr(record, "correlation_id", None),
            "session_id": getattr(record, "session_id", None),
        }
        if record.exc_text:
            entry["exception"] = record.exc_text
        elif record.exc_info:
            entry["exception"] = mask_secrets(
                self.formatException(record.exc_info), max_chars=LOG_TRACEBACK_MAX_CHARS
            )
        return json.dumps(entry, ensure_ascii=False, default=str)


def _make_handler(handler: logging.Handler) -> logging.Handler:
    handler.addFilter(ContextFilter())
    handler.addFilter(SecretMaskingFilter())
    handler.setFormatter(JsonFormatter())
    setattr(handler, _HANDLER_MARK, True)
    return handler


def configure_logging(settings: Settings, *, stream: TextIO | None = None) -> None:
    """Install the JSON handlers on the root logger (idempotent: replaces our old ones).

    Args:
        settings: LOG_LEVEL and LOG_FILE come from here; its secrets are registered
            with the masking filter.
        stream: where the stdout handler writes (tests pass a buffer).
    """
    register_settings_secrets(settings)
    root = logging.getLogger()
    # The root logger is ours: the server may have put a plain, unmasked console
    # handler there before importing the app (Granian's workers do).
    for handler in list(root.handlers):
        root.removeHandler(handler)
        if getattr(handler, _HANDLER_MARK, False):
            handler.close()
    root.addHandler(_make_handler(logging.StreamHandler(stream or sys.stdout)))
    path = settings.log_path
    path.parent.mkdir(parents=True, exist_ok=True)
    root.addHandler(
        _make_handler(
            logging.handlers.RotatingFileHandler(
                path, maxBytes=LOG_FILE_MAX_BYTES, backupCount=LOG_FILE_BACKUPS, encoding="utf-8"
            )
        )
    )
    level = logging.getLevelName(settings.log_level)
    root.setLevel(level)
    logging.getLogger("chatmon").setLevel(level)
    noisy_level = logging.DEBUG if settings.log_level == "DEBUG" else logging.WARNING
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(noisy_level)
    logging.captureWarnings(True)
    adopt_library_loggers()
    # LiteLLM is imported lazily, seconds later, and brings a handler of its own then.
    litellm_import.after_import(adopt_library_loggers)


def adopt_library_loggers() -> None:
    """Route LiteLLM's and Langfuse's loggers through our handlers instead of their own,
    and put the secret-masking filter on every other handler any logger has.

    LiteLLM attaches a plain-text stream handler to its loggers when it is imported
    (lazily, seconds after startup): call this again after that import.
    """
    for name in ADOPTED_LOGGERS:
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
        logger.propagate = True
    mask_every_handler()


def mask_every_handler() -> None:
    """Add the masking filter to the handlers of every logger (the server's own, too)."""
    loggers = [logging.getLogger()] + [
        logger
        for logger in logging.root.manager.loggerDict.values()
        if isinstance(logger, logging.Logger)
    ]
    for logger in loggers:
        for handler in logger.handlers:
            if not any(isinstance(f, SecretMaskingFilter) for f in handler.filters):
                handler.addFilter(SecretMaskingFilter())
