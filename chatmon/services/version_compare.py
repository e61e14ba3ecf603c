"""Did the change help? Before/after figures around each change of system prompt or model.

For every change of prompt version or model (a ``change_event`` of kind ``prompt`` or
``model``) in a window, the requests just before it are compared with the requests just
after it, and each figure gets a 95 % confidence interval:

- **requests**, and the **error rate** (``error`` / ``interrupted`` of all requests),
  **satisfaction** (thumbs-up share of the rated requests) and the **implicit-flag
  rate** (flagged share of all requests): Wilson score intervals.
- **p50 / p95 latency**: the distribution-free interval of a quantile, read off the
  stored log-scale histogram bins (``latency_bin``, :mod:`chatmon.services.histogram`).
  The ``q``-quantile of ``n`` values lies, with 95 % confidence, between the order
  statistics of ranks ``floor(nq - 1.96 sqrt(nq(1-q)))`` and
  ``ceil(nq + 1.96 sqrt(nq(1-q))) + 1`` (the normal approximation of the binomial
  count of values below the quantile; Conover, *Practical Nonparametric Statistics*,
  §3.2). The rank's bin gives the value to within 1 %, so no row is read and nothing
  is resampled.
- **cost per request** (over the requests with a known cost): the mean with a normal
  interval, ``mean ± 1.96 s / sqrt(n)`` from the count, sum and sum of squares (the
  central limit theorem; below :data:`MIN_REQUESTS` costs it is "not enough data").

**Comparable windows.** Both sides have the same length: as long as the window asked
for, but never reaching past the previous or next change (of prompt, model or chatmon
version: their effects would mix in) nor past now. For a prompt change the before side
counts only requests of the old version and the after side only the new one (a worker
may pick up a new prompt file slightly before the change is recorded); for a model
change, every request of each side counts. Synthetic probe requests are in no figure.

**Verdict.** A figure is *better* or *worse* only when the two 95 % intervals do not
overlap (a conservative test: overlapping intervals can still hide a real difference,
but non-overlapping ones rarely arise by chance). The change's verdict is ``worse``
(something got worse, nothing better), ``better``, ``mixed``, ``no clear change``, or
``not enough data`` when either side has fewer than :data:`MIN_REQUESTS` requests.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Boolean, Integer, String, and_, case, func, literal_column
from sqlalchemy.sql.expression import ColumnElement
from sqlmodel import Session, col, select

from chatmon.models import LLMRequest, PromptVersion
from chatmon.services import histogram, prompt_versions
from chatmon.services.alerts import changes as change_events
from chatmon.services.sql_time import to_utc

Z95 = 1.959963984540054  # the two-sided 95 % normal quantile
MIN_REQUESTS = 20  # per side, for any verdict at all
MIN_RATED = 10  # rated requests per side, for a satisfaction verdict
MAX_CHANGES = 20
MAX_VERSIONS = 20
ERROR_STATUSES = ("error", "interrupted")
COMPARED_KINDS = ("prompt", "model")
BOUNDARY_KINDS = ("prompt", "model", "version")  # what else would mix into a side

# HOOK (implicit feedback): the llm_request column the implicit-dissatisfaction signals
# land in (a reply stopped early, regenerated, rephrased, abandoned after an error). Until
# the model has it, the implicit-flag rate is reported as not recorded (value null). A
# boolean, an integer (non-zero: flagged) or a text of flag names (non-empty) all work.
IMPLICIT_FLAG_COLUMN = "implicit_flags"


# --------------------------------------------------------------------------- statistics


@dataclass(frozen=True)
class Estimate:
    """A figure with its 95 % interval; ``n`` is the sample behind it (``value`` None:
    nothing to estimate from)."""

    value: float | None
    low: float | None
    high: float | None
    n: int

    def to_json(self) -> dict[str, Any]:
        return {"value": self.value, "low": self.low, "high": self.high, "n": self.n}


NOTHING = Estimate(None, None, None, 0)


def wilson(successes: int, n: int, z: float = Z95) -> Estimate:
    """The share ``successes / n`` with its Wilson score interval."""
    if n <= 0:
        return NOTHING
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    low = 0.0 if successes <= 0 else max(0.0, centre - half)  # exact at the ends: no
    high = 1.0 if successes >= n else min(1.0, centre + half)  # rounding dust
    return Estimate(p, low, high, n)


def _value_at_rank(counts: Mapping[int, int], wanted: int) -> float:
    seen = 0
    index = 0
    for index in sorted(counts):
        seen += counts[index]
        if seen >= wanted:
            break
    return histogram.bin_value(index)


def quantile_interval(counts: Mapping[int, int], quantile: float, z: float = Z95) -> Estimate:
    """The nearest-rank ``quantile`` of a latency histogram ``{bin: count}`` and its
    distribution-free interval (order statistics; see the module's docstring)."""
    counts = {index: count for index, count in counts.items() if count > 0}
    n = sum(counts.values())
    if n <= 0:
        return NOTHING
    spread = z * math.sqrt(n * quantile * (1 - quantile))
    low_rank = max(1, math.floor(n * quantile - spread))
    high_rank = min(n, math.ceil(n * quantile + spread) + 1)
    return Estimate(
        _value_at_rank(counts, histogram.rank(quantile, n)),
        _value_at_rank(counts, low_rank),
        _value_at_rank(counts, high_rank),
        n,
    )


def mean_interval(n: int, total: float, squares: float, z: float = Z95) -> Estimate:
    """A mean from its count, sum and sum of squares, with a normal interval."""
    if n <= 0:
        return NOTHING
    mean = total / n
    if n < 2:
        return Estimate(mean, None, None, n)
    variance = max(0.0, (squares - n * mean * mean) / (n - 1))
    half = z * math.sqrt(variance / n)
    return Estimate(mean, max(0.0, mean - half), mean + half, n)


# --------------------------------------------------------------------------- one side


@dataclass(frozen=True)
class Side:
    """The figures of one side of a change (or of one version over a window)."""

    start: datetime
    end: datetime
    requests: int = 0
    error_rate: Estimate = NOTHING
    latency_p50: Estimate = NOTHING
    latency_p95: Estimate = NOTHING
    cost_per_request: Estimate = NOTHING
    satisfaction: Estimate = NOTHING
    implicit_flag_rate: Estimate = NOTHING  # value None: implicit flags are not recorded

    def estimate(self, name: str) -> Estimate:
        value = getattr(self, name)
        assert isinstance(value, Estimate)
        return value

    def to_json(self) -> dict[str, Any]:
        return {
            "start": _iso(self.start),
            "end": _iso(self.end),
            "requests": self.requests,
            **{metric.key: self.estimate(metric.key).to_json() for metric in METRICS},
        }


def implicit_flag_expr() -> ColumnElement[int] | None:
    """1 for a flagged request, else 0; None while llm_request has no implicit flags
    (see :data:`IMPLICIT_FLAG_COLUMN`)."""
    column = getattr(LLMRequest, IMPLICIT_FLAG_COLUMN, None)
    if column is None:
        return None
    kind = getattr(column, "type", None)
    if isinstance(kind, Boolean):
        flagged: ColumnElement[bool] = column.is_(True)
    elif isinstance(kind, String):
        flagged = func.coalesce(column, "") != ""
    elif isinstance(kind, Integer):
        flagged = func.coalesce(column, 0) != 0
    else:
        return None
    return case((flagged, 1), else_=0)


def _count_if(condition: ColumnElement[bool]) -> Any:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


@dataclass
class _Tally:
    """Sums of one side (or one version) and its latency histogram."""

    requests: int = 0
    errors: int = 0
    ups: int = 0
    downs: int = 0
    costed: int = 0
    cost: float = 0.0
    cost_squares: float = 0.0
    flagged: int = 0
    bins: dict[int, int] = field(default_factory=dict)
    first: datetime | None = None
    last: datetime | None = None

    def add(self, values: Sequence[Any]) -> None:
        index, requests, errors, ups, downs, costed, cost, squares, flagged, first, last = values
        if first is not None:
            first = to_utc(first)
            self.first = first if self.first is None else min(self.first, first)
        if last is not None:
            last = to_utc(last)
            self.last = last if self.last is None else max(self.last, last)
        self.requests += int(requests)
        self.errors += int(errors)
        self.ups += int(ups)
        self.downs += int(downs)
        self.costed += int(costed)
        self.cost += float(cost)
        self.cost_squares += float(squares)
        self.flagged += int(flagged)
        if index is not None:
            self.bins[int(index)] = self.bins.get(int(index), 0) + int(requests)

    def side(self, start: datetime, end: datetime, *, flags: bool) -> Side:
        return Side(
            start=start,
            end=end,
            requests=self.requests,
            error_rate=wilson(self.errors, self.requests),
            latency_p50=quantile_interval(self.bins, 0.5),
            latency_p95=quantile_interval(self.bins, 0.95),
            cost_per_request=mean_interval(self.costed, self.cost, self.cost_squares),
            satisfaction=wilson(self.ups, self.ups + self.downs),
            implicit_flag_rate=wilson(self.flagged, self.requests) if flags else NOTHING,
        )


def _tallies(
    session: Session, conditions: Sequence[ColumnElement[bool]], *, by_version: bool
) -> dict[str, _Tally]:
    """One pass over the matching requests: sums per latency bin (and per prompt version
    when ``by_version``), added up here. A few hundred result rows, whatever the count."""
    r = LLMRequest
    known_cost = and_(col(r.cost_usd).is_not(None), col(r.priced).is_(True))
    flag = implicit_flag_expr()
    keys: list[Any] = [col(r.prompt_version)] if by_version else []
    columns: list[Any] = [
        col(r.latency_bin),
        func.count(),
        _count_if(col(r.status).in_(ERROR_STATUSES)),
        _count_if(col(r.feedback) == 1),
        _count_if(col(r.feedback) == -1),
        _count_if(known_cost),
        func.coalesce(func.sum(case((known_cost, r.cost_usd), else_=0.0)), 0.0),
        func.coalesce(
            func.sum(case((known_cost, col(r.cost_usd) * col(r.cost_usd)), else_=0.0)), 0.0
        ),
        func.coalesce(func.sum(flag), 0) if flag is not None else literal_column("0"),
        func.min(r.started_at),
        func.max(r.started_at),
    ]
    query = select(*keys, *columns).where(*conditions).group_by(*keys, col(r.latency_bin))
    found: dict[str, _Tally] = {}
    for row in session.exec(query).all():
        key = str(row[0]) if by_version else ""
        found.setdefault(key, _Tally()).add(tuple(row)[1:] if by_version else tuple(row))
    return found


def _window(start: datetime, end: datetime) -> list[ColumnElement[bool]]:
    r = LLMRequest
    return [col(r.synthetic).is_(False), col(r.started_at) >= start, col(r.started_at) < end]


def _versions_starting(session: Session, prefix: str) -> list[str]:
    """The stored prompt versions that start with ``prefix`` (a change event keeps 8
    characters of a 12-character version). Read from the (prompt_version, started_at)
    index alone, so the side's query can then ask for exact versions, which every
    planner serves from that index (a prefix LIKE or range it may not)."""
    version = col(LLMRequest.prompt_version)
    if prefix.isascii() and prefix.isalnum():  # "~" sorts after every letter and digit
        matching = and_(version >= prefix, version < prefix + "~")
    else:
        matching = version.startswith(prefix, autoescape=True)
    return [str(v) for v in session.exec(select(version).where(matching).distinct()).all()]


def side_figures(
    *,
    session: Session,
    start: datetime,
    end: datetime,
    prompt_prefix: str | None = None,
) -> Side:
    """The figures of the (non-synthetic) requests started in ``[start, end)``, of the
    prompt versions starting with ``prompt_prefix`` when given."""
    start, end = to_utc(start), to_utc(end)
    if end <= start:
        return Side(start=start, end=end)
    conditions = _window(start, end)
    if prompt_prefix is not None:
        versions = _versions_starting(session, prompt_prefix)
        if not versions:
            return Side(start=start, end=end)
        conditions.append(col(LLMRequest.prompt_version).in_(versions))
    tally = _tallies(session, conditions, by_version=False).get("", _Tally())
    return tally.side(start, end, flags=implicit_flag_expr() is not None)


def figures_by_version(
    *, session: Session, start: datetime, end: datetime
) -> dict[str, tuple[Side, datetime | None, datetime | None]]:
    """Each prompt version's figures over ``[start, end)`` and its first and last
    request in it, in one pass."""
    start, end = to_utc(start), to_utc(end)
    flags = implicit_flag_expr() is not None
    tallies = _tallies(session, _window(start, end), by_version=True)
    return {
        version: (tally.side(start, end, flags=flags), tally.first, tally.last)
        for version, tally in tallies.items()
    }


# --------------------------------------------------------------------------- comparing


def _percent(value: float) -> str:
    share = 100 * value
    return f"{share:.1f} %" if 0 < share < 10 else f"{share:.0f} %"


def _seconds(value: float) -> str:
    return f"{value:.2f} s" if value < 10 else f"{value:.1f} s"


def _dollars(value: float) -> str:
    return f"${value:.2f}" if value >= 1 else f"${value:.4f}"


@dataclass(frozen=True)
class Metric:
    """A compared figure: its key on :class:`Side`, its words, which way is better."""

    key: str
    label: str
    higher_is_better: bool
    show: Callable[[float], str]
    min_n: int = MIN_REQUESTS


METRICS = (
    Metric("satisfaction", "satisfaction", True, _percent, MIN_RATED),
    Metric("error_rate", "error rate", False, _percent),
    Metric("latency_p50", "p50 latency", False, _seconds),
    Metric("latency_p95", "p95 latency", False, _seconds),
    Metric("cost_per_request", "cost per request", False, _dollars),
    Metric("implicit_flag_rate", "implicit-flag rate", False, _percent),
)
_METRIC = {metric.key: metric for metric in METRICS}


@dataclass(frozen=True)
class Comparison:
    """One figure before and after: ``better`` | ``worse`` | ``same`` (the intervals
    overlap) | ``unknown`` (too little data, or not recorded)."""

    key: str
    before: Estimate
    after: Estimate
    outcome: str

    @property
    def metric(self) -> Metric:
        return _METRIC[self.key]

    @property
    def moved(self) -> str:
        """``satisfaction 81 % → 72 %``."""
        show = self.metric.show
        before = "–" if self.before.value is None else show(self.before.value)
        after = "–" if self.after.value is None else show(self.after.value)
        return f"{self.metric.label} {before} → {after}"

    def to_json(self) -> dict[str, Any]:
        return {
            "figure": self.key,
            "label": self.metric.label,
            "before": self.before.to_json(),
            "after": self.after.to_json(),
            "outcome": self.outcome,
            "text": self.moved,
        }


def compare(metric: Metric, before: Estimate, after: Estimate) -> Comparison:
    """Judge one figure: better or worse only when the 95 % intervals do not overlap."""
    usable = all(
        e.value is not None and e.low is not None and e.high is not None and e.n >= metric.min_n
        for e in (before, after)
    )
    if not usable:
        return Comparison(metric.key, before, after, "unknown")
    assert before.low is not None and before.high is not None
    assert after.low is not None and after.high is not None
    if after.low > before.high:
        higher = True
    elif after.high < before.low:
        higher = False
    else:
        return Comparison(metric.key, before, after, "same")
    outcome = "better" if higher == metric.higher_is_better else "worse"
    return Comparison(metric.key, before, after, outcome)


@dataclass(frozen=True)
class Verdict:
    """``kind``: worse | better | mixed | no clear change | not enough data; ``text``:
    the sentence the card shows."""

    kind: str
    text: str


def _listed(items: Sequence[Comparison]) -> str:
    return ", ".join(item.moved for item in items)


def _overlap_note(count: int) -> str:
    return "interval does not overlap" if count == 1 else "intervals do not overlap"


def verdict(before: Side, after: Side, comparisons: Sequence[Comparison]) -> Verdict:
    """The plain verdict on a change from its sides and compared figures."""
    if before.requests < MIN_REQUESTS or after.requests < MIN_REQUESTS:
        return Verdict(
            "not enough data",
            f"not enough data: {before.requests} requests before, {after.requests} after"
            f" (needs {MIN_REQUESTS} on each side)",
        )
    worse = [c for c in comparisons if c.outcome == "worse"]
    better = [c for c in comparisons if c.outcome == "better"]
    if worse and better:
        return Verdict(
            "mixed",
            f"mixed: worse {_listed(worse)}; better {_listed(better)};"
            f" {_overlap_note(len(worse) + len(better))}",
        )
    if worse:
        return Verdict("worse", f"worse: {_listed(worse)}, {_overlap_note(len(worse))}")
    if better:
        return Verdict("better", f"better: {_listed(better)}, {_overlap_note(len(better))}")
    return Verdict("no clear change", "no clear change: every interval overlaps")


def judge(before: Side, after: Side) -> tuple[list[Comparison], Verdict]:
    """Every figure compared, and the verdict."""
    comparisons = [
        compare(metric, before.estimate(metric.key), after.estimate(metric.key))
        for metric in METRICS
    ]
    return comparisons, verdict(before, after, comparisons)


# --------------------------------------------------------------------------- changes


@dataclass(frozen=True)
class Change:
    """One change of prompt version or model, with both sides and the verdict."""

    kind: str  # prompt | model
    old: str
    new: str
    at: datetime
    before: Side
    after: Side
    comparisons: list[Comparison]
    verdict: Verdict
    old_text: str | None = None  # a prompt change: the versions' texts, when kept
    new_text: str | None = None

    @property
    def label(self) -> str:
        what = "system prompt" if self.kind == "prompt" else "model"
        return f"{what} {self.old} → {self.new}"

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "old": self.old,
            "new": self.new,
            "at": _iso(self.at),
            "label": self.label,
            "before": self.before.to_json(),
            "after": self.after.to_json(),
            "comparisons": [c.to_json() for c in self.comparisons],
            "verdict": self.verdict.kind,
            "summary": self.verdict.text,
            "old_text": self.old_text,
            "new_text": self.new_text,
        }


def comparable_windows(
    *,
    at: datetime,
    span: timedelta,
    now: datetime,
    previous: datetime | None = None,
    following: datetime | None = None,
) -> tuple[datetime, datetime, datetime]:
    """``(before_start, at, after_end)``: two sides of equal length around ``at``, each
    at most ``span``, neither past the neighbouring changes nor past ``now``."""
    at, now = to_utc(at), to_utc(now)
    before_start = at - span if previous is None else max(at - span, to_utc(previous))
    after_end = min(at + span, now) if following is None else min(at + span, now, to_utc(following))
    length = max(timedelta(0), min(at - before_start, after_end - at))
    return at - length, at, at + length


def _prompt_text(session: Session, prefix: str) -> str | None:
    row = prompt_versions.by_prefix(session=session, prefix=prefix)
    return None if row is None else row.text


def compare_changes(
    *, session: Session, start: datetime, end: datetime, span: timedelta | None = None
) -> list[Change]:
    """Every prompt or model change of ``[start, end)``, newest first, each judged over
    comparable windows of at most ``span`` (default: the window's length) a side."""
    start, end = to_utc(start), to_utc(end)
    span = span or (end - start)
    # neighbours may lie before the window: look one span further back
    events = [
        event
        for event in change_events.between(
            session=session, start=start - span, end=end, limit=4 * MAX_CHANGES
        )
        if event.kind in BOUNDARY_KINDS
    ]
    found: list[Change] = []
    for index, event in enumerate(events):
        at = to_utc(event.at)
        if event.kind not in COMPARED_KINDS or at < start or event.old is None:
            continue
        previous = next((e.at for e in reversed(events[:index]) if to_utc(e.at) < at), None)
        following = next((e.at for e in events[index + 1 :] if to_utc(e.at) > at), None)
        before_start, middle, after_end = comparable_windows(
            at=at, span=span, now=end, previous=previous, following=following
        )
        is_prompt = event.kind == "prompt"
        before = side_figures(
            session=session,
            start=before_start,
            end=middle,
            prompt_prefix=event.old if is_prompt else None,
        )
        after = side_figures(
            session=session,
            start=middle,
            end=after_end,
            prompt_prefix=event.new if is_prompt else None,
        )
        comparisons, judged = judge(before, after)
        found.append(
            Change(
                kind=event.kind,
                old=event.old,
                new=event.new,
                at=at,
                before=before,
                after=after,
                comparisons=comparisons,
                verdict=judged,
                old_text=_prompt_text(session, event.old) if is_prompt else None,
                new_text=_prompt_text(session, event.new) if is_prompt else None,
            )
        )
    return list(reversed(found))[:MAX_CHANGES]


# --------------------------------------------------------------------------- versions


@dataclass(frozen=True)
class VersionRow:
    """One prompt version: when it was first and last seen, its text (None when the
    version predates the ``prompt_version`` table), and its figures over the window."""

    version: str
    first_seen: datetime | None
    last_seen: datetime | None
    text: str | None
    figures: Side

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "first_seen": _iso(self.first_seen),
            "last_seen": _iso(self.last_seen),
            "text": self.text,
            **self.figures.to_json(),
        }


def version_rows(*, session: Session, start: datetime, end: datetime) -> list[VersionRow]:
    """The prompt versions in use in ``[start, end)``, the latest used first: every kept
    version last seen in the window, and every version the window's requests name."""
    start, end = to_utc(start), to_utc(end)
    used = figures_by_version(session=session, start=start, end=end)
    kept = {
        row.hash: row
        for row in session.exec(
            select(PromptVersion)
            .where(col(PromptVersion.last_seen) >= start, col(PromptVersion.first_seen) < end)
            .order_by(col(PromptVersion.last_seen).desc())
            .limit(MAX_VERSIONS)
        ).all()
    }
    seen = {version: (first, last) for version, (_, first, last) in used.items()}
    for version in set(seen) - set(kept):
        row = session.get(PromptVersion, version)
        if row is not None:
            kept[version] = row
    names = set(seen) | set(kept)

    def last_of(version: str) -> datetime:
        row = kept.get(version)
        if row is not None:
            return to_utc(row.last_seen)
        moment = seen[version][1]
        return moment if moment is not None else start

    rows: list[VersionRow] = []
    for version in sorted(names, key=last_of, reverse=True)[:MAX_VERSIONS]:
        row = kept.get(version)
        first, last = seen.get(version, (None, None))
        rows.append(
            VersionRow(
                version=version,
                first_seen=to_utc(row.first_seen) if row is not None else first,
                last_seen=to_utc(row.last_seen) if row is not None else last,
                text=None if row is None else row.text,
                figures=used[version][0] if version in used else Side(start=start, end=end),
            )
        )
    return rows


@dataclass(frozen=True)
class VersionsReport:
    """What ``GET /api/versions`` returns and the monitor's card shows."""

    start: datetime
    end: datetime
    versions: list[VersionRow] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "start": _iso(self.start),
            "end": _iso(self.end),
            "min_requests": MIN_REQUESTS,
            "versions": [row.to_json() for row in self.versions],
            "changes": [change.to_json() for change in self.changes],
        }


def report(*, session: Session, start: datetime, end: datetime) -> VersionsReport:
    """The versions of the window and every change in it, judged."""
    return VersionsReport(
        start=to_utc(start),
        end=to_utc(end),
        versions=version_rows(session=session, start=start, end=end),
        changes=compare_changes(session=session, start=start, end=end),
    )


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else to_utc(moment).isoformat().replace("+00:00", "Z")
