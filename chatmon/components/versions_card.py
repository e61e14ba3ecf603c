"""The monitor's "Did the change help?" card: before/after figures per prompt or model
change, each with its 95 % interval and a plain verdict, and the prompt versions."""

from __future__ import annotations

import reflex as rx

from chatmon.presenters.versions import CHOICES, ChangeCard, FigureRow, VersionLine
from chatmon.states.versions import VersionsState


def _verdict_badge(verdict: rx.Var) -> rx.Component:
    return rx.badge(
        verdict,
        color_scheme=rx.match(
            verdict,
            ("worse", "red"),
            ("better", "green"),
            ("mixed", "orange"),
            "gray",
        ),
        variant="soft",
        class_name="change-verdict-kind",
    )


def _figure_row(row: FigureRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(row.label),
        rx.table.cell(row.before),
        rx.table.cell(row.after),
        rx.table.cell(
            rx.text(
                row.outcome,
                size="1",
                color=rx.match(
                    row.outcome,
                    ("worse", rx.color("red", 11)),
                    ("better", rx.color("green", 11)),
                    rx.color("gray", 11),
                ),
            )
        ),
    )


def _change(card: ChangeCard) -> rx.Component:
    return rx.box(
        rx.vstack(
            rx.hstack(
                rx.text(card.label, weight="medium", size="2", class_name="change-label"),
                _verdict_badge(card.verdict),
                rx.text(card.at, size="1", color=rx.color("gray", 11)),
                align="center",
                wrap="wrap",
            ),
            rx.text(card.summary, size="2", class_name="change-verdict"),
            rx.text(card.sides, size="1", color=rx.color("gray", 11)),
            rx.cond(
                card.new_text != "",
                rx.text("new prompt: ", card.new_text, size="1", color=rx.color("gray", 11)),
            ),
            rx.table.root(
                rx.table.header(
                    rx.table.row(
                        *[
                            rx.table.column_header_cell(name)
                            for name in ("figure", "before (95 % interval)", "after", "")
                        ]
                    )
                ),
                rx.table.body(rx.foreach(card.figures, _figure_row)),
                size="1",
                width="100%",
            ),
            spacing="1",
            width="100%",
        ),
        padding="8px 0",
        border_top=f"1px solid {rx.color('gray', 4)}",
        width="100%",
        class_name="change-card",
        id="change-" + card.key,
    )


def _version_row(line: VersionLine) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.code(line.version)),
        rx.table.cell(line.first_seen),
        rx.table.cell(line.last_seen),
        rx.table.cell(line.requests),
        rx.table.cell(line.satisfaction),
        rx.table.cell(line.error_rate),
        rx.table.cell(line.latency_p95),
        rx.table.cell(rx.text(line.preview, size="1", color=rx.color("gray", 11))),
        class_name="version-row",
    )


def _versions_table() -> rx.Component:
    names = ("version", "first seen", "last seen", "requests", "satisfaction", "errors", "p95", "")
    return rx.table.root(
        rx.table.header(rx.table.row(*[rx.table.column_header_cell(n) for n in names])),
        rx.table.body(rx.foreach(VersionsState.versions, _version_row)),
        size="1",
        width="100%",
        id="prompt-versions",
    )


def versions_card() -> rx.Component:
    """The card; it loads when mounted."""
    return rx.card(
        rx.vstack(
            rx.hstack(
                rx.heading("Did the change help?", size="4"),
                rx.select(
                    list(CHOICES),
                    value=VersionsState.window,
                    on_change=VersionsState.set_window,
                    size="1",
                    id="versions-window",
                ),
                rx.button(
                    "Refresh",
                    on_click=VersionsState.load,
                    loading=VersionsState.loading,
                    size="1",
                    variant="soft",
                    id="versions-refresh",
                ),
                align="center",
            ),
            rx.text(
                "Each prompt or model change: the requests just before against just after"
                " (equal windows), 95 % intervals; a figure is better or worse only when the"
                " intervals do not overlap.",
                size="1",
                color=rx.color("gray", 11),
            ),
            rx.cond(
                VersionsState.error != "",
                rx.callout(VersionsState.error, icon="triangle_alert", color_scheme="red"),
            ),
            rx.cond(
                VersionsState.changes.length() > 0,
                rx.foreach(VersionsState.changes, _change),
                rx.cond(
                    VersionsState.loaded,
                    rx.text(
                        "No prompt or model change in this window.",
                        size="2",
                        id="no-changes",
                    ),
                ),
            ),
            rx.heading("Prompt versions", size="3"),
            _versions_table(),
            spacing="2",
            width="100%",
        ),
        on_mount=VersionsState.load,
        width="100%",
        id="versions-card",
    )
