"""Shared fixtures: every test runs in its own temporary directory."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")
if "PYTEST_XDIST_WORKER" in os.environ:  # pytest -n: one thread per worker, no oversubscription
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("NUMBA_NUM_THREADS", "1")  # the fused kernel's threads, likewise
    os.environ.setdefault("LRTRAIN_DRAWERS", "1")  # one drawing process per command, likewise


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The slow tests first, in their own order: under ``-n`` each worker then starts on a
    long test and the short ones fill the end, instead of one worker finishing a 20-second
    test while the other waits (longest first is what keeps the tail short). Every worker
    collects the same order, as xdist requires."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)  # stable


@pytest.fixture(autouse=True)
def _fused_kernel_as_found() -> object:
    """A test that loads the fused statistics kernel (numba) leaves it unloaded for the next:
    where loaded, every later pass of the process would take it, and the suite would test
    whichever path its test order happened to pick."""
    yield
    fused = sys.modules.get("lrtrain.data.fused")  # imported by a test, or not at all
    if fused is not None:
        fused._kernel = None


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def cpu() -> list[str]:
    """Overrides that keep a run small and on the CPU."""
    return ["device=cpu"]
