"""The prompt-version rollups give every figure of the versions report that the rows
give: on a generated history written the recorder's way, with changes and a window
that start and end mid-hour, ratings given (and changed) after the fact, implicit flags
set after the fact, probe requests, unpriced and failed requests, on SQLite and
PostgreSQL."""

from __future__ import annotations

import itertools
import math
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlmodel import Session

from chatmon.models import ChangeEvent, LLMVersionHourly, LLMVersionLatencyHourly, PromptVersion
from chatmon.services import implicit_flags, implicit_signals, request_log, version_rollup, versions
from chatmon.services.events import LLMCall

T = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
OLD, NEW, NEWER = "aaaa11112222", "bbbb22223333", "cccc33334444"
TWIN = "aaaa1111ffff"  # shares the 8 characters a change event keeps with OLD
UNPRICED = "ollama/llama3"
_ids = itertools.count(1)


def _call(rng: random.Random, at: datetime, version: str, model: str) -> LLMCall:
    outcome = rng.random()
    status = (
        "error"
        if outcome < 0.06
        else "cancelled"
        if outcome < 0.1
        else "interrupted"
        if outcome < 0.12
        else "ok"
    )
    failed = status in ("error", "interrupted")
    return LLMCall(
        correlation_id=f"vr{next(_ids):010d}",
        session_id="browser-1",
        conversation_id=f"conv-{rng.randrange(40)}",
        model=model,
        provider=model.split("/")[0],
        started_at=at,
        first_token_seconds=None if failed else rng.lognormvariate(-1.0, 0.4),
        total_seconds=rng.lognormvariate(0.3 if version == NEW else 0.0, 0.5),
        input_tokens=None if failed else rng.randrange(5, 500),
        output_tokens=None if failed else rng.randrange(5, 900),
        cost_usd=None if failed or model == UNPRICED else rng.uniform(0.0001, 0.01),
        status=status,
        error_category="server_error" if status == "error" else None,
        retries=0,
        temperature=0.7,
        prompt_version=version,
        synthetic=rng.random() < 0.05,
    )


def _history(session: Session) -> list[str]:
    """Three days of requests around two prompt changes and a model change, written
    in batches as the recorder writes them; returns the correlation ids."""
    rng = random.Random(15)
    prompt_changes = (T + timedelta(hours=19, minutes=23), T + timedelta(hours=47, minutes=41))
    model_change = T + timedelta(hours=33, minutes=17, seconds=9)
    calls: list[LLMCall] = []
    at = T
    while at < T + timedelta(days=3):
        version = OLD if at < prompt_changes[0] else NEW if at < prompt_changes[1] else NEWER
        if version == OLD and rng.random() < 0.2:
            version = TWIN
        model = "openai/fake" if at < model_change else "openai/other"
        if rng.random() < 0.1:
            model = UNPRICED
        calls.append(_call(rng, at, version, model))
        at += timedelta(seconds=rng.uniform(20, 280))
    for low in range(0, len(calls), 97):
        request_log.insert_calls(
            session=session, calls=calls[low : low + 97], price_known=lambda m: m != UNPRICED
        )
        session.commit()
    session.add_all(
        [
            ChangeEvent(kind="prompt", old=OLD[:8], new=NEW[:8], at=prompt_changes[0]),
            ChangeEvent(kind="model", old="openai/fake", new="openai/other", at=model_change),
            ChangeEvent(kind="prompt", old=NEW[:8], new=NEWER[:8], at=prompt_changes[1]),
            ChangeEvent(kind="version", old="1.0", new="1.1", at=T + timedelta(hours=60)),
            PromptVersion(
                hash=NEW, first_seen=prompt_changes[0], last_seen=prompt_changes[1], text="Hi."
            ),
        ]
    )
    session.commit()
    return [call.correlation_id for call in calls]


def _after_the_fact(session: Session, ids: list[str]) -> None:
    """Ratings (some changed, some cleared) and implicit flags (some requests getting a
    second signal) arriving after the rows."""
    rng = random.Random(16)
    for cid in rng.sample(ids, len(ids) // 3):
        for _ in range(rng.choice((1, 1, 1, 2, 3))):
            rating = rng.choice((1, 1, 1, -1, 0))
            request_log.record_feedback(session=session, correlation_id=cid, rating=rating)
        session.commit()
    for signal in (implicit_signals.REGENERATED, implicit_signals.REPHRASED):
        chosen = rng.sample(ids, len(ids) // 8)
        for low in range(0, len(chosen), 50):
            implicit_flags.set_flag(
                session=session, signal=signal, correlation_ids=chosen[low : low + 50]
            )
            session.commit()


def _same(rolled: Any, raw: Any, where: str = "report") -> None:
    """Equal, floats to within rounding (sums added up in another order)."""
    if isinstance(raw, dict):
        assert set(rolled) == set(raw), where
        for key in raw:
            _same(rolled[key], raw[key], f"{where}.{key}")
    elif isinstance(raw, list):
        assert len(rolled) == len(raw), where
        for index, (a, b) in enumerate(zip(rolled, raw, strict=True)):
            _same(a, b, f"{where}[{index}]")
    elif isinstance(raw, float) and isinstance(rolled, float):
        assert math.isclose(rolled, raw, rel_tol=1e-9, abs_tol=1e-15), where
    else:
        assert rolled == raw, where


def _rollups(session: Session) -> tuple[dict[Any, tuple[Any, ...]], dict[Any, int]]:
    counts = {
        (row.hour, row.prompt_version, row.model): (
            row.requests,
            row.errors,
            row.feedback_up,
            row.feedback_down,
            row.flagged,
            row.costed,
            pytest.approx(row.cost_usd, rel=1e-9),
            pytest.approx(row.cost_squares, rel=1e-9),
        )
        for row in session.execute(select(LLMVersionHourly)).scalars()
    }
    bins = {
        (row.hour, row.prompt_version, row.model, row.bin): row.count
        for row in session.execute(select(LLMVersionLatencyHourly)).scalars()
    }
    return counts, bins


@pytest.fixture
def history(session: Session) -> Session:
    _after_the_fact(session, _history(session))
    return session


def test_rollups_give_the_figures_of_the_rows(history: Session) -> None:
    start = T + timedelta(hours=2, minutes=17, seconds=13)  # mid-hour edges
    end = T + timedelta(days=3, minutes=-89)
    rolled = versions.report(session=history, start=start, end=end).to_json()
    raw = versions.report(session=history, start=start, end=end, use_rollups=False).to_json()
    _same(rolled, raw)
    assert [c["kind"] for c in raw["changes"]] == ["prompt", "model", "prompt"]
    assert {v["version"] for v in raw["versions"]} == {OLD, TWIN, NEW, NEWER}
    figures = [c["before"] for c in raw["changes"]] + [c["after"] for c in raw["changes"]]
    assert all(side["requests"] >= versions.MIN_REQUESTS for side in figures)
    assert all(side["implicit_flag_rate"]["value"] > 0 for side in figures)
    assert all(side["satisfaction"]["n"] > 0 for side in figures)


def test_short_windows_inside_one_hour_and_across_one_agree(history: Session) -> None:
    for start, length in (
        (T + timedelta(hours=19, minutes=3), timedelta(minutes=40)),  # within an hour
        (T + timedelta(hours=47, minutes=10), timedelta(minutes=70)),  # one whole hour
        (T + timedelta(hours=33), timedelta(hours=1)),  # exactly one rollup hour
    ):
        end = start + length
        rolled = versions.report(session=history, start=start, end=end).to_json()
        raw = versions.report(session=history, start=start, end=end, use_rollups=False)
        _same(rolled, raw.to_json())


def test_the_recorders_rollups_equal_a_rebuild_from_the_rows(history: Session) -> None:
    kept = _rollups(history)
    version_rollup.rebuild(history)
    history.commit()
    assert _rollups(history) == kept


def test_pruned_hours_leave_the_rollups_with_the_rows(history: Session) -> None:
    cutoff = T + timedelta(hours=30)
    while request_log.prune_rows(session=history, before=cutoff):
        history.commit()
    request_log.prune_rollups(session=history, before=cutoff)
    history.commit()
    counts, bins = _rollups(history)
    assert min(hour for hour, *_ in counts) * 3600 == cutoff.timestamp()
    assert min(hour for hour, *_ in bins) * 3600 == cutoff.timestamp()
    start, end = T, T + timedelta(days=3)
    rolled = versions.report(session=history, start=start, end=end).to_json()
    raw = versions.report(session=history, start=start, end=end, use_rollups=False).to_json()
    _same(rolled, raw)
