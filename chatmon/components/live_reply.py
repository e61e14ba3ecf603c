"""The reply while it streams, and finished messages, as the page rebuilds them.

``live_text()`` is a frontend var: a hook (``assets/live_reply.js``) that applies each
:attr:`LiveState.f` to the text it holds, asks for a resync when a frame is
missing, and returns the text. Rendering it with :func:`markdown_body` gives the live
reply exactly the Markdown, styling and sanitising of finished messages, so nothing
jumps when the finished message replaces it.

``page_message()`` is a message as the page renders it: the server sends a message
without its default fields, and a reply without the text the live frames carried
(:mod:`chatmon.states.message_wire`); ``chatmonMessage`` fills both back in.
``live_sync()``, always on the chat page, applies every frame and asks for the text
a finished message lacks.
"""

from __future__ import annotations

import json
from typing import Any

import reflex as rx
from reflex_base.utils import format
from reflex_base.utils.imports import ImportVar
from reflex_base.vars.base import VarData

from chatmon.states.live import LiveState
from chatmon.states.message_wire import wire_defaults

SCRIPT = "live_reply.js"  # in assets/
TEXT_JS_NAME = "chatmon_live_text"
SYNC_JS_NAME = "chatmon_live_seq"


def _script(tag: str) -> VarData:
    return VarData(imports={rx.asset(SCRIPT).importable_path: [ImportVar(tag=tag)]})


def _resync() -> str:
    return json.dumps(format.format_event_handler(LiveState.resync))  # type: ignore[arg-type]  # Reflex types a handler on the class as its EventCallback wrapper


def live_text(container_id: str) -> rx.Var[str]:
    """The live reply's text in the page; ``container_id`` is the list to keep scrolled."""
    frame = LiveState.f
    hook = (
        f"const {TEXT_JS_NAME} = useLiveReply({frame!s}, {_resync()}, {json.dumps(container_id)});"
    )
    var_data = VarData.merge(
        frame._get_all_var_data(), _script("useLiveReply"), VarData(hooks={hook: None})
    )
    return rx.Var(_js_expr=TEXT_JS_NAME, _var_type=str, _var_data=var_data)


def live_sync() -> rx.Component:
    """An empty element whose hook applies every live frame (see the module docstring)."""
    frame = LiveState.f
    hook = f"const {SYNC_JS_NAME} = useLiveSync({frame!s}, {_resync()});"
    var_data = VarData.merge(
        frame._get_all_var_data(), _script("useLiveSync"), VarData(hooks={hook: None})
    )
    seq = rx.Var(_js_expr=SYNC_JS_NAME, _var_type=int, _var_data=var_data)
    return rx.el.span(id="live-sync", data_seq=seq, hidden=True)


def page_message(message: rx.Var, view: type, *, per_frame: bool) -> Any:
    """``message`` (a ``view`` from the state) with its defaults and live text filled in.

    ``per_frame``: re-render with every live frame, for the lists where a reply can
    still be waiting for its text (the newest); the page's loaded list never does.
    """
    frame = LiveState.f if per_frame else None
    frame_js = str(frame) if frame is not None else "null"
    js = f"chatmonMessage({message!s}, {json.dumps(wire_defaults(view))}, {frame_js})"
    var_data = VarData.merge(
        message._get_all_var_data(),
        frame._get_all_var_data() if frame is not None else None,
        _script("chatmonMessage"),
    )
    return rx.Var(_js_expr=js, _var_type=view, _var_data=var_data).guess_type()
