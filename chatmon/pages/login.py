"""The login page (``/login?next=/monitor``).

A real HTML form posting to ``/auth/login`` (chatmon/routes/auth.py): the response sets
the HttpOnly session cookie and redirects to ``next``; a wrong password comes back
here with ``?error=wrong``.
"""

from __future__ import annotations

import reflex as rx

from chatmon.components.post_form import post_form, post_to_backend
from chatmon.states.auth import AuthState


def login_page() -> rx.Component:
    """User name (optional with a shared password) and password."""
    return rx.center(
        rx.card(
            post_form(
                rx.vstack(
                    rx.heading("Sign in to chatmon", size="5"),
                    rx.text(
                        "The monitor shows every conversation's cost and errors, so it "
                        "is not public.",
                        size="2",
                        color=rx.color("gray", 10),
                    ),
                    rx.input(
                        name="user",
                        placeholder="User name (optional)",
                        id="login-user",
                        width="100%",
                        auto_complete="username",
                    ),
                    rx.input(
                        name="password",
                        type="password",
                        placeholder="Password",
                        id="login-password",
                        width="100%",
                        auto_complete="current-password",
                    ),
                    rx.el.input(
                        type="hidden",
                        name="next",
                        value=AuthState.next_path,
                        read_only=True,
                        id="login-next",
                    ),
                    rx.cond(
                        AuthState.login_error != "",
                        rx.text(
                            AuthState.login_error,
                            color=rx.color("red", 11),
                            size="2",
                            id="login-error",
                        ),
                    ),
                    rx.button("Sign in", type="submit", id="login-submit", width="100%"),
                    spacing="3",
                    width="320px",
                ),
                **post_to_backend("/auth/login"),
                id="login-form",
            ),
        ),
        height="100vh",
    )
