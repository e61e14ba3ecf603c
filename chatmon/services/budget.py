"""Daily and monthly budgets: what is spent, where it is heading, and what happens at 100 %.

Periods are days and months in ``BUDGET_TIMEZONE`` (DST-safe: a day is local midnight
to the next local midnight, whatever its length). Spend is read from the database
every worker and instance shares (``usage.spend``: rollups plus the edge rows), so
they all enforce the same figure. Unpriced requests add nothing to the spend: the
monitor and /health say when that makes a budget blind (``pricing``).

At 100 % of any budget the configured ``BUDGET_ACTION`` applies: ``warn`` keeps
serving, ``fallback`` answers with ``BUDGET_FALLBACK_MODEL``, ``refuse`` sends nothing
to the provider. The chat's request path asks :class:`BudgetGate`, which answers from
a decision at most ``ttl`` seconds old and refreshes it in a thread, never on the
event loop: a burst can overshoot a limit by what ``ttl`` seconds of traffic cost.
"""

from __future__ import annotations

import logging
import threading
import time
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from typing import Any, Literal

from sqlalchemy.engine import Engine
from sqlmodel import Session

from chatmon.observability import series
from chatmon.services import forecast, usage
from chatmon.services.sql_time import to_utc

log = logging.getLogger(__name__)

Period = Literal["daily", "monthly"]
HISTORY_DAYS = 7


@dataclass(frozen=True)
class BudgetConfig:
    """The BUDGET_* settings, in the shape the service needs."""

    daily_usd: float | None = None
    monthly_usd: float | None = None
    timezone: str = "UTC"
    warn_levels: tuple[float, ...] = (50.0, 80.0, 100.0)
    action: str = "warn"
    fallback_model: str | None = None
    horizon_minutes: float = 120.0

    @classmethod
    def from_settings(cls, settings: Any) -> BudgetConfig:
        return cls(
            daily_usd=settings.daily_budget or None,
            monthly_usd=settings.monthly_budget_usd or None,
            timezone=settings.budget_timezone,
            warn_levels=tuple(settings.budget_warn_levels),
            action=settings.budget_action,
            fallback_model=settings.budget_fallback_model,
            horizon_minutes=settings.budget_forecast_horizon_minutes,
        )

    def limit(self, period: Period) -> float | None:
        return self.daily_usd if period == "daily" else self.monthly_usd

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)


def _local_midnight(day: date, zone: zoneinfo.ZoneInfo) -> datetime:
    return datetime.combine(day, clock_time(0), tzinfo=zone).astimezone(UTC)


def period_bounds(
    period: Period, now: datetime, zone: zoneinfo.ZoneInfo
) -> tuple[datetime, datetime]:
    """``[start, end)`` in aware UTC of the day or month ``now`` falls in, in ``zone``."""
    today = to_utc(now).astimezone(zone).date()
    if period == "daily":
        return _local_midnight(today, zone), _local_midnight(today + timedelta(days=1), zone)
    first = today.replace(day=1)
    following = (first + timedelta(days=32)).replace(day=1)
    return _local_midnight(first, zone), _local_midnight(following, zone)


@dataclass(frozen=True)
class PeriodStatus:
    """One budget period as /api/budget, the monitor and the alert rules see it."""

    period: Period
    limit_usd: float
    spent_usd: float
    requests: int
    percent: float
    forecast_usd: float | None
    reached_at: datetime | None
    resets_at: datetime
    action: str
    level: float | None  # the highest BUDGET_WARN_PERCENT level reached, if any
    method: str  # how the forecast was made (chatmon.services.forecast)

    @property
    def exceeded(self) -> bool:
        return self.spent_usd >= self.limit_usd

    def to_json(self) -> dict[str, Any]:
        def iso(moment: datetime) -> str:
            return moment.isoformat().replace("+00:00", "Z")

        return {
            "period": self.period,
            "limit_usd": round(self.limit_usd, 6),
            "spent_usd": round(self.spent_usd, 6),
            "requests": self.requests,
            "percent": round(self.percent, 2),
            "forecast_usd": None if self.forecast_usd is None else round(self.forecast_usd, 6),
            "reached_at": None if self.reached_at is None else iso(self.reached_at),
            "resets_at": iso(self.resets_at),
            "action": self.action,
            "exceeded": self.exceeded,
            "warn_level": self.level,
            "forecast_method": self.method,
        }


def _history(
    session: Session, period: Period, now: datetime, start: datetime, end: datetime, zone: Any
) -> forecast.SpendHistory:
    """The figures the forecast needs (see ``chatmon.services.forecast``)."""
    spent, _ = usage.spend(session=session, start=start, end=now)
    step = timedelta(minutes=forecast.BUCKET_MINUTES)
    buckets, recent_requests = [], 0
    for index in range(60 // forecast.BUCKET_MINUTES, 0, -1):
        cost, count = usage.spend(
            session=session, start=now - index * step, end=now - (index - 1) * step
        )
        buckets.append(cost)
        recent_requests += count
    remainders: list[float] = []
    days_left = (end - now).total_seconds() / 86400
    for back in range(1, HISTORY_DAYS + 1):
        day_start, day_end = period_bounds("daily", now - timedelta(days=back), zone)
        whole, count = usage.spend(session=session, start=day_start, end=day_end)
        if not count:
            continue  # no traffic that day: no evidence of a usual pattern
        if period == "daily":
            same_point = day_start + (now - start)
            remainders.append(usage.spend(session=session, start=same_point, end=day_end)[0])
        else:
            remainders.append(whole * days_left)
    return forecast.SpendHistory(
        now=now,
        period_end=end,
        spent=spent,
        recent_buckets=buckets,
        recent_requests=recent_requests,
        usual_remainders=remainders,
    )


def period_status(
    *, session: Session, config: BudgetConfig, period: Period, now: datetime
) -> PeriodStatus | None:
    """The period's status, or None when it has no budget."""
    limit = config.limit(period)
    if not limit:
        return None
    now = to_utc(now)
    start, end = period_bounds(period, now, config.zone)
    history = _history(session, period, now, start, end, config.zone)
    outlook = forecast.project(history, limit=limit)
    percent = 100.0 * history.spent / limit
    reached = [level for level in config.warn_levels if percent >= level]
    return PeriodStatus(
        period=period,
        limit_usd=limit,
        spent_usd=history.spent,
        requests=usage.spend(session=session, start=start, end=now)[1],
        percent=percent,
        forecast_usd=outlook.forecast_usd,
        reached_at=outlook.reached_at,
        resets_at=end,
        action=config.action if history.spent >= limit else "serve",
        level=max(reached) if reached else None,
        method=outlook.method,
    )


def statuses(*, session: Session, config: BudgetConfig, now: datetime) -> list[PeriodStatus]:
    """Every configured period's status (daily first)."""
    found = (
        period_status(session=session, config=config, period=p, now=now)
        for p in ("daily", "monthly")
    )
    result = [status for status in found if status is not None]
    export(result, config)
    return result


def export(found: list[PeriodStatus], config: BudgetConfig) -> None:
    """Put the budgets on /metrics (``chatmon_budget_*``): every reading of the statuses
    refreshes them, and the alert loop reads them every check in every worker."""
    for status in found:
        series.BUDGET_USED_RATIO.labels(period=status.period).set(status.percent / 100.0)
        series.BUDGET_LIMIT_USD.labels(period=status.period).set(status.limit_usd)
    if found:
        for level in config.warn_levels:
            series.BUDGET_WARN_RATIO.labels(level=f"{level:g}").set(level / 100.0)


# ----------------------------------------------------------------------------- enforcement


@dataclass(frozen=True)
class Decision:
    """What the chat does with the next request: serve, fall back, or refuse."""

    action: Literal["serve", "warn", "fallback", "refuse"] = "serve"
    period: Period | None = None  # the period whose budget is used up
    limit_usd: float | None = None
    resets_at: datetime | None = None

    def seconds_to_reset(self, now: datetime | None = None) -> float | None:
        if self.resets_at is None:
            return None
        return max((self.resets_at - (now or datetime.now(UTC))).total_seconds(), 0.0)


def decide(*, session: Session, config: BudgetConfig, now: datetime) -> Decision:
    """The decision for ``now``: the configured action once any budget is used up."""
    now = to_utc(now)
    for period in ("daily", "monthly"):
        limit = config.limit(period)
        if not limit:
            continue
        start, end = period_bounds(period, now, config.zone)
        spent, _ = usage.spend(session=session, start=start, end=now)
        if spent >= limit:
            action = config.action if config.action in ("fallback", "refuse") else "warn"
            return Decision(action, period, limit, end)  # type: ignore[arg-type]
    return Decision()


class BudgetGate:
    """The process's cached budget decision, refreshed off the event loop.

    Args:
        config: the budgets and the action.
        engine: where the spend is read (a callable: built only when needed).
        ttl: seconds a decision is used before it is read again.
    """

    def __init__(
        self,
        *,
        config: BudgetConfig,
        engine: Callable[[], Engine],
        ttl: float = 10.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.config = config
        self._engine = engine
        self._ttl = ttl
        self._clock = clock
        self._decision = Decision()
        self._read_at = float("-inf")
        self._lock = threading.Lock()
        self._refreshing = False

    @property
    def enabled(self) -> bool:
        return bool(self.config.daily_usd or self.config.monthly_usd)

    def current(self) -> Decision:
        """The latest decision (never blocks); starts a refresh in a thread when stale."""
        if not self.enabled:
            return self._decision
        decision = self._decision
        if self._decision.resets_at is not None and self._clock() >= self._decision.resets_at:
            decision = Decision()  # a new period began: serve while the refresh reads it
        if time.monotonic() - self._read_at >= self._ttl:
            with self._lock:
                if not self._refreshing:
                    self._refreshing = True
                    threading.Thread(target=self._refresh_quietly, daemon=True).start()
        return decision

    def refresh(self) -> Decision:
        """Read the spend now (blocking: call from a thread) and keep the decision."""
        with Session(self._engine()) as session:
            decision = decide(session=session, config=self.config, now=self._clock())
        self._decision, self._read_at = decision, time.monotonic()
        return decision

    def _refresh_quietly(self) -> None:
        try:
            self.refresh()
        except Exception:
            log.exception("budget: reading the spend failed; keeping the last decision")
            self._read_at = time.monotonic()
        finally:
            with self._lock:
                self._refreshing = False
