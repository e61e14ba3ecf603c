"""A plain HTML form the browser itself submits (``POST``), with no Reflex handler.

``rx.el.form`` and ``rx.form`` always attach a submit handler that prevents the
browser's own submission (they send the fields over the websocket instead). The login
form must be a real POST, because only an HTTP response can set the HttpOnly session
cookie, so it is this element instead.
"""

from __future__ import annotations

from typing import Any

from reflex_base.components.component import field
from reflex_base.constants import Dirs
from reflex_base.utils.imports import ImportVar
from reflex_base.vars.base import Var, VarData
from reflex_components_core.el.elements.base import BaseHTML

_BACKEND_IMPORTS = VarData(
    imports={
        f"$/{Dirs.STATE_PATH}": [ImportVar(tag="getBackendURL")],
        "$/env.json": [ImportVar(tag="env", is_default=True)],
    }
)


class PostForm(BaseHTML):
    """``<form method="post" action=...>``."""

    tag = "form"

    action: Var[str] = field(doc="URL the form's fields are posted to")
    method: Var[str] = field(doc="HTTP method (post)")


post_form = PostForm.create


def post_to_backend(path: str) -> dict[str, Any]:
    """Props that post a form to ``path`` on the backend as the browser reaches it.

    The HTML says ``action=path`` (right in `make run`, where pages and backend share a
    port, even before the page's scripts run). At submit time the action becomes the
    backend's origin + ``path``: the API port in `make dev` and in a static export. It is
    set then, not rendered, because a prerendered attribute is never patched on
    hydration.
    """
    on_submit = Var(
        _js_expr=(
            "((event) => { event.currentTarget.action = "
            f"getBackendURL(env.PING).origin + {path!r}; }})"
        ),
        _var_data=_BACKEND_IMPORTS,
    )
    return {"action": path, "method": "post", "custom_attrs": {"onSubmit": on_submit}}
