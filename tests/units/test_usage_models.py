"""The three usage rollups carry the same counters, in the same order, as the write and
read sides name them (they are written out per table: see ``LLMUsageHourly``)."""

from __future__ import annotations

from chatmon.models import LLMUsageDaily, LLMUsageHourly, LLMUsageSixHourly
from chatmon.services.usage_rollups import COUNTERS


def _columns(model: type) -> list[tuple[str, str, object]]:
    table = model.__table__  # type: ignore[attr-defined]
    return [(c.name, str(c.type), c.default.arg if c.default else None) for c in table.columns]


def test_every_rollup_has_the_key_then_the_same_counters() -> None:
    hourly = _columns(LLMUsageHourly)
    assert [name for name, *_ in hourly] == ["dimension", "hour", "key", *COUNTERS]
    for model, period in ((LLMUsageSixHourly, "block"), (LLMUsageDaily, "day")):
        columns = _columns(model)
        assert [name for name, *_ in columns[:3]] == ["dimension", period, "key"]
        assert columns[3:] == hourly[3:], model
        assert columns[1][1] == hourly[1][1]  # the period: an integer like the hour
