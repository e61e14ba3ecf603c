"""The composer's box empties itself when its message is accepted.

The server used to send ``rx.set_value("message", "")`` with every accepted send: an
event of ~94 bytes per turn, a third of a short reply's own size. The page knows
as much: a send is accepted when its message appears as ``ChatState.question``
(``assets/composer_clear.js``).
"""

from __future__ import annotations

import json

import reflex as rx
from reflex_base.utils.imports import ImportVar
from reflex_base.vars.base import VarData

from chatmon.states.chat import ChatState

SCRIPT = "composer_clear.js"  # in assets/
JS_NAME = "chatmon_sent_id"


def clear_after_send(box_id: str) -> rx.Component:
    """An empty element whose hook empties ``#box_id`` once a send is accepted."""
    question = ChatState.question
    hook = f"const {JS_NAME} = useClearAfterSend({question!s}?.at(-1)?.id, {json.dumps(box_id)});"
    var_data = VarData.merge(
        question._get_all_var_data(),
        VarData(
            imports={rx.asset(SCRIPT).importable_path: [ImportVar(tag="useClearAfterSend")]},
            hooks={hook: None},
        ),
    )
    sent = rx.Var(_js_expr=JS_NAME, _var_type=int, _var_data=var_data)
    return rx.el.span(id="composer-sent", data_sent=sent, hidden=True)
