"""Who is on the other end of a websocket: the server-issued browser identity.

Reflex keeps the headers of each tab's websocket handshake on the server (it never
sends the ``Cookie`` header to the page), so the identity cookie read here is the one
the browser presented when it connected, checked against this server's signature.
"""

from __future__ import annotations

import reflex as rx

from chatmon import deps
from chatmon.access import cookies_of
from chatmon.services.identity import COOKIE_NAME


def owner_of(state: rx.State) -> str | None:
    """The owner key of the browser behind ``state``, or None without a valid identity."""
    token = cookies_of((state.router.headers.cookie or "")[:8192]).get(COOKIE_NAME)
    return deps.identity_issuer().owner_of(token)


def client_ip_of(state: rx.State) -> str:
    """The client's address as Reflex resolved it (honouring trusted proxy hops)."""
    return state.router.session.client_ip or ""
