"""``python -m chatmon fake-llm``: the fake OpenAI-compatible upstream, in the foreground."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # argparse's subparsers action is private, and generic only in typeshed
    Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]


def _non_negative_float(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return value


def _probability(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError("must be between 0 and 1")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be >= 1")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return value


# Mirrors chatmon.devtools.fake_llm.FAIL_MODES (a test checks they match); kept here
# so building the parser doesn't import starlette/uvicorn for other subcommands.
FAKE_LLM_FAIL_MODES = (
    "429",
    "500",
    "503",
    "401",
    "400",
    "context_length",
    "timeout",
    "drop",
    "drop-mid",
)


def add_fake_llm(subparsers: Subparsers) -> None:
    """Registers ``fake-llm``: a fake OpenAI-compatible upstream with fault injection."""
    parser = subparsers.add_parser(
        "fake-llm",
        help="run a fake OpenAI-compatible LLM upstream with fault injection",
        description="Fake OpenAI-compatible upstream (POST /v1/chat/completions, GET /v1/models, "
        "GET/POST /_control, GET /_requests). Runs until Ctrl-C.",
    )
    parser.add_argument("--port", type=int, required=True, help="TCP port (0 = pick a free one)")
    parser.add_argument(
        "--host", default="127.0.0.1", help="interface to bind (default: %(default)s)"
    )
    parser.add_argument(
        "--latency", type=_non_negative_float, default=0.0, help="seconds before responding"
    )
    parser.add_argument(
        "--tokens-per-second",
        type=_non_negative_float,
        default=None,
        help="pace of streamed chunks (default: unpaced)",
    )
    parser.add_argument(
        "--fail-rate", type=_probability, default=0.0, help="probability (0..1) a request fails"
    )
    parser.add_argument(
        "--fail-with",
        choices=FAKE_LLM_FAIL_MODES,
        default="500",
        help="failure kind (default: 500)",
    )
    parser.add_argument(
        "--fail-first", type=_non_negative_int, default=0, help="fail exactly the first N requests"
    )
    parser.add_argument(
        "--retry-after",
        type=_non_negative_float,
        default=None,
        help="Retry-After seconds sent with 429/503",
    )
    parser.add_argument(
        "--reply-words", type=_positive_int, default=12, help="words per reply (default: 12)"
    )
    parser.set_defaults(handler=_run_fake_llm)


def _run_fake_llm(args: argparse.Namespace) -> int:
    """Runs the fake upstream in the foreground until Ctrl-C / SIGTERM."""
    from chatmon.devtools.fake_llm import FakeLLMConfig
    from chatmon.devtools.fake_llm_server import serve

    config = FakeLLMConfig(
        latency=args.latency,
        tokens_per_second=args.tokens_per_second,
        fail_rate=args.fail_rate,
        fail_with=args.fail_with,
        retry_after=args.retry_after,
        reply_words=args.reply_words,
        fail_first=args.fail_first,
    )
    try:
        serve(config, host=args.host, port=args.port, on_ready=_announce)
    except KeyboardInterrupt:
        return 130
    return 0


def _announce(url: str) -> None:
    print(f"fake-llm listening on {url}", flush=True)
