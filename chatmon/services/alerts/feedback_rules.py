"""The ``dissatisfaction`` alert rule: it waits for evidence before it speaks.

Over the last ``ALERT_FEEDBACK_WINDOW_HOURS`` (requests by their start time), per
prompt version, the share of rated replies that got a thumbs-down is judged by the
**lower bound of its 95 % Wilson score interval**, not by the raw share. The rule
fires when that lower bound is strictly above ``ALERT_DISSATISFACTION_THRESHOLD``
(percent): 3 downs of 5 ratings (60 %, lower bound 23 %) does not fire at 30 %;
30 of 60 (50 %, lower bound 37.7 %) does. Few ratings give a wide interval, so a
handful of unhappy users cannot page anyone, while a real, sustained drop does.

Implicit dissatisfaction (issue #15 §2, ``chatmon.services.implicit_signals``: a
reply stopped, regenerated, rephrased, or a conversation abandoned after an error) is
a weaker signal than a thumb, so each flagged reply that was **not rated** counts as
``IMPLICIT_WEIGHT`` (half) of a rated thumbs-down: it adds 0.5 to the downs and 0.5 to
the rated replies. A flagged reply that was rated counts once, as its rating says (a
thumbs-up after a Stop is a happy user). A reply carrying several signals counts once.
So 10 stopped, unrated replies weigh as 5 downs of 5 ratings (bound 56.6 %, fires at
30 %), and 30 downs of 60 ratings plus 20 flagged replies as 40 of 70.

The version with the highest lower bound is the one judged and named, with its top
reasons, its implicit signals and a link to the review queue filtered to it. No
ratings and no flagged replies in the window: ``not_enough_data``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from chatmon.services.alerts.rules import Finding, Observations, Rule, Thresholds, Verdict

Z_95 = 1.959963984540054  # two-sided 95 %
IMPLICIT_WEIGHT = 0.5  # a flagged, unrated reply: half a thumbs-down
TOP_REASONS = 3
# The review queue (chatmon.routes.feedback), thumbs-down of one prompt version, worst first.
REVIEW_QUEUE_PATH = "/api/feedback/review?rating=down&order=worst&prompt_version="


@dataclass(frozen=True)
class VersionFeedback:
    """The ratings of one prompt version's requests in the feedback window, and its
    unrated replies flagged with an implicit signal."""

    prompt_version: str
    ups: int
    downs: int
    reasons: tuple[tuple[str, int], ...] = ()  # (reason, thumbs-downs naming it), most first
    flagged: int = 0  # unrated replies with at least one implicit signal
    signals: tuple[tuple[str, int], ...] = ()  # (signal, flagged replies with it), most first

    @property
    def rated(self) -> int:
        return self.ups + self.downs

    @property
    def weighted_downs(self) -> float:
        """Thumbs-down plus ``IMPLICIT_WEIGHT`` per flagged, unrated reply."""
        return self.downs + IMPLICIT_WEIGHT * self.flagged

    @property
    def weighted_trials(self) -> float:
        """Rated replies plus ``IMPLICIT_WEIGHT`` per flagged, unrated reply."""
        return self.rated + IMPLICIT_WEIGHT * self.flagged


def wilson_lower_bound(successes: float, trials: float, z: float = Z_95) -> float:
    """The lower bound (0-1) of the Wilson score interval of ``successes / trials``."""
    if trials <= 0:
        return 0.0
    p = successes / trials
    z2 = z * z
    centre = p + z2 / (2 * trials)
    spread = z * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials))
    return max(0.0, (centre - spread) / (1 + z2 / trials))


def dissatisfaction(obs: Observations, limits: Thresholds) -> Finding:
    """The worst prompt version's thumbs-down share (implicit signals weighted in),
    judged by its Wilson lower bound."""
    rule = Rule.DISSATISFACTION
    threshold = limits.dissatisfaction_percent
    judged = [v for v in obs.feedback_by_version if v.weighted_trials > 0]
    hours = f"{limits.feedback_window_hours:g} h"
    if not judged:
        summary = f"no rated or flagged replies in the last {hours}"
        return Finding(rule, Verdict.NOT_ENOUGH_DATA, None, threshold, summary)
    bounds = {
        v.prompt_version: 100.0 * wilson_lower_bound(v.weighted_downs, v.weighted_trials)
        for v in judged
    }
    worst = max(
        judged, key=lambda v: (bounds[v.prompt_version], v.weighted_trials, v.prompt_version)
    )
    bound = bounds[worst.prompt_version]
    version = worst.prompt_version or "(none)"
    share = f" ({100.0 * worst.downs / worst.rated:.0f} %)" if worst.rated else ""
    summary = (
        f"prompt version {version}: {worst.downs} of {worst.rated} rated replies thumbs-down"
        f"{share} in the last {hours}"
    )
    if worst.flagged:
        named = ", ".join(f"{name} {n}" for name, n in worst.signals)
        summary += (
            f", and {worst.flagged} unrated replies flagged ({named}), "
            "each counted as half a thumbs-down"
        )
    summary += f"; 95 % lower bound {bound:.1f} %"
    if worst.reasons:
        top = ", ".join(f"{r} ({n})" for r, n in worst.reasons[:TOP_REASONS])
        summary += f"; top reasons: {top}"
    if bound > threshold:
        summary += f"; review: {REVIEW_QUEUE_PATH}{worst.prompt_version}"
        return Finding(rule, Verdict.FIRING, bound, threshold, summary)
    return Finding(rule, Verdict.OK, bound, threshold, summary)


RULES: tuple[Callable[[Observations, Thresholds], Finding], ...] = (dissatisfaction,)
