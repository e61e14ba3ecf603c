"""The "Did the change help?" card's rows: figures with their intervals in words."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import Session

from chatmon.presenters import versions as versions_view
from chatmon.services.versions import METRICS, Estimate, Metric
from tests.units.services.test_version_compare import NEW, OLD, T, add, change


def _metric(key: str) -> Metric:
    return next(m for m in METRICS if m.key == key)


def test_figures_read_with_their_intervals() -> None:
    assert versions_view.shown(_metric("satisfaction"), Estimate(0.81, 0.77, 0.85, 400)) == (
        "81 % (77–85 %)"
    )
    assert versions_view.shown(_metric("latency_p95"), Estimate(1.5, 1.25, 2.0, 60)) == (
        "1.50 s (1.25–2.00 s)"
    )
    assert versions_view.shown(_metric("cost_per_request"), Estimate(0.002, None, None, 1)) == (
        "$0.0020"
    )
    assert versions_view.shown(_metric("error_rate"), Estimate(None, None, None, 0)) == "–"
    assert versions_view.shown(_metric("implicit_flag_rate"), Estimate(None, None, None, 0)) == (
        "not recorded"
    )


def test_a_change_card_says_what_changed_and_how_it_went(session: Session) -> None:
    add(session, start=T - timedelta(minutes=55), count=400, ups=324, downs=76)
    add(session, start=T + timedelta(minutes=1), count=400, version=NEW, ups=288, downs=112)
    change(session)
    card = versions_view.load(session, start=T - timedelta(hours=1), end=T + timedelta(hours=1))
    (shown,) = card.changes
    assert shown.label == f"system prompt {OLD[:8]} → {NEW[:8]}"
    assert shown.verdict == "worse"
    assert shown.at == "2026-11-20 12:00 UTC"
    assert shown.sides == "1 h each side: 400 requests before, 400 after"
    satisfaction = shown.figures[0]
    assert (satisfaction.label, satisfaction.outcome) == ("satisfaction", "worse")
    assert satisfaction.before.startswith("81 % (") and satisfaction.after.startswith("72 % (")
    assert [line.version for line in card.versions] == [NEW, OLD]
