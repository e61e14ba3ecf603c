"""Spending limits (chatmon.services.budget): the daily and monthly budgets and what
happens when they run out."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, ValidationInfo, field_validator

from chatmon.settings.values import parse_percents


class BudgetSection(BaseModel):
    """DAILY_/MONTHLY_BUDGET_USD, BUDGET_* (and DAILY_COST_THRESHOLD, the old name)."""

    daily_cost_threshold: float = Field(default=50.0, ge=0.0)  # alias of DAILY_BUDGET_USD
    # Unset: DAILY_COST_THRESHOLD is the daily budget (its old name); set, it wins.
    daily_budget_usd: float | None = Field(default=None, ge=0.0)
    monthly_budget_usd: float | None = Field(default=None, ge=0.0)  # unset: no monthly budget
    budget_timezone: str = "UTC"  # where days and months start
    budget_warn_percent: str = "50,80,100"  # each level alerts once per period
    budget_action: Literal["warn", "fallback", "refuse"] = "warn"
    # After BUDGET_ACTION, so its validator sees it.
    budget_fallback_model: str | None = Field(default=None, validate_default=True)
    budget_forecast_horizon_minutes: float = Field(default=120.0, gt=0.0, le=31 * 24 * 60)

    @field_validator("budget_timezone", mode="after")
    @classmethod
    def _timezone_exists(cls, value: str) -> str:
        import zoneinfo

        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (e.g. UTC, Europe/Paris)") from None
        return value

    @field_validator("budget_warn_percent", mode="after")
    @classmethod
    def _warn_levels_are_percents(cls, value: str) -> str:
        parse_percents(value)
        return value

    @field_validator("budget_fallback_model", mode="after")
    @classmethod
    def _fallback_needs_model(cls, value: str | None, info: ValidationInfo) -> str | None:
        value = (value or "").strip() or None
        if info.data.get("budget_action") == "fallback" and value is None:
            raise ValueError("is required when BUDGET_ACTION=fallback (e.g. a cheaper model)")
        return value

    @property
    def daily_budget(self) -> float:
        """The daily budget in USD: DAILY_BUDGET_USD, else DAILY_COST_THRESHOLD."""
        return (
            self.daily_budget_usd
            if self.daily_budget_usd is not None
            else (self.daily_cost_threshold)
        )

    @property
    def budget_warn_levels(self) -> list[float]:
        """BUDGET_WARN_PERCENT as sorted, distinct percents."""
        return parse_percents(self.budget_warn_percent)
