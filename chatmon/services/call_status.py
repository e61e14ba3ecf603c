"""Kept for modules not yet moved: :class:`CallStatus` lives in ``chatmon.observability``.

It moved below the services so that the exporters in ``chatmon/observability/`` can
name a call's outcome too; import it from :mod:`chatmon.observability.call_status`.
"""

from __future__ import annotations

from chatmon.observability.call_status import ERROR_STATUSES, CallStatus

__all__ = ["ERROR_STATUSES", "CallStatus"]
