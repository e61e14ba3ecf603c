"""The digest's content, on a real database, and its command-line preview."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import Session

from chatmon.services import digest
from chatmon.settings import load_settings
from tests.units.services.stats_factory import T0, make_call, record

H = timedelta(hours=1)


def test_digest_compares_spend_and_names_the_top_spenders(session: Session) -> None:
    record(
        session,
        make_call(at=-30 * H, cost_usd=1.0),  # the day before
        make_call(at=-2 * H, cost_usd=1.5, conversation_id="conv-big"),
        make_call(at=-1 * H, cost_usd=0.5, conversation_id="conv-small"),
        make_call(at=-1 * H, cost_usd=None, status="error", error_category="timeout"),
    )
    settings = load_settings(daily_budget_usd=10)
    built = digest.build(session=session, settings=settings, now=T0)
    text = built.text
    assert built.subject == "[chatmon] day digest: $2.00 spent, 3 requests"
    assert "## Spend: $2.00" in text and "+100 % vs the period before ($1.00)" in text
    assert "error rate 33.3 %" in text
    assert text.index("conv-big: $1.50") < text.index("conv-small: $0.5000")
    assert "## Top users by spend" in text  # the browsers' owner keys, before conversations
    assert text.index("## Top users by spend") < text.index("## Top conversations by spend")
    assert "daily: $2.00 of $10.00 (20 %)" in text  # the day before is not today's budget
    assert "## Alerts that fired\nnone" in text
    assert "<h3>Budgets</h3>" in built.html


def test_digest_html_escapes_keys(session: Session) -> None:
    record(session, make_call(at=-1 * H, conversation_id="<b>x</b>"))
    built = digest.build(session=session, settings=load_settings(), now=T0)
    assert "<b>x</b>" not in built.html and "&lt;b&gt;x&lt;/b&gt;" in built.html


def test_digest_steady_spend_reads_about_the_same_never_minus_zero(session: Session) -> None:
    record(
        session,
        make_call(at=-30 * H, cost_usd=1.0),  # the day before
        make_call(at=-2 * H, cost_usd=0.999),
    )
    text = digest.build(session=session, settings=load_settings(), now=T0).text
    assert "about the same as the period before ($1.00)" in text and "-0 %" not in text
