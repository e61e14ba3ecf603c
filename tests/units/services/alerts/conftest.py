"""Fixtures of the alert tests."""

from tests.units.replay_drain import _replays_finish_before_the_database_goes

__all__ = ["_replays_finish_before_the_database_goes"]  # autouse: pytest finds it here
