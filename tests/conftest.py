"""Shared test set-up: every test starts from the same seeds; OpenMP threads wait asleep, not spinning."""

import os

# The test workers (pytest -n auto) and the smoke notebooks' kernels share the cores. OpenMP threads that wait by
# spinning then make torch ~50x slower: 30 epochs of a tiny neural ODE at 2 threads beside one other 2-thread job
# took 112 s spinning, 2.3 s with PASSIVE (2.5 s at 1 thread). Set before anything imports torch (this file is
# loaded first); the kernels inherit it.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest

from nanoutils.env import seed_everything


@pytest.fixture(autouse=True)
def _seeded() -> None:
    seed_everything(0)
