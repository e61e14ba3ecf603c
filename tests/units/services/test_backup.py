"""``python -m chatmon backup``: SQLite's online backup API, and pg_dump for PostgreSQL."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from chatmon.__main__ import main
from chatmon.services.backup import BackupError, backup_sqlite, pg_dump_command, sqlite_path


def _database(path: Path, rows: int) -> None:
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA journal_mode=WAL")  # as chatmon's engine sets it
        db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT)")
        db.executemany("INSERT INTO t (body) VALUES (?)", [("x" * 500,)] * rows)
    db.close()


def _rows(path: Path) -> int:
    with sqlite3.connect(path) as db:
        count = db.execute("SELECT count(*) FROM t").fetchone()[0]
    db.close()
    return count


def test_backup_copies_every_row_while_another_connection_writes(tmp_path: Path) -> None:
    source, target = tmp_path / "live.db", tmp_path / "backup.db"
    _database(source, rows=5000)  # several backup steps of 1024 pages
    stop = threading.Event()

    def keep_writing() -> None:
        with sqlite3.connect(source, timeout=30) as db:
            while not stop.is_set():
                db.execute("INSERT INTO t (body) VALUES ('during')")
                db.commit()
        db.close()

    writer = threading.Thread(target=keep_writing)
    writer.start()
    try:
        size = backup_sqlite(source, target)
    finally:
        stop.set()
        writer.join()
    assert size == target.stat().st_size > 0
    copied = _rows(target)
    assert 5000 <= copied <= _rows(source)  # a consistent snapshot: the first rows at least
    with sqlite3.connect(target) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    db.close()
    assert not list(tmp_path.glob(".backup.db.partial-*"))


def test_backup_never_overwrites_and_names_what_is_missing(tmp_path: Path) -> None:
    source, target = tmp_path / "live.db", tmp_path / "backup.db"
    _database(source, rows=1)
    target.write_text("an older backup")
    with pytest.raises(BackupError, match="exists"):
        backup_sqlite(source, target)
    assert target.read_text() == "an older backup"
    with pytest.raises(BackupError, match="no database file"):
        backup_sqlite(tmp_path / "nope.db", tmp_path / "new.db")
    with pytest.raises(BackupError, match="does not exist"):
        backup_sqlite(source, tmp_path / "no-such-dir" / "new.db")


def test_sqlite_path_and_pg_dump_without_the_password(tmp_path: Path) -> None:
    assert sqlite_path(f"sqlite:///{tmp_path}/chatmon.db") == tmp_path / "chatmon.db"
    assert sqlite_path("postgresql+psycopg://u:pw@db:5432/chat") is None
    with pytest.raises(BackupError, match="in-memory"):
        sqlite_path("sqlite://")
    line = pg_dump_command("postgresql+psycopg://chat:s3cret-pw@db:5432/chat", Path("/b/c.dump"))
    assert line == "pg_dump --format=custom --file '/b/c.dump' 'postgresql://chat@db:5432/chat'"
    assert "s3cret" not in line


def test_cli_backs_up_database_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    source, target = tmp_path / "chatmon.db", tmp_path / "backup.db"
    _database(source, rows=3)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{source}")
    from chatmon.settings import get_settings

    get_settings.cache_clear()
    try:
        assert main(["backup", str(target)]) == 0
        assert _rows(target) == 3
        assert main(["backup", str(target)]) == 1  # exists: refused
        assert "exists" in capsys.readouterr().err
        monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://chat:s3cret-pw@db/chat")
        get_settings.cache_clear()
        assert main(["backup", str(tmp_path / "pg.dump")]) == 2
        err = capsys.readouterr().err
        assert "pg_dump --format=custom" in err and "s3cret" not in err
    finally:
        get_settings.cache_clear()
