"""The old module name of :mod:`chatmon.services.versions`, kept for the card's
presenter (``versions_view``), which imports these names from here."""

from chatmon.services.versions import (
    METRICS,
    Change,
    Estimate,
    Metric,
    Side,
    VersionsReport,
    report,
)

__all__ = ["METRICS", "Change", "Estimate", "Metric", "Side", "VersionsReport", "report"]
