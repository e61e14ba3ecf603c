"""Command line entry point: ``python -m chatmon <subcommand>``.

Each subcommand is registered by one ``add_*`` function listed in ``SUBCOMMANDS``, in
its ``cli_*`` module (``cli_fake_llm``, ``cli_database``: migrate and backup, ``cli_alerts``
with ``cli_silences`` and ``cli_backtest``, ``cli_passwords``, ``cli_digest``); it adds
its parser and sets ``handler`` (``args -> exit code``). To add one, write such a
function and append it to ``SUBCOMMANDS``. Handlers import their dependencies
lazily so one subcommand never pays for (or breaks on) another's imports.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from chatmon.cli_alerts import add_alerts
from chatmon.cli_database import add_backup, add_migrate
from chatmon.cli_digest import add_digest
from chatmon.cli_fake_llm import add_fake_llm
from chatmon.cli_passwords import add_hash_password, add_reset_monitor_password

if TYPE_CHECKING:  # argparse's subparsers action is private, and generic only in typeshed
    Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]
    Registrar = Callable[[Subparsers], None]


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
