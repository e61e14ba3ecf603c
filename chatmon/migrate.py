"""Bring the database schema to the newest alembic revision (run before serving)."""

from __future__ import annotations

from alembic.config import Config

from alembic import command
from chatmon.settings import PROJECT_ROOT, get_settings


def alembic_config(database_url: str | None = None) -> Config:
    """Alembic's configuration for this project, pointed at ``database_url``."""
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(PROJECT_ROOT / "alembic"))
    config.attributes["database_url"] = database_url or get_settings().database_url
    config.attributes["configure_logging"] = False
    return config


def upgrade_head(database_url: str | None = None) -> None:
    """Apply every migration the database has not seen yet."""
    command.upgrade(alembic_config(database_url), "head")
