"""The PostgreSQL and Redis servers the tests use, found or started without touching the
machine's configuration.

Each is, in this order:

1. the server named by ``CHATMON_TEST_POSTGRES_URL`` / ``CHATMON_TEST_REDIS_URL`` when set
   (a server you chose: the tests fail, naming it, when it does not answer);
2. the running service on the default port (PostgreSQL 127.0.0.1:5432 as ``postgres``
   without a password, Redis 127.0.0.1:6379) when it accepts those credentials, as it is;
3. otherwise a throwaway server of this test session's own, in a temporary directory on a
   free port: Debian's ``initdb``/``pg_ctl`` (package ``postgresql``) or ``redis-server``
   (package ``redis-server``), stopped and deleted when the session ends.

``CHATMON_TEST_SERVERS=own`` skips step 2 (always throwaway servers, e.g. to check that a
run does not depend on this machine's services). No system file is read or written:
nothing in /etc, no service started or reconfigured.
The first caller decides, and the answer is put in the environment variable, so app
processes the tests start (and later imports) see the same server.
"""

from __future__ import annotations

import atexit
import glob
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
from functools import cache
from pathlib import Path

import redis
from sqlalchemy import create_engine, text
from sqlalchemy.exc import SQLAlchemyError

from chatmon.devtools import procs
from chatmon.devtools.procs import free_port

POSTGRES_ENV = "CHATMON_TEST_POSTGRES_URL"
REDIS_ENV = "CHATMON_TEST_REDIS_URL"
DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379"
START_TIMEOUT = 60.0


def progress(line: str) -> None:
    """A ``==>`` line on the terminal, past pytest's output capture."""
    print(f"==> chatmon tests: {line}", file=sys.__stderr__, flush=True)


def _use_running() -> bool:
    return os.environ.get("CHATMON_TEST_SERVERS", "").lower() != "own"


def postgres_accepts(url: str) -> bool:
    """True when ``url`` connects and its role may create databases (what the tests do)."""
    engine = create_engine(url, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as connection:
            query = "SELECT rolsuper OR rolcreatedb FROM pg_roles WHERE rolname = current_user"
            return bool(connection.execute(text(query)).scalar())
    except SQLAlchemyError:
        return False
    finally:
        engine.dispose()


def redis_accepts(url: str) -> bool:
    """True when ``url`` answers PING (no password needed, or the one in the URL)."""
    client = redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


@cache
def postgres_admin_url() -> str:
    """An admin URL (may CREATE DATABASE) of the PostgreSQL server the tests use."""
    if os.environ.get(POSTGRES_ENV):
        return os.environ[POSTGRES_ENV]
    if _use_running() and postgres_accepts(DEFAULT_POSTGRES_URL):
        url = DEFAULT_POSTGRES_URL
    else:
        url = _start_postgres()
    os.environ[POSTGRES_ENV] = url
    return url


@cache
def redis_url() -> str:
    """The URL (no db number) of the Redis server the tests use."""
    if os.environ.get(REDIS_ENV):
        return os.environ[REDIS_ENV]
    url = (
        DEFAULT_REDIS_URL if _use_running() and redis_accepts(DEFAULT_REDIS_URL) else _start_redis()
    )
    os.environ[REDIS_ENV] = url
    return url


# ---------------------------------------------------------------- throwaway PostgreSQL


def _postgres_bin() -> Path:
    """The directory of Debian's initdb/pg_ctl (the newest installed major version)."""
    found = shutil.which("initdb")
    if found:
        return Path(os.path.realpath(found)).parent
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda path: int(Path(path).parts[-3]) if Path(path).parts[-3].isdigit() else 0,
    )
    if not candidates:
        raise RuntimeError(
            "no PostgreSQL accepts the tests' credentials and initdb is not installed: "
            "run `make test` (it installs Debian's postgresql) or set " + POSTGRES_ENV
        )
    return Path(candidates[-1]).parent


def _server_user() -> str | None:
    """PostgreSQL refuses to run as root: then run it as ``postgres`` (or ``nobody``)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name
    raise RuntimeError("running as root and no 'postgres' or 'nobody' user to run PostgreSQL as")


def _start_postgres() -> str:
    bindir = _postgres_bin()
    user = _server_user()
    root = Path(tempfile.mkdtemp(prefix="chatmon-test-postgres-"))
    if user is not None:
        shutil.chown(root, user=user)
    data, log = root / "data", root / "server.log"
    port = free_port()

    def run(*args: str) -> None:
        done = subprocess.run(
            [str(bindir / args[0]), *args[1:]],
            user=user,
            cwd=root,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            timeout=START_TIMEOUT,
            check=False,
        )
        if done.returncode != 0:
            log_tail = log.read_text()[-2000:] if log.exists() else ""
            raise RuntimeError(f"{args[0]} failed: {done.stderr[-2000:]}{log_tail}")

    progress(f"starting a throwaway PostgreSQL ({bindir}) on 127.0.0.1:{port} in {root}")
    run("initdb", "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
    options = (
        f"-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={root} "
        "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
    )
    run("pg_ctl", "-D", str(data), "-l", str(log), "-o", options, "-w", "-t", "60", "start")

    def stop() -> None:
        subprocess.run(
            [str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
            user=user,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=False,
        )
        shutil.rmtree(root, ignore_errors=True)

    atexit.register(stop)
    return f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"


# --------------------------------------------------------------------- throwaway Redis


def _start_redis() -> str:
    server = shutil.which("redis-server")
    if server is None:
        raise RuntimeError(
            "no Redis answers on 127.0.0.1:6379 and redis-server is not installed: "
            "run `make test` (it installs Debian's redis-server) or set " + REDIS_ENV
        )
    root = Path(tempfile.mkdtemp(prefix="chatmon-test-redis-"))
    port = free_port()
    progress(f"starting a throwaway Redis ({server}) on 127.0.0.1:{port} in {root}")
    # Flags only, no config file: in memory, nothing saved, nothing outside ``root``.
    process = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        + ["--dir", str(root), "--daemonize", "no", "--logfile", str(root / "redis.log")],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}"

    def stop() -> None:
        procs.stop(process, timeout=10)
        shutil.rmtree(root, ignore_errors=True)

    atexit.register(stop)
    deadline = time.monotonic() + START_TIMEOUT
    while not redis_accepts(url):
        if process.poll() is not None or time.monotonic() > deadline:
            stop()
            raise RuntimeError(f"the throwaway redis-server did not start (log: {root})")
        time.sleep(0.1)
    return url


def _exercise(admin_url: str, redis_base: str) -> None:
    """What the tests do with the servers: create and drop a database, use a Redis db."""
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(text('CREATE DATABASE "chatmon_services_check"'))
            connection.execute(text('DROP DATABASE "chatmon_services_check"'))
    finally:
        engine.dispose()
    client = redis.Redis.from_url(f"{redis_base}/15")
    try:
        client.set("chatmon-services-check", "ok")
        assert client.get("chatmon-services-check") == b"ok"
        client.delete("chatmon-services-check")
    finally:
        client.close()


if __name__ == "__main__":
    # `python -m tests.services`: which servers a test run would use, exercised once;
    # throwaway ones are stopped and deleted on exit.
    postgres, redis_base = postgres_admin_url(), redis_url()
    _exercise(postgres, redis_base)
    print("postgresql:", postgres, flush=True)
    print("redis:", redis_base, flush=True)
