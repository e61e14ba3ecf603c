"""SQLModel tables, and nothing else: importing this package registers every table on
``SQLModel.metadata`` (alembic's ``env.py`` and the tests rely on it).

Tables live here rather than in the app module because Reflex's test harness
re-imports the app module, which would register the tables twice.

One module per concern: ``chat`` (conversations, messages), ``requests`` (the request
log), ``rollups`` (its hourly, 6-hour and daily totals), ``versions`` (prompt versions,
changes and their rollups), ``alerts`` (the alert loop's shared state), ``access``
(secrets, login throttle, review audit); ``base`` holds the shared helpers. Import from
here: the layout inside may change.
"""

from chatmon.models.access import FeedbackReviewAudit, InstanceSecret, LoginFailure
from chatmon.models.alerts import (
    AlertAttempt,
    AlertDelivery,
    AlertNotification,
    AlertRuleState,
    AlertSilence,
    PeriodicClaim,
)
from chatmon.models.base import new_id, table_of, utc_now
from chatmon.models.chat import ChatMessage, Conversation
from chatmon.models.requests import LLMRequest
from chatmon.models.rollups import (
    ALL_MODELS,
    LLMLatencyHourly,
    LLMRequestHourly,
    LLMUsageDaily,
    LLMUsageHourly,
    LLMUsageSixHourly,
)
from chatmon.models.versions import (
    ChangeEvent,
    LLMVersionHourly,
    LLMVersionLatencyHourly,
    PromptVersion,
)

__all__ = [
    "ALL_MODELS",
    "AlertAttempt",
    "AlertDelivery",
    "AlertNotification",
    "AlertRuleState",
    "AlertSilence",
    "ChangeEvent",
    "ChatMessage",
    "Conversation",
    "FeedbackReviewAudit",
    "InstanceSecret",
    "LLMLatencyHourly",
    "LLMRequest",
    "LLMRequestHourly",
    "LLMUsageDaily",
    "LLMUsageHourly",
    "LLMUsageSixHourly",
    "LLMVersionHourly",
    "LLMVersionLatencyHourly",
    "LoginFailure",
    "PeriodicClaim",
    "PromptVersion",
    "new_id",
    "table_of",
    "utc_now",
]
