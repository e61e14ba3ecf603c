"""py-spy around a load: where the server's CPU goes, summed by layer.

``record(pid, path)`` samples a process tree (``py-spy record --subprocesses``, the raw
collapsed-stack format) for as long as the ``with`` block runs; ``summary(path)`` reads
the stacks back and prints the top of the profile twice: by layer (Reflex state
handling, LiteLLM chunk parsing, the websocket and HTTP plumbing, our code) and by
function (self time). A sample counts for the layer of its innermost frame that belongs
to a known layer, so "Reflex" means time spent in Reflex or below it in code only
Reflex calls (pickle, json) rather than time Reflex merely waited on.

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

# Innermost matching frame wins; checked in this order for each frame.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("chatmon (our code)", ("/chatmon/",)),
    ("LiteLLM (chunk parsing, logging)", ("/litellm/",)),
    ("OpenAI client + pydantic", ("/openai/", "/pydantic/", "/pydantic_core/")),
    ("httpx/httpcore (upstream HTTP)", ("/httpx/", "/httpcore/", "/h11/", "/anyio/")),
    ("Reflex state handling", ("/reflex/", "/reflex_base/")),
    ("socket.io/engine.io (websocket frames)", ("/socketio/", "/engineio/", "/granian/",
                                                "/websockets/", "/wsproto/")),
    ("SQLAlchemy (database)", ("/sqlalchemy/", "/sqlmodel/")),
    ("prometheus-client", ("/prometheus_client/",)),
    ("asyncio event loop", ("/asyncio/",)),
)
_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^():]+):\d+\)$")


def _layer(file: str) -> str | None:
    for name, needles in LAYERS:
        if any(needle in file for needle in needles):
            return name
    return None


@contextmanager
def record(pid: int, path: Path, *, rate: int = 100) -> Iterator[None]:
    """Sample ``pid`` and its children into ``path`` while the block runs."""
    exe = shutil.which("py-spy")
    if exe is None:
        raise RuntimeError("py-spy is not installed: .venv/bin/pip install -r requirements-dev.txt")
    process = subprocess.Popen(
        [exe, "record", "--pid", str(pid), "--subprocesses", "--nonblocking", "--idle",
         "--rate", str(rate), "--format", "raw", "--output", str(path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    try:
        yield
    finally:
        process.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()


def _samples(path: Path) -> Iterator[tuple[list[str], int]]:
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            yield stack.split(";"), int(count)


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
        if leaf["func"] in ("select", "poll", "epoll_wait", "_run_once") and any(
            "selectors.py" in m["file"] for m in parsed[-2:]
        ):
            idle += count
            continue
        busy += count
        functions[f"{leaf['func']} ({Path(leaf['file']).name})"] += count
        layer = next((lay for m in reversed(parsed) if (lay := _layer(m["file"]))), "other")
        layers[layer] += count
    if not busy:
        return ["# profile: no busy samples"]
    lines = [f"# profile: {busy} busy samples ({busy / (busy + idle):.0%} of all); by layer:"]
    lines += [f"#   {n / busy:6.1%}  {name}" for name, n in layers.most_common()]
    stack = sum(layers[name] for name, _ in LAYERS[1:4])
    lines.append(f"#   {stack / busy:6.1%}  = the LiteLLM stack (litellm, openai, pydantic, httpx)")
    lines.append("# top functions (self time):")
    lines += [f"#   {n / busy:6.1%}  {name}" for name, n in functions.most_common(top)]
    return lines


if __name__ == "__main__":
    for output in summary(Path(sys.argv[1])):
        print(output)
