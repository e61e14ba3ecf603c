"""The protocol peers' shared server, over real HTTP: bodies decoded, hang and release."""

from __future__ import annotations

import gzip
import threading
import zlib
from dataclasses import dataclass

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from chatmon.devtools.http_receiver import (
    HttpReceiver,
    ReceiverState,
    hold_while_hung,
    read_body,
    receiver_app,
)


@dataclass(kw_only=True)
class EchoState(ReceiverState):
    answered: int = 0


async def echo(request: Request) -> Response:
    state: EchoState = request.app.state.receiver
    await hold_while_hung(request, state)
    body = await read_body(request)
    state.raw_bodies.append(body)
    state.answered += 1
    return JSONResponse({"length": len(body)})


class EchoReceiver(HttpReceiver):
    name = "echo receiver"
    state: EchoState

    def __init__(self) -> None:
        super().__init__()
        self.state = EchoState()

    def create_app(self) -> Starlette:
        return receiver_app([Route("/echo", echo, methods=["POST"])], self.state)


def test_bodies_are_recorded_decompressed_whatever_the_encoding() -> None:
    with EchoReceiver() as receiver:
        for encoding, body in (
            ("", b"plain"),
            ("gzip", gzip.compress(b"zipped")),
            ("deflate", zlib.compress(b"deflated")),
        ):
            headers = {"content-encoding": encoding} if encoding else {}
            response = httpx.post(f"{receiver.url}/echo", content=body, headers=headers)
            assert response.status_code == 200
    assert receiver.state.raw_bodies == [b"plain", b"zipped", b"deflated"]


def test_a_hung_request_is_answered_once_the_hang_is_off() -> None:
    with EchoReceiver() as receiver:
        receiver.set_hang(True)
        answers: list[int] = []
        client = threading.Thread(
            target=lambda: answers.append(
                httpx.post(f"{receiver.url}/echo", content=b"x", timeout=30).status_code
            )
        )
        client.start()
        receiver.wait_for(lambda r: r.state.hung == 1)
        assert receiver.state.answered == 0 and answers == []
        receiver.set_hang(False)
        client.join(30)
    assert answers == [200] and receiver.state.answered == 1


def test_a_client_that_gives_up_is_not_recorded() -> None:
    with EchoReceiver() as receiver:
        receiver.set_hang(True)
        with pytest.raises(httpx.TimeoutException):
            httpx.post(f"{receiver.url}/echo", content=b"x", timeout=0.5)
        assert receiver.state.hung == 1
    assert receiver.state.raw_bodies == [] and receiver.state.answered == 0


def test_stopping_releases_hung_requests_and_frees_the_port() -> None:
    receiver = EchoReceiver().start()
    url = receiver.url
    receiver.set_hang(True)
    outcomes: list[object] = []

    def post() -> None:
        try:
            outcomes.append(httpx.post(f"{url}/echo", content=b"x", timeout=30).status_code)
        except httpx.HTTPError as exc:
            outcomes.append(type(exc))

    client = threading.Thread(target=post)
    client.start()
    receiver.wait_for(lambda r: r.state.hung == 1)
    receiver.stop()
    client.join(30)
    assert not client.is_alive() and len(outcomes) == 1
    with pytest.raises(httpx.ConnectError):
        httpx.post(f"{url}/echo", content=b"x", timeout=5)


def test_wait_for_names_the_receiver_when_it_times_out() -> None:
    with EchoReceiver() as receiver, pytest.raises(TimeoutError, match="echo receiver"):
        receiver.wait_for(lambda r: r.state.answered > 0, timeout=0.2)
