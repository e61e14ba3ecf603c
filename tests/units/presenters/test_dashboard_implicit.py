"""The monitor shows implicit signals beside the thumbs: a KPI card and the request detail."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import Session

from chatmon.presenters import dashboard as view
from chatmon.presenters.requests import load_detail
from chatmon.services import implicit_flags, implicit_signals
from tests.units.services.stats_factory import T0, make_call, record

M = timedelta(minutes=1)


def _query() -> view.DashboardQuery:
    return view.DashboardQuery(start=T0, end=T0 + timedelta(hours=1))


def test_no_signals_shows_zero_and_no_detail(session: Session) -> None:
    record(session, make_call(at=M))
    kpis = view.load(session, _query()).kpis
    assert (kpis.implicit_flagged, kpis.implicit_detail) == ("0", "")


def test_the_card_counts_flagged_requests_and_names_each_signal(session: Session) -> None:
    calls = [make_call(at=i * M) for i in range(7)]
    calls.append(make_call(at=8 * M, status="cancelled"))
    calls.append(make_call(at=9 * M, status="cancelled"))
    calls.append(make_call(at=10 * M, status="cancelled", synthetic=True))  # a probe: not shown
    record(session, *calls)
    implicit_flags.set_flag(
        session=session,
        signal=implicit_signals.ABANDONED,
        correlation_ids=[calls[0].correlation_id, calls[8].correlation_id],
    )
    session.commit()
    kpis = view.load(session, _query()).kpis
    assert kpis.implicit_flagged == "3 (33.3 %)"
    assert kpis.implicit_detail == "2 stopped · 2 abandoned after an error"
    detail = load_detail(session, calls[8].correlation_id)
    assert detail is not None
    labels = {f.label: f.value for f in detail.fields}
    assert labels["Implicit signals"] == "stopped, abandoned after an error"
    plain = load_detail(session, calls[1].correlation_id)
    assert plain is not None
    assert {f.label: f.value for f in plain.fields}["Implicit signals"] == "none"
