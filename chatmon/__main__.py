"""Command line entry point: ``python -m chatmon <subcommand>``.

Each subcommand is registered by one ``add_*`` function listed in ``SUBCOMMANDS``;
it adds its parser and sets ``handler`` (``args -> exit code``). To add e.g.
``migrate`` or ``alerts check``/``alerts test`` (nested subparsers), write such a
function and append it to ``SUBCOMMANDS``. Handlers import their dependencies
lazily so one subcommand never pays for (or breaks on) another's imports.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # argparse's subparsers action is private, and generic only in typeshed
    from chatmon.services.alerts.engine import AlertEngine

    Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]
    Registrar = Callable[[Subparsers], None]


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
    from chatmon.devtools.fake_llm import FakeLLMConfig, serve

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


def add_migrate(subparsers: Subparsers) -> None:
    """Registers ``migrate``: bring the database to the newest schema revision."""
    parser = subparsers.add_parser(
        "migrate", help="apply database migrations (alembic upgrade head)"
    )
    parser.set_defaults(handler=_run_migrate)


def _run_migrate(_args: argparse.Namespace) -> int:
    from chatmon.settings import SettingsError, get_settings

    try:
        get_settings()
    except SettingsError as exc:  # a bad variable stops startup, named, without a traceback
        print(f"chatmon: {exc}", file=sys.stderr)
        return 2
    from chatmon.migrate import upgrade_head

    upgrade_head()
    announce_first_start()
    return 0


def announce_first_start() -> None:
    """After migrating: create the instance secret and, when the monitor has no password
    configured, the generated one, printed here once (stderr, never a log file)."""
    from sqlmodel import Session

    from chatmon.db import get_engine
    from chatmon.services.first_start import announcement, ensure_monitor_password, session_secret
    from chatmon.settings import get_settings

    with Session(get_engine()) as session:
        session_secret(session=session, settings=get_settings())
        password = ensure_monitor_password(session=session, settings=get_settings())
    if password is not None:
        print(announcement(password), file=sys.stderr, flush=True)


def add_alerts(subparsers: Subparsers) -> None:
    """Registers ``alerts check``, ``alerts test``, the silences (``cli_silences``) and
    ``alerts backtest`` (``cli_backtest``)."""
    from chatmon.cli_backtest import add_backtest_action
    from chatmon.cli_silences import add_silence_actions

    parser = subparsers.add_parser(
        "alerts", help="evaluate alert rules, or test the alert channels"
    )
    actions = parser.add_subparsers(dest="alerts_command", metavar="<action>", required=True)
    actions.add_parser(
        "check", help="evaluate every rule once, send what fires, print a table (exit 0)"
    ).set_defaults(handler=_run_alerts_check)
    actions.add_parser(
        "test", help="send a test message to every configured channel (exit 1 if one fails)"
    ).set_defaults(handler=_run_alerts_test)
    add_silence_actions(actions)
    add_backtest_action(actions)


def _alert_engine() -> AlertEngine:
    from chatmon.services.alerts import build_engine
    from chatmon.settings import get_settings

    return build_engine(get_settings())


def _run_alerts_check(_args: argparse.Namespace) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    from chatmon.services.alerts.report import format_check
    from chatmon.settings import SettingsError

    try:
        engine = _alert_engine()
        report = engine.check()
    except SettingsError as exc:
        print(f"chatmon: {exc}", file=sys.stderr)
        return 2
    except SQLAlchemyError as exc:
        print(
            f"chatmon: database error ({type(exc).__name__}); run `python -m chatmon migrate`?",
            file=sys.stderr,
        )
        return 1
    print(format_check(report, channels=engine.channel_names))
    return 0


def _run_alerts_test(_args: argparse.Namespace) -> int:
    from chatmon.services.alerts.report import NO_CHANNELS, format_test
    from chatmon.settings import SettingsError

    try:
        engine = _alert_engine()
    except SettingsError as exc:
        print(f"chatmon: {exc}", file=sys.stderr)
        return 2
    if not engine.channel_names:
        print(f"chatmon: {NO_CHANNELS}", file=sys.stderr)
        return 2
    outcomes = engine.send_test()
    print(format_test(outcomes))
    failed = [outcome.channel for outcome in outcomes if not outcome.ok]
    if failed:
        print(f"chatmon: the test message failed on: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def add_digest(subparsers: Subparsers) -> None:
    """Registers ``digest --print|--send``."""
    parser = subparsers.add_parser("digest", help="preview or send the spend digest")
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--print", action="store_true", help="print it (text)")
    action.add_argument(
        "--send", action="store_true", help="send it now to the email and Slack channels"
    )
    parser.add_argument("--html", action="store_true", help="print the HTML version instead")
    parser.add_argument(
        "--schedule",
        choices=("daily", "weekly"),
        default=None,
        help="the period (default: DIGEST_SCHEDULE, else daily)",
    )
    parser.set_defaults(handler=_run_digest)


def _run_digest(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from sqlmodel import Session

    from chatmon.db import get_engine
    from chatmon.services import digest
    from chatmon.services.digest_send import DigestSender, digest_channels
    from chatmon.settings import SettingsError, get_settings

    try:
        settings = get_settings()
    except SettingsError as exc:  # a bad variable, named, without a traceback
        print(f"chatmon: {exc}", file=sys.stderr)
        return 2
    schedule = args.schedule or (
        settings.digest_schedule if settings.digest_schedule != "off" else "daily"
    )
    now = datetime.now(UTC)
    if args.send:
        if not digest_channels(settings):
            print("chatmon: no digest channel: set SMTP_HOST or SLACK_WEBHOOK_URL", file=sys.stderr)
            return 2
        sender = DigestSender(
            settings=settings.model_copy(update={"digest_schedule": schedule}), engine=get_engine()
        )
        outcomes = sender.send_now(now=now)
        for outcome in outcomes:
            print(f"{outcome.channel}: {'sent' if outcome.ok else 'FAILED: ' + str(outcome.error)}")
        return 0 if all(outcome.ok for outcome in outcomes) else 1
    with Session(get_engine()) as session:
        built = digest.build(session=session, settings=settings, now=now, schedule=schedule)
    print(built.html if args.html else built.subject + "\n\n" + built.text)
    return 0


def add_hash_password(subparsers: Subparsers) -> None:
    """Registers ``hash-password``: a MONITOR_USERS entry for one user."""
    parser = subparsers.add_parser(
        "hash-password",
        help="print a user:hash entry for MONITOR_USERS (asks for the password)",
    )
    parser.add_argument("user", help="the user name")
    parser.set_defaults(handler=_run_hash_password)


def _run_hash_password(args: argparse.Namespace) -> int:
    import getpass

    from chatmon.services.auth import hash_password

    password = getpass.getpass("Password: ") if sys.stdin.isatty() else sys.stdin.readline()
    password = password.rstrip("\n")
    if not password:
        print("chatmon: the password must not be empty", file=sys.stderr)
        return 2
    print(f"{args.user}:{hash_password(password)}")
    return 0


def add_reset_monitor_password(
    subparsers: Subparsers,
) -> None:
    """Registers ``reset-monitor-password``: a new generated monitor password."""
    parser = subparsers.add_parser(
        "reset-monitor-password",
        help="replace the generated monitor password and print the new one (once)",
        description="Replaces the monitor password generated at the first start (when neither "
        "MONITOR_PASSWORD nor MONITOR_USERS is set) and prints the new one. Sessions signed in "
        "with the old one end within a minute.",
    )
    parser.set_defaults(handler=_run_reset_monitor_password)


def _run_reset_monitor_password(_args: argparse.Namespace) -> int:
    from sqlalchemy.exc import SQLAlchemyError
    from sqlmodel import Session

    from chatmon.settings import SettingsError, get_settings

    try:
        settings = get_settings()
    except SettingsError as exc:
        print(f"chatmon: {exc}", file=sys.stderr)
        return 2
    from chatmon.db import get_engine
    from chatmon.services.first_start import (
        announcement,
        reset_monitor_password,
        uses_generated_password,
    )

    if not uses_generated_password(settings):
        reason = (
            "MONITOR_AUTH is off"
            if not settings.monitor_auth
            else "MONITOR_PASSWORD or MONITOR_USERS is set and takes precedence"
        )
        print(
            f"chatmon: the generated monitor password is not in use ({reason}); "
            "nothing was changed",
            file=sys.stderr,
        )
        return 2
    try:
        with Session(get_engine()) as session:
            password = reset_monitor_password(session=session)
    except SQLAlchemyError as exc:
        print(
            f"chatmon: database error ({type(exc).__name__}); run `python -m chatmon migrate`?",
            file=sys.stderr,
        )
        return 1
    print(announcement(password, reset=True), flush=True)
    return 0


def add_backup(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Registers ``backup PATH``: a consistent copy of the database, while chatmon runs."""
    parser = subparsers.add_parser(
        "backup",
        help="copy the SQLite database to PATH while chatmon runs (PostgreSQL: prints pg_dump)",
        description="Writes a consistent copy of DATABASE_URL's SQLite file to PATH with "
        "SQLite's online backup API (the app may keep running). Restore: stop chatmon, copy "
        "the file to DATABASE_URL's path, start (migrations run at start). For PostgreSQL "
        "it prints the pg_dump command to use instead and exits with 2.",
    )
    parser.add_argument("path", type=Path, help="the new backup file (must not exist)")
    parser.set_defaults(handler=_run_backup)


def _run_backup(args: argparse.Namespace) -> int:
    from chatmon.services.backup import BackupError, backup_sqlite, pg_dump_command, sqlite_path
    from chatmon.settings import SettingsError, get_settings

    try:
        database_url = get_settings().database_url
    except SettingsError as exc:
        print(f"chatmon: {exc}", file=sys.stderr)
        return 2
    try:
        source = sqlite_path(database_url)
        if source is None:
            print(
                "chatmon: DATABASE_URL is not SQLite; back PostgreSQL up with its own tool:\n"
                f"  {pg_dump_command(database_url, args.path)}\n"
                "restore into an empty database with pg_restore (README, Backup and restore)",
                file=sys.stderr,
            )
            return 2
        size = backup_sqlite(source, args.path)
    except BackupError as exc:
        print(f"chatmon: backup failed: {exc}", file=sys.stderr)
        return 1
    print(f"chatmon: backed up {source} to {args.path} ({size:,} bytes)", flush=True)
    return 0


SUBCOMMANDS: list[Registrar] = [
    add_fake_llm,
    add_migrate,
    add_alerts,
    add_hash_password,
    add_reset_monitor_password,
    add_backup,
    add_digest,
]


def build_parser() -> argparse.ArgumentParser:
    """Builds the top-level parser with every registered subcommand."""
    parser = argparse.ArgumentParser(
        prog="python -m chatmon", description="chatmon command line tools"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="<subcommand>", required=True)
    for register in SUBCOMMANDS:
        register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parses ``argv`` (default: ``sys.argv[1:]``) and runs the chosen subcommand."""
    args = build_parser().parse_args(argv)
    return int(args.handler(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
