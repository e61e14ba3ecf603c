"""Fixtures shared by the unit tests (beside the session-wide ones in tests/conftest.py)."""

from tests.units.access_config import access_config  # noqa: F401  (a fixture)
