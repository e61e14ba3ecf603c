"""Did the change help? The statistics, the comparable windows and the verdicts, on
synthetic request histories around a recorded prompt or model change."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from chatmon.models import ChangeEvent, LLMRequest, PromptVersion
from chatmon.services import histogram, implicit_flags, implicit_signals, request_log, versions
from chatmon.services.prompt_versions import PromptVersionBook
from chatmon.services.prompts import SystemPromptSource
from chatmon.services.versions import (
    Estimate,
    comparable_windows,
    compare_changes,
    mean_interval,
    quantile_interval,
    wilson,
)

T = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)  # the change
OLD, NEW = "aaaa11112222", "bbbb22223333"  # llm_request keeps 12 characters, events 8
_ids = itertools.count(1)


def add(
    session: Session,
    *,
    start: datetime,
    count: int,
    version: str = OLD,
    model: str = "openai/fake",
    ups: int = 0,
    downs: int = 0,
    errors: int = 0,
    latency: float = 1.0,
    cost: float | None = 0.001,
    synthetic: bool = False,
    spread: timedelta = timedelta(minutes=50),
) -> None:
    """``count`` requests spread over ``spread`` from ``start``; the first ``ups`` rated
    up, the next ``downs`` down, the last ``errors`` failed. The rows are written
    directly, so the rollups are then rebuilt from them (what the recorder keeps)."""
    for i in range(count):
        rating = 1 if i < ups else -1 if i < ups + downs else None
        failed = i >= count - errors
        session.add(
            LLMRequest(
                correlation_id=f"r{next(_ids):010d}",
                model=model,
                started_at=start + spread * (i / max(count, 1)),
                latency_seconds=latency,
                latency_bin=histogram.bin_of(latency),
                cost_usd=cost,
                status="error" if failed else "ok",
                prompt_version=version,
                feedback=rating,
                synthetic=synthetic,
            )
        )
    session.commit()
    request_log.rebuild_rollups(session=session)
    session.commit()


def change(
    session: Session,
    *,
    at: datetime = T,
    kind: str = "prompt",
    old: str = OLD[:8],
    new: str = NEW[:8],
) -> None:
    session.add(ChangeEvent(kind=kind, old=old, new=new, at=at))
    session.commit()


def judged(session: Session, *, now: datetime = T + timedelta(hours=1)) -> versions.Change:
    found = compare_changes(session=session, start=now - timedelta(hours=1), end=now)
    assert len(found) == 1
    return found[0]


# --------------------------------------------------------------------------- statistics


def test_wilson_matches_the_published_intervals() -> None:
    none = wilson(0, 10)
    assert none.value == 0 and none.low == 0 and round(none.high or 0, 4) == 0.2775
    half = wilson(5, 10)
    assert (round(half.low or 0, 4), round(half.high or 0, 4)) == (0.2366, 0.7634)
    assert wilson(0, 0) == versions.NOTHING


def test_quantile_interval_brackets_the_nearest_rank_by_order_statistics() -> None:
    counts = {100 + i: 1 for i in range(100)}  # 100 latencies, one per bin
    p50 = quantile_interval(counts, 0.5)
    assert p50.n == 100
    assert p50.value == histogram.bin_value(149)  # the 50th smallest
    # ranks floor(50 - 1.96*5) = 40 and ceil(50 + 9.8) + 1 = 61
    assert (p50.low, p50.high) == (histogram.bin_value(139), histogram.bin_value(160))
    assert quantile_interval({}, 0.95) == versions.NOTHING


def test_quantile_interval_covers_the_true_median_about_95_percent_of_the_time() -> None:
    rng = random.Random(15)
    true_median = 1.0  # of a log-normal centred on 1 s
    covered = 0
    for _ in range(400):
        counts: dict[int, int] = {}
        for _ in range(200):
            index = histogram.bin_of(rng.lognormvariate(0.0, 0.5))
            counts[index] = counts.get(index, 0) + 1
        found = quantile_interval(counts, 0.5)
        assert found.low is not None and found.high is not None
        # the bins are 2 % wide: allow a bin's width either side
        covered += found.low / 1.02 <= true_median <= found.high * 1.02
    assert 0.92 <= covered / 400 <= 0.995


def test_mean_interval_is_the_normal_interval_of_the_sample() -> None:
    values = [1.0, 2.0, 3.0, 4.0]
    found = mean_interval(4, sum(values), sum(v * v for v in values))
    assert found.value == 2.5
    half = 1.959963984540054 * (1.6666666666666667 / 4) ** 0.5
    assert found.low == pytest.approx(2.5 - half) and found.high == pytest.approx(2.5 + half)
    assert mean_interval(1, 3.0, 9.0) == Estimate(3.0, None, None, 1)


def test_comparable_windows_are_equal_and_stop_at_neighbours_and_now() -> None:
    span = timedelta(hours=24)
    assert comparable_windows(at=T, span=span, now=T + timedelta(hours=2)) == (
        T - timedelta(hours=2),
        T,
        T + timedelta(hours=2),
    )
    assert comparable_windows(
        at=T, span=span, now=T + timedelta(days=3), previous=T - timedelta(minutes=30)
    ) == (T - timedelta(minutes=30), T, T + timedelta(minutes=30))
    assert comparable_windows(
        at=T, span=span, now=T + timedelta(days=3), following=T + timedelta(hours=5)
    ) == (T - timedelta(hours=5), T, T + timedelta(hours=5))


# --------------------------------------------------------------------------- verdicts


def test_satisfaction_drop_is_worse_with_the_figures_in_words(session: Session) -> None:
    add(session, start=T - timedelta(minutes=55), count=400, ups=324, downs=76)  # 81 %
    add(session, start=T + timedelta(minutes=1), count=400, version=NEW, ups=288, downs=112)
    change(session)
    found = judged(session)
    assert found.verdict.kind == "worse"
    assert found.verdict.text == "worse: satisfaction 81 % → 72 %, interval does not overlap"
    assert found.before.requests == 400 and found.after.requests == 400
    outcomes = {c.key: c.outcome for c in found.comparisons}
    assert outcomes["satisfaction"] == "worse"
    assert outcomes["latency_p95"] == outcomes["error_rate"] == "same"
    assert outcomes["implicit_flag_rate"] == "same"  # no flagged request on either side


def test_faster_replies_are_better(session: Session) -> None:
    add(session, start=T - timedelta(minutes=55), count=60, latency=2.0)
    add(session, start=T + timedelta(minutes=1), count=60, version=NEW, latency=1.0)
    change(session)
    found = judged(session)
    assert found.verdict.kind == "better"
    slow, fast = (f"{histogram.bin_value(histogram.bin_of(v)):.2f} s" for v in (2.0, 1.0))
    assert found.verdict.text == (  # a bin's value: within 1 % of the latencies in it
        f"better: p50 latency {slow} → {fast}, p95 latency {slow} → {fast},"
        " intervals do not overlap"
    )


def test_worse_and_better_at_once_is_mixed(session: Session) -> None:
    add(session, start=T - timedelta(minutes=55), count=60, latency=2.0)
    add(session, start=T + timedelta(minutes=1), count=60, version=NEW, latency=1.0, errors=30)
    change(session)
    found = judged(session)
    assert found.verdict.kind == "mixed"
    assert "worse error rate 0 % → 50 %" in found.verdict.text
    assert "better p50 latency" in found.verdict.text


def test_a_small_difference_is_no_clear_change(session: Session) -> None:
    add(session, start=T - timedelta(minutes=55), count=50, ups=20, downs=5, errors=1)
    add(session, start=T + timedelta(minutes=1), count=50, version=NEW, ups=18, downs=7, errors=2)
    change(session)
    found = judged(session)
    assert found.verdict.kind == "no clear change"
    assert found.verdict.text == "no clear change: every interval overlaps"


def test_too_few_requests_after_is_not_enough_data(session: Session) -> None:
    add(session, start=T - timedelta(minutes=55), count=100, ups=90, downs=10)
    add(session, start=T + timedelta(minutes=1), count=5, version=NEW, downs=5)
    change(session)
    found = judged(session)
    assert found.verdict.kind == "not enough data"
    assert found.verdict.text == (
        "not enough data: 100 requests before, 5 after (needs 20 on each side)"
    )


def test_synthetic_probe_requests_are_in_no_figure(session: Session) -> None:
    add(session, start=T - timedelta(minutes=55), count=400, ups=324, downs=76)
    add(session, start=T + timedelta(minutes=1), count=400, version=NEW, ups=324, downs=76)
    add(
        session,
        start=T + timedelta(minutes=1),
        count=300,
        version=NEW,
        downs=300,
        errors=300,
        latency=9.0,
        synthetic=True,
    )
    change(session)
    found = judged(session)
    assert found.after.requests == 400
    assert found.verdict.kind == "no clear change"


def test_a_prompt_side_counts_only_its_own_version(session: Session) -> None:
    add(session, start=T - timedelta(minutes=55), count=40)
    # a worker on the new prompt before the change was recorded, and one still on the old
    add(session, start=T - timedelta(minutes=5), count=7, version=NEW, spread=timedelta(minutes=4))
    add(session, start=T + timedelta(minutes=1), count=30, version=NEW)
    add(session, start=T + timedelta(minutes=2), count=3, version=OLD)
    change(session)
    found = judged(session)
    assert (found.before.requests, found.after.requests) == (40, 30)


def test_a_model_change_compares_every_request_of_equal_sides(session: Session) -> None:
    add(session, start=T - timedelta(hours=3), count=50)  # outside the comparable window
    add(session, start=T - timedelta(minutes=55), count=30, errors=0)
    add(
        session,
        start=T + timedelta(minutes=1),
        count=30,
        model="openai/other",
        errors=20,
        version=OLD,
    )
    change(session, kind="model", old="openai/fake", new="openai/other")
    found = judged(session)
    assert found.before.start == T - timedelta(hours=1) and found.after.end == T + timedelta(
        hours=1
    )
    assert found.label == "model openai/fake → openai/other"
    assert found.verdict.text.startswith("worse: error rate 0 % → 67 %")


def test_a_previous_change_bounds_the_before_side(session: Session) -> None:
    add(
        session,
        start=T - timedelta(minutes=55),
        count=40,
        model="openai/older",
        spread=timedelta(minutes=40),
    )
    add(session, start=T - timedelta(minutes=9), count=30, spread=timedelta(minutes=8))
    add(session, start=T + timedelta(minutes=1), count=30, version=NEW, spread=timedelta(minutes=8))
    change(
        session, at=T - timedelta(minutes=10), kind="model", old="openai/older", new="openai/fake"
    )
    change(session)
    found = [
        c
        for c in compare_changes(
            session=session, start=T - timedelta(minutes=30), end=T + timedelta(hours=1)
        )
        if c.kind == "prompt"
    ][0]
    assert found.before.start == T - timedelta(minutes=10)
    assert found.after.end == T + timedelta(minutes=10)
    assert found.before.requests == 30


def test_implicit_flags_set_after_the_fact_are_counted(session: Session) -> None:
    add(session, start=T - timedelta(minutes=55), count=40)
    add(session, start=T + timedelta(minutes=1), count=40, version=NEW)
    rows = session.exec(select(LLMRequest).where(LLMRequest.prompt_version == NEW)).all()
    flagged = [row.correlation_id for row in rows[:30]]
    implicit_flags.set_flag(
        session=session, signal=implicit_signals.REGENERATED, correlation_ids=flagged
    )
    implicit_flags.set_flag(  # a second signal on the same requests: still 30 flagged
        session=session, signal=implicit_signals.REPHRASED, correlation_ids=flagged
    )
    session.commit()
    change(session)
    found = judged(session)
    flags = next(c for c in found.comparisons if c.key == "implicit_flag_rate")
    assert (flags.before.value, flags.after.value) == (0.0, 0.75)
    assert flags.outcome == "worse"


def test_versions_list_kept_and_older_versions_with_figures(session: Session) -> None:
    session.add(
        PromptVersion(hash=NEW, first_seen=T, last_seen=T + timedelta(minutes=50), text="Be brief.")
    )
    session.commit()
    add(session, start=T - timedelta(minutes=55), count=20, ups=3)
    add(session, start=T + timedelta(minutes=1), count=25, version=NEW, downs=2)
    rows = versions.version_rows(
        session=session, start=T - timedelta(hours=1), end=T + timedelta(hours=1)
    )
    assert [row.version for row in rows] == [NEW, OLD]
    assert rows[0].text == "Be brief." and rows[1].text is None
    assert rows[0].figures.requests == 25 and rows[0].figures.satisfaction.value == 0.0
    assert rows[1].first_seen is not None and rows[1].figures.satisfaction.value == 1.0


# --------------------------------------------------------------------------- the table


def test_the_chat_prompt_source_keeps_each_version_served(engine: Engine, tmp_path: Path) -> None:
    clock = [0.0]
    book = PromptVersionBook(engine, refresh=60.0, clock=lambda: clock[0])
    prompt_file = tmp_path / "system_prompt.txt"
    prompt_file.write_text("You are terse.")
    source = SystemPromptSource(prompt_file, listener=book.note)
    first = source.current()
    book.flush()
    with Session(engine) as session:
        row = session.get(PromptVersion, first.version)
        assert row is not None and row.text == "You are terse."
        seen = row.last_seen
    source.current()  # within a minute: no write
    book.flush()
    clock[0] = 61.0
    source.current()
    book.flush()
    with Session(engine) as session:
        row = session.get(PromptVersion, first.version)
        assert row is not None and row.last_seen >= seen
    prompt_file.write_text("You are verbose, and you cite sources.")
    second = source.current()
    book.flush()
    other_worker = PromptVersionBook(engine)
    other_worker.note(second)  # the same version from another worker: an update, no error
    other_worker.flush()
    with Session(engine) as session:
        texts = {row.hash: row.text for row in session.exec(select(PromptVersion)).all()}
    assert texts == {
        first.version: "You are terse.",
        second.version: "You are verbose, and you cite sources.",
    }
    book.close()
    other_worker.close()
