"""IMPLICIT_ABANDON_MINUTES: the wait after an error before a conversation is abandoned."""

from __future__ import annotations

import pytest

from chatmon.settings import SettingsError, load_settings


def test_default_is_ten_minutes() -> None:
    assert load_settings().implicit_abandon_minutes == 10.0


def test_a_value_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMPLICIT_ABANDON_MINUTES", "2.5")
    assert load_settings().implicit_abandon_minutes == 2.5


@pytest.mark.parametrize("bad", ["0", "-1", "1441", "soon"])
def test_a_bad_value_stops_startup_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, bad: str
) -> None:
    monkeypatch.setenv("IMPLICIT_ABANDON_MINUTES", bad)
    with pytest.raises(SettingsError, match="IMPLICIT_ABANDON_MINUTES"):
        load_settings()
