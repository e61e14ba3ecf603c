"""The reply while it streams: text rebuilt in the page from append-only frames.

``live_text()`` is a frontend var: a hook (``assets/live_reply.js``) that applies each
:attr:`LiveState.f` to the text it holds, asks for a resync when a frame is
missing, and returns the text. Rendering it with :func:`markdown_body` gives the live
reply exactly the Markdown, styling and sanitising of finished messages, so nothing
jumps when the finished message replaces it.
"""

from __future__ import annotations

import json

import reflex as rx
from reflex_base.utils import format
from reflex_base.utils.imports import ImportVar
from reflex_base.vars.base import VarData

from chatmon.states.live import LiveState

SCRIPT = "live_reply.js"  # in assets/
TEXT_JS_NAME = "chatmon_live_text"


def live_text(container_id: str) -> rx.Var[str]:
    """The live reply's text in the page; ``container_id`` is the list to keep scrolled."""
    frame = LiveState.f
    resync = format.format_event_handler(LiveState.resync)  # type: ignore[arg-type]  # Reflex types a handler on the class as its EventCallback wrapper
    hook = (
        f"const {TEXT_JS_NAME} = useLiveReply({frame!s}, {json.dumps(resync)}, "
        f"{json.dumps(container_id)});"
    )
    script = rx.asset(SCRIPT).importable_path
    var_data = VarData.merge(
        frame._get_all_var_data(),
        VarData(imports={script: [ImportVar(tag="useLiveReply")]}, hooks={hook: None}),
    )
    return rx.Var(_js_expr=TEXT_JS_NAME, _var_type=str, _var_data=var_data)
