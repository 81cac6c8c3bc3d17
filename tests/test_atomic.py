"""Atomic writes: the target is absent, as it was, or complete; never half-written."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lrtrain.errors import DataError, RunDirError
from lrtrain.runs.atomic import atomic_file, write_text


def test_atomic_write_leaves_no_temp_files(tmp_path: Path) -> None:
    target = tmp_path / "f.txt"
    write_text(target, "one")
    write_text(target, "two")
    assert target.read_text() == "two" and os.listdir(tmp_path) == ["f.txt"]


def test_a_failure_mid_write_keeps_the_old_file_and_no_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "f.csv"
    write_text(target, "old")
    with pytest.raises(KeyError), atomic_file(target, "w") as fh:
        fh.write("half of the new")
        raise KeyError("the writer failed")
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["f.csv"]


def test_an_os_error_is_the_callers_user_error(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-dir" / "f.csv"
    with pytest.raises(RunDirError, match=r"f\.csv: cannot write"):
        write_text(missing, "x")
    with (
        pytest.raises(DataError, match=r"f\.csv: cannot write"),
        atomic_file(missing, "w", DataError),
    ):
        pass
