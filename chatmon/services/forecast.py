"""Where spend is heading by the end of a budget period: pure functions, no I/O.

The method, chosen to be explainable in one alert line:

* **Recent pace**: an exponentially weighted mean of the spend in the last hour's six
  10-minute buckets (half-life 20 minutes), so a spike shows within minutes and one
  expensive request does not dominate for long. It speaks only once the last hour
  holds ``MIN_RECENT_REQUESTS`` requests.
* **Usual remainder**: what the same part of the period cost on recent periods with
  traffic (for a day: the same hours of the last 7 days), averaged. It speaks only
  with ``MIN_HISTORY_PERIODS`` such periods; a quiet night then forecasts the usual
  day ahead, not zero.
* The forecast of the period's total is what is spent plus the mean of the available
  projections (recent pace x time left, usual remainder). ``reached_at`` - when the
  limit is hit - uses the recent pace when it speaks (that is what "at the current
  pace" means), else the usual remainder spread evenly over the time left.

With neither signal there is not enough data: forecast and ``reached_at`` are None.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

BUCKET_MINUTES = 10
HALF_LIFE_BUCKETS = 2.0  # 20 minutes
MIN_RECENT_REQUESTS = 5
MIN_HISTORY_PERIODS = 2


@dataclass(frozen=True)
class SpendHistory:
    """What the forecast looks at, for one period.

    Attributes:
        recent_buckets: USD spent in each 10-minute bucket of the last hour, oldest first.
        recent_requests: requests in the last hour.
        usual_remainders: for each recent period with traffic, what it cost from the
            same point of the period to its end.
    """

    now: datetime
    period_end: datetime
    spent: float
    recent_buckets: Sequence[float] = ()
    recent_requests: int = 0
    usual_remainders: Sequence[float] = ()


@dataclass(frozen=True)
class Forecast:
    """The expected total and when the limit is hit (None: not enough data / never)."""

    forecast_usd: float | None
    reached_at: datetime | None
    pace_usd_per_hour: float | None  # the recent pace, when it speaks
    method: str  # "recent+usual" | "recent" | "usual" | "not_enough_data"


def recent_pace(buckets: Sequence[float]) -> float:
    """USD per hour: the exponentially weighted mean of 10-minute buckets, x 6."""
    if not buckets:
        return 0.0
    newest = len(buckets) - 1
    weights = [0.5 ** ((newest - i) / HALF_LIFE_BUCKETS) for i in range(len(buckets))]
    mean = sum(w * b for w, b in zip(weights, buckets, strict=True)) / sum(weights)
    return float(mean * (60 / BUCKET_MINUTES))


def project(history: SpendHistory, *, limit: float | None) -> Forecast:
    """The period's forecast under ``limit`` (None or 0: no limit, ``reached_at`` None)."""
    hours_left = max((history.period_end - history.now).total_seconds() / 3600, 0.0)
    pace = (
        recent_pace(history.recent_buckets)
        if history.recent_requests >= MIN_RECENT_REQUESTS
        else None
    )
    usual = (
        sum(history.usual_remainders) / len(history.usual_remainders)
        if len(history.usual_remainders) >= MIN_HISTORY_PERIODS
        else None
    )
    projections = [p for p in (None if pace is None else pace * hours_left, usual) if p is not None]
    if not projections:
        return Forecast(None, None, None, "not_enough_data")
    method = "+".join(
        name for name, value in (("recent", pace), ("usual", usual)) if value is not None
    )
    forecast = history.spent + sum(projections) / len(projections)
    rate = pace if pace is not None else (usual / hours_left if hours_left and usual else 0.0)
    return Forecast(forecast, _reached_at(history, limit, rate), pace, method)


def _reached_at(history: SpendHistory, limit: float | None, rate: float) -> datetime | None:
    """When ``limit`` is hit at ``rate`` USD/h, if within the period and not hit already."""
    if not limit or history.spent >= limit or rate <= 0:
        return None
    hours = (limit - history.spent) / rate
    if not math.isfinite(hours):
        return None
    when = history.now + timedelta(hours=hours)
    return when if when < history.period_end else None
