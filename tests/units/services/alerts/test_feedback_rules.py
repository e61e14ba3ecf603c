"""The dissatisfaction rule, table-driven: the Wilson lower bound waits for evidence."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session

from chatmon.services import request_log
from chatmon.services.alerts import catalog
from chatmon.services.alerts.feedback_rules import (
    VersionFeedback,
    dissatisfaction,
    wilson_lower_bound,
)
from chatmon.services.alerts.inputs import feedback_inputs
from chatmon.services.alerts.rules import Observations, Rule, Thresholds, Verdict
from tests.units.services.stats_factory import T0, make_call, record

NOW = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)
H = timedelta(hours=1)
LIMITS = Thresholds(dissatisfaction_percent=30.0, feedback_window_hours=24.0)


def _obs(*versions: VersionFeedback) -> Observations:
    return Observations(now=NOW, feedback_by_version=versions)


@pytest.mark.parametrize(
    ("downs", "rated", "verdict", "bound"),
    [
        (3, 5, Verdict.OK, 23.07),  # 60 % of five ratings: not evidence yet
        (30, 60, Verdict.FIRING, 37.74),  # 50 % of sixty: it is
        (5, 5, Verdict.FIRING, 56.55),
        (1, 1, Verdict.OK, 20.65),  # one unhappy user never pages
        (0, 40, Verdict.OK, 0.0),
        (18, 40, Verdict.FIRING, 30.71),  # 45 % of forty, just above
        (17, 40, Verdict.OK, 28.51),  # 42.5 % of forty, just below
    ],
)
def test_fires_only_when_the_lower_bound_exceeds_the_threshold(
    downs: int, rated: int, verdict: Verdict, bound: float
) -> None:
    finding = dissatisfaction(_obs(VersionFeedback("v1", rated - downs, downs)), LIMITS)
    assert finding.verdict is verdict, finding.summary
    assert finding.value == pytest.approx(bound, abs=0.01)
    assert finding.threshold == 30.0


@pytest.mark.parametrize(
    ("downs", "rated", "flagged", "verdict", "bound"),
    [
        (0, 0, 10, Verdict.FIRING, 56.55),  # ten flagged, unrated replies: five downs of five
        (0, 0, 2, Verdict.OK, 20.65),  # two flags weigh as one of one: never pages
        (3, 5, 0, Verdict.OK, 23.07),  # 3 of 5 alone is quiet ...
        (3, 5, 4, Verdict.FIRING, 35.89),  # ... with four stopped replies it is evidence
        (17, 40, 2, Verdict.OK, 29.89),  # half weight: two flags do not tip 17 of 40
        (17, 40, 3, Verdict.FIRING, 30.56),  # three do (18.5 of 41.5)
        (0, 40, 10, Verdict.OK, 4.84),  # forty happy ratings outweigh ten flags
        (30, 60, 20, Verdict.FIRING, 45.48),  # 40 of 70
    ],
)
def test_each_flagged_unrated_reply_counts_as_half_a_thumbs_down(
    downs: int, rated: int, flagged: int, verdict: Verdict, bound: float
) -> None:
    version = VersionFeedback("v1", rated - downs, downs, flagged=flagged)
    finding = dissatisfaction(_obs(version), LIMITS)
    assert finding.verdict is verdict, finding.summary
    assert finding.value == pytest.approx(bound, abs=0.01)


def test_the_message_names_the_implicit_signals() -> None:
    version = VersionFeedback("ccc333", 2, 3, flagged=6, signals=(("stopped", 4), ("rephrased", 3)))
    finding = dissatisfaction(_obs(version), LIMITS)
    assert finding.firing
    assert "3 of 5 rated replies thumbs-down (60 %)" in finding.summary
    assert "6 unrated replies flagged (stopped 4, rephrased 3)" in finding.summary
    assert "half a thumbs-down" in finding.summary


def test_flags_without_any_rating_still_read_as_a_sentence() -> None:
    finding = dissatisfaction(_obs(VersionFeedback("v1", 0, 0, flagged=10)), LIMITS)
    assert "0 of 0 rated replies thumbs-down in the last 24 h" in finding.summary
    assert "10 unrated replies flagged" in finding.summary


def test_no_ratings_is_not_enough_data() -> None:
    assert dissatisfaction(_obs(), LIMITS).verdict is Verdict.NOT_ENOUGH_DATA
    empty = _obs(VersionFeedback("v1", 0, 0))
    assert dissatisfaction(empty, LIMITS).verdict is Verdict.NOT_ENOUGH_DATA


def test_the_worst_version_is_named_with_its_top_reasons_and_the_review_link() -> None:
    good = VersionFeedback("aaa111", 50, 5)
    bad = VersionFeedback("bbb222", 30, 30, (("wrong", 20), ("unhelpful", 7), ("other", 2)))
    finding = dissatisfaction(_obs(good, bad), LIMITS)
    assert finding.firing
    assert "prompt version bbb222: 30 of 60" in finding.summary
    assert "top reasons: wrong (20), unhelpful (7), other (2)" in finding.summary
    assert "/api/feedback/review?rating=down&order=worst&prompt_version=bbb222" in finding.summary


def test_a_lower_threshold_fires_earlier() -> None:
    obs = _obs(VersionFeedback("v1", 2, 3))
    assert dissatisfaction(obs, Thresholds(dissatisfaction_percent=20.0)).firing


def test_wilson_bound_edges() -> None:
    assert wilson_lower_bound(0, 0) == 0.0
    assert wilson_lower_bound(0, 10) == 0.0
    assert wilson_lower_bound(1000, 1000) == pytest.approx(0.99617, abs=1e-4)


def test_the_rule_is_in_the_catalog() -> None:
    rules = [f.rule for f in catalog.evaluate(_obs(), LIMITS)]
    assert Rule.DISSATISFACTION in rules
    assert rules == list(Rule)


def test_inputs_count_ratings_and_reasons_per_version_in_the_window(session: Session) -> None:
    calls = [make_call(prompt_version="v1") for _ in range(4)]
    calls += [make_call(prompt_version="v2"), make_call(prompt_version="v1", at=-30 * H)]
    record(session, *calls)
    ratings = [(-1, ("wrong",)), (-1, ("wrong", "unsafe")), (1, ()), (-1, ()), (1, ()), (-1, ())]
    for call, (rating, reasons) in zip(calls, ratings, strict=True):
        request_log.record_feedback(
            session=session, correlation_id=call.correlation_id, rating=rating, reasons=reasons
        )
    session.commit()
    got = feedback_inputs(session=session, start=T0 - 24 * H, end=T0 + H)
    assert got == (
        VersionFeedback("v1", 1, 3, (("wrong", 2), ("unsafe", 1))),
        VersionFeedback("v2", 1, 0, ()),
    )


def test_inputs_weigh_only_unrated_flagged_replies_per_version(session: Session) -> None:
    from chatmon.services import implicit_flags, implicit_signals

    stopped = [make_call(prompt_version="v1", status="cancelled") for _ in range(3)]
    regenerated = make_call(prompt_version="v2")
    rated_up_after_stop = make_call(prompt_version="v1", status="cancelled")
    probe = make_call(prompt_version="v1", status="cancelled", synthetic=True)
    outside = make_call(prompt_version="v1", status="cancelled", at=-30 * H)
    record(session, *stopped, regenerated, rated_up_after_stop, probe, outside)
    implicit_flags.set_flag(
        session=session,
        signal=implicit_signals.REGENERATED,
        correlation_ids=[regenerated.correlation_id, stopped[0].correlation_id],
    )
    request_log.record_feedback(
        session=session, correlation_id=rated_up_after_stop.correlation_id, rating=1
    )
    session.commit()
    got = feedback_inputs(session=session, start=T0 - 24 * H, end=T0 + H)
    assert got == (
        VersionFeedback("v1", 1, 0, (), 3, (("stopped", 3), ("regenerated", 1))),
        VersionFeedback("v2", 0, 0, (), 1, (("regenerated", 1),)),
    )


def test_a_check_gathers_the_ratings_and_the_message_reads_as_percent(session: Session) -> None:
    from chatmon.services.alerts import inputs
    from chatmon.services.alerts.messages import Evidence, build_message
    from chatmon.settings import load_settings

    limits = Thresholds.from_settings(
        load_settings(alert_feedback_window_hours=2, alert_dissatisfaction_threshold=25)
    )
    assert (limits.feedback_window_hours, limits.dissatisfaction_percent) == (2, 25)
    calls = [make_call(prompt_version="v9") for _ in range(10)]
    calls.append(make_call(prompt_version="v9", at=-3 * H))  # outside the 2 h window
    record(session, *calls)
    for i, call in enumerate(calls):
        request_log.record_feedback(
            session=session,
            correlation_id=call.correlation_id,
            rating=-1 if i < 8 or i == 10 else 1,
            reasons=("unhelpful",) if i < 8 else (),
        )
    session.commit()
    obs = inputs.gather(
        session=session,
        limits=limits,
        now=T0 + H,
        open_breakers={},
        breaker_lookback=timedelta(minutes=5),
    )
    assert obs.feedback_by_version == (VersionFeedback("v9", 2, 8, (("unhelpful", 8),)),)
    finding = dissatisfaction(obs, limits)
    assert finding.firing, finding.summary
    message = build_message(
        kind="firing",
        finding=finding,
        evidence=Evidence(),
        window_minutes=limits.window_minutes,
        checked_at=obs.now,
        firing_since=obs.now,
        monitor_url="http://chat.example/monitor",
    )
    assert (message.value, message.threshold) == (f"{finding.value:.1f} %", "25 %")
