"""Shared test set-up: every test starts from the same seeds."""

import pytest

from nanoutils.env import seed_everything


@pytest.fixture(autouse=True)
def _seeded() -> None:
    seed_everything(0)
