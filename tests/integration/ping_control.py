"""An idle ``/ping`` server of the same kind as chatmon's (Granian, ASGI), for comparison.

The ping test asks it at the same moment as the app under attack: whatever slows both
(another process on the shared machine, the scheduler) is the machine's doing; what slows
only the app is the app's. Run as ``python -m tests.integration.ping_control PORT``.
"""

from __future__ import annotations

import sys
from typing import Any


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answers every HTTP request with ``pong``, as chatmon's ``/ping`` does."""
    if scope["type"] == "lifespan":
        while (message := await receive())["type"] != "lifespan.shutdown":
            await send({"type": message["type"] + ".complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain")],
        }
    )
    await send({"type": "http.response.body", "body": b"pong"})


def main() -> None:
    from granian import Granian
    from granian.constants import Interfaces

    port = int(sys.argv[1])
    Granian(
        "tests.integration.ping_control:app",
        address="127.0.0.1",
        port=port,
        interface=Interfaces.ASGI,
        workers=1,
    ).serve()


if __name__ == "__main__":
    main()
