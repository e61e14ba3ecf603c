"""chatmon.models helpers."""

from __future__ import annotations

import pytest
from sqlmodel import SQLModel

from chatmon.models import LoginFailure, table_of


def test_table_of_a_table_model_is_its_core_table() -> None:
    table = table_of(LoginFailure)
    assert table is SQLModel.metadata.tables["login_failure"]
    assert table.c.key.primary_key


def test_table_of_a_plain_model_is_refused() -> None:
    class NotATable(SQLModel):
        name: str

    with pytest.raises(TypeError, match="NotATable is not a table model"):
        table_of(NotATable)
