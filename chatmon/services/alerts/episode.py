"""When an alert resolves, what it cost: how long it lasted and who it touched.

A bare "RESOLVED" tells the on-call engineer they can go back to sleep; the morning
review needs more: how long the episode lasted, how many requests failed out of how
many, how many conversations and users (browser identities) saw a failure, and what
the requests that needed retries cost. One aggregate query over the request log between
the episode's start and its resolution (``started_at`` is indexed), run once per
resolved message, never per check.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, distinct, func, select
from sqlmodel import Session, col

from chatmon.models import LLMRequest
from chatmon.observability.call_status import CallStatus
from chatmon.services.alerts.inputs import REFUSALS, USER_CAUSED
from chatmon.services.alerts.rules import format_usd
from chatmon.services.sql_time import to_utc


@dataclass(frozen=True)
class EpisodeSummary:
    """The figures of one episode, from its first firing to its resolution."""

    duration: timedelta
    requests: int
    failed: int
    conversations: int  # with at least one failed request
    users: int  # browser identities with at least one failed request
    retried_cost_usd: float  # cost of the requests that needed retries

    def lasted(self) -> str:
        """``1 h 12 min``, ``14 min``, ``40 s``."""
        seconds = max(int(self.duration.total_seconds()), 0)
        hours, rest = divmod(seconds, 3600)
        minutes, secs = divmod(rest, 60)
        if hours:
            return f"{hours} h {minutes} min"
        return f"{minutes} min" if minutes else f"{secs} s"

    def affected(self) -> str:
        """What the episode touched, e.g. ``37 of 412 requests failed, in 12 conversations
        of 9 users; $0.0420 on retried requests``."""
        text = (
            f"{self.failed} of {self.requests} requests failed, in {self.conversations} "
            f"conversation{'s' if self.conversations != 1 else ''} of {self.users} "
            f"user{'s' if self.users != 1 else ''}"
        )
        return f"{text}; {format_usd(self.retried_cost_usd)} on retried requests"


def summarize(
    *, session: Session, start: datetime, end: datetime, firing_since: datetime | None = None
) -> EpisodeSummary:
    """Requests of ``[start, end]``; the episode lasted from ``firing_since`` (default
    ``start``) to ``end``. The caller starts the count one alert window before the first
    firing: the failures that made the rule fire came before it fired. Counted as the
    error-rate rule counts: chatmon's own
    refusals are neither requests nor failures, errors the request caused are requests
    but not failures."""
    failed = (col(LLMRequest.status) == CallStatus.ERROR) & (
        col(LLMRequest.error_category).is_(None)
        | col(LLMRequest.error_category).not_in(REFUSALS + USER_CAUSED)
    )
    refused = col(LLMRequest.error_category).in_(REFUSALS)
    row = session.execute(
        select(
            func.count(case((~refused | col(LLMRequest.error_category).is_(None), 1))),
            func.count(case((failed, 1))),
            func.count(distinct(case((failed, LLMRequest.conversation_id)))),
            func.count(distinct(case((failed, LLMRequest.session_id)))),
            func.coalesce(
                func.sum(case((col(LLMRequest.retries) > 0, LLMRequest.cost_usd), else_=0.0)),
                0.0,
            ),
        ).where(
            col(LLMRequest.started_at) >= to_utc(start),
            col(LLMRequest.started_at) <= to_utc(end),
            col(LLMRequest.synthetic).is_(False),  # the probe has its own rule
        )
    ).one()
    return EpisodeSummary(
        duration=to_utc(end) - to_utc(firing_since or start),
        requests=int(row[0]),
        failed=int(row[1]),
        conversations=int(row[2]),
        users=int(row[3]),
        retried_cost_usd=float(row[4] or 0.0),
    )
