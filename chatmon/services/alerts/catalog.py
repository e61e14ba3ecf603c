"""Every alert rule, in the order of :class:`~chatmon.services.alerts.rules.Rule`, and
one evaluation of them all.

Its own module so the rule families (``rules``, ``budget_rules``, ``feedback_rules``,
``fallback_rules``)
import only the shared types and never each other.
"""

from __future__ import annotations

from chatmon.services.alerts import budget_rules, fallback_rules, feedback_rules
from chatmon.services.alerts.rules import CORE_RULES, Finding, Observations, RuleCheck, Thresholds

RULES: tuple[RuleCheck, ...] = (
    *CORE_RULES,
    *budget_rules.RULES,
    *feedback_rules.RULES,
    *fallback_rules.RULES,
)


def evaluate(obs: Observations, limits: Thresholds) -> list[Finding]:
    """One finding per rule, in the order of :class:`Rule`."""
    return [rule(obs, limits) for rule in RULES]
