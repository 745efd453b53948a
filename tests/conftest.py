"""What every test shares: its helpers (cli_helpers, by_hand, ...) live in this folder, which
pytest puts on sys.path for the tests in the package folders below it; and a wide terminal,
so that a test reads whole tables (the tests of narrow terminals and pipes set COLUMNS
themselves)."""

import pytest


@pytest.fixture(autouse=True)
def _wide_terminal(monkeypatch):
    monkeypatch.setenv("COLUMNS", "400")
