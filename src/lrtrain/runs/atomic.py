"""Files written whole or not at all: a hidden temporary file beside the target, flushed and
fsync'd, then renamed over it in one step. A reader — or a crash, or kill -9 — only ever sees
the file absent, as it was, or complete. Every file lrtrain writes goes through here."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from lrtrain.errors import LrtrainError, RunDirError


def _umask_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


_FILE_MODE = _umask_mode()


@contextlib.contextmanager
def atomic_file(
    path: Path, mode: str = "wb", error: type[LrtrainError] = RunDirError, **open_args: Any
) -> Iterator[IO[Any]]:
    """Yield an open temporary file beside ``path``; on success it is flushed, fsync'd and
    renamed to ``path``; on any failure it is removed. An OS error becomes ``error`` (a user
    error: exit 2) naming the path."""
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            os.chmod(tmp, _FILE_MODE)  # mkstemp makes 0600; lrtrain's files are ordinary files
            with os.fdopen(fd, mode, **open_args) as fh:
                yield fh
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise error(f"{path}: cannot write: {exc.strerror or exc}") from None


def write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that ``path`` is never seen half-written."""
    with atomic_file(path) as fh:
        fh.write(data)


def write_text(path: Path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))
