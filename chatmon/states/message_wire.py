"""How a chat message travels to the page: only what the page does not already know.

Reflex sends a message list whole whenever it changes, and a message as all its fields.
For a 50-word reply that was ~600 bytes once the reply had already streamed: its text
a second time, and eight fields holding their defaults. :func:`compact_wire` registers a
Reflex serializer for the message dataclass that

* leaves out every field equal to its default (the page fills them back in, from
  :func:`wire_defaults`: ``assets/live_reply.js`` ``chatmonMessage``);
* for a reply whose text the page already holds from the live frames
  (``live_seq >= 0``: :meth:`chatmon.states.live.LivePublisher.page_holds`), sends
  ``"live": [seq, tail]`` instead of ``content``: the page's text as of live frame
  ``seq`` of this reply (``correlation_id``), then ``tail``, what the frames never carried
  (the last few words, a "(stopped)" mark). The page checks it holds that frame (else it
  asks for the text again, see :class:`chatmon.states.live.LiveState`).

The state itself keeps the whole message: this is the wire form only. A page that lost
its live text (a reload) gets the conversation again from the database on load, whose
messages never carry ``live_seq``.
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

from reflex_base.utils.serializers import serializer

T = TypeVar("T")

ALWAYS_SENT = ("id", "role")  # what a page needs of every message
LIVE_FIELDS = ("live_seq", "live_chars")  # server-side bookkeeping, never sent as such


def wire_defaults(cls: type) -> dict[str, Any]:
    """The fields the wire form may leave out, with the value the page fills in."""
    return {
        f.name: f.default
        for f in dataclasses.fields(cls)
        if f.default is not dataclasses.MISSING
        and f.name not in ALWAYS_SENT
        and f.name not in LIVE_FIELDS
    }


def to_wire(message: Any, defaults: dict[str, Any]) -> dict[str, Any]:
    """The message as the page receives it (see the module's docstring)."""
    out: dict[str, Any] = {}
    live_seq = getattr(message, "live_seq", -1)
    for f in dataclasses.fields(message):
        name = f.name
        if name in LIVE_FIELDS or (name == "content" and live_seq >= 0):
            continue
        value = getattr(message, name)
        if name in defaults and value == defaults[name]:
            continue
        out[name] = value
    if live_seq >= 0:
        out["live"] = [live_seq, message.content[message.live_chars :]]
    return out


def compact_wire(cls: type[T]) -> type[T]:
    """Class decorator: the message dataclass ``cls`` goes to the page as :func:`to_wire`."""
    defaults = wire_defaults(cls)

    def serialize_message(message: Any) -> dict[str, Any]:
        return to_wire(message, defaults)

    # Reflex finds the type a serializer is for in its argument's annotation.
    serialize_message.__annotations__ = {"message": cls, "return": dict}
    serializer(serialize_message, to=dict)
    return cls
