"""py-spy around a load: where the server's CPU goes, summed by layer.

``record(pid, path)`` samples a process tree (``py-spy record --subprocesses``, the raw
collapsed-stack format) for as long as the ``with`` block runs; ``summary(path)`` reads
the stacks back and prints the top of the profile twice: by layer (Reflex state
handling, LiteLLM chunk parsing, the websocket and HTTP plumbing, our code) and by
function (self time). A sample is charged to the library our code (or the event loop) called
into: LiteLLM building pydantic chunks is LiteLLM's, Reflex pickling a state is Reflex's.

    python -m bench.pyspy profile.txt        # summarise a profile written earlier
"""

from __future__ import annotations

import collections
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from chatmon.devtools.procs import stop

# A frame's layer is its file's top-level package (py-spy prints paths relative to
# site-packages or the stdlib); the innermost frame that has a layer wins.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("chatmon (our code)", ("chatmon",)),
    ("LiteLLM (chunk parsing, logging)", ("litellm",)),
    ("OpenAI client + pydantic", ("openai", "pydantic", "pydantic_core")),
    ("httpx/httpcore (upstream HTTP)", ("httpx", "httpcore", "h11")),
    ("Reflex state handling", ("reflex", "reflex_base")),
    (
        "socket.io/engine.io (websocket frames)",
        ("socketio", "engineio", "granian", "websockets", "wsproto"),
    ),
    ("SQLAlchemy (database)", ("sqlalchemy", "sqlmodel")),
    ("prometheus-client", ("prometheus_client",)),
    ("event loop and thread pools (asyncio, anyio)", ("asyncio", "anyio", "concurrent")),
)
_PACKAGE_LAYER = {package: name for name, packages in LAYERS for package in packages}
_IDLE_FUNCS = frozenset({"wait", "select", "poll", "_worker", "get"})
_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^():]+):\d+\)$")


def _layer(file: str) -> str | None:
    parts = Path(file).parts[:-1]
    if "site-packages" in parts:  # a library: the package right after site-packages
        parts = parts[parts.index("site-packages") + 1 :][:1]
    for part in reversed(parts):  # the stdlib's asyncio/, our chatmon/
        if part in _PACKAGE_LAYER:
            return _PACKAGE_LAYER[part]
    return None


_OUR_CODE, _EVENT_LOOP = LAYERS[0][0], LAYERS[-1][0]


def _owner(frames: list[re.Match[str]]) -> str:
    """The layer a sample's CPU is charged to.

    The outermost library of the innermost run of library frames: LiteLLM calling
    pydantic is LiteLLM's, Reflex calling pickle is Reflex's, and our code (or the
    event loop) only when no library is below it.
    """
    owner: str | None = None
    for frame in reversed(frames):
        layer = _layer(frame["file"])
        if layer in (_OUR_CODE, _EVENT_LOOP):
            return owner or layer
        if layer is not None:
            owner = layer
    return owner or "other"


@contextmanager
def record(pid: int, path: Path, *, rate: int = 100) -> Iterator[None]:
    """Sample ``pid`` and its children into ``path`` while the block runs."""
    exe = shutil.which("py-spy")
    if exe is None:
        raise RuntimeError("py-spy is not installed: .venv/bin/pip install -r requirements-dev.txt")
    process = subprocess.Popen(
        [
            exe,
            "record",
            "--pid",
            str(pid),
            "--subprocesses",
            "--nonblocking",
            "--full-filenames",
            "--rate",
            str(rate),
            "--format",
            "raw",
            "--output",
            str(path),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield
    finally:
        stop(process, sig=signal.SIGINT, timeout=60)  # py-spy writes its output on SIGINT


def _samples(path: Path) -> Iterator[tuple[list[str], int]]:
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            yield stack.split(";"), int(count)


def _short(file: str) -> str:
    parts = Path(file).parts
    if "site-packages" in parts:
        parts = parts[parts.index("site-packages") + 1 :]
    return "/".join(parts[-3:])


def summary(path: Path, *, top: int = 12) -> list[str]:
    """The profile's top lines: busy samples by layer, then the busiest functions (self)."""
    layers: collections.Counter[str] = collections.Counter()
    functions: collections.Counter[str] = collections.Counter()
    busy = idle = 0
    for frames, count in _samples(path):
        parsed = [m for f in frames if (m := _FRAME.match(f))]
        if not parsed:
            continue
        leaf = parsed[-1]
        if leaf["func"].rsplit(".", 1)[-1] in _IDLE_FUNCS and leaf["file"].endswith(
            ("threading.py", "selectors.py", "thread.py", "popen_fork.py", "queue.py")
        ):  # a thread or the event loop waiting (py-spy without --idle still catches some)
            idle += count
            continue
        busy += count
        functions[f"{leaf['func']} ({_short(leaf['file'])})"] += count
        layers[_owner(parsed)] += count
    if not busy:
        return ["# profile: no busy samples"]
    lines = [f"# profile: {busy} busy samples ({busy / (busy + idle):.0%} of all); by layer:"]
    lines += [f"#   {n / busy:6.1%}  {name}" for name, n in layers.most_common()]
    lines.append("# top functions (self time):")
    lines += [f"#   {n / busy:6.1%}  {name}" for name, n in functions.most_common(top)]
    return lines


if __name__ == "__main__":
    if len(sys.argv) < 2:  # `make bench` runs every bench module: nothing to summarise
        print("# usage: python -m bench.pyspy PROFILE.txt (written by bench.concurrency --profile)")
        raise SystemExit(0)
    for output in summary(Path(sys.argv[1])):
        print(output)
