"""Waiting on what a process does, not on the clock: its progress bar reaching a step, a file
appearing. Used by the tests that interrupt or kill runs at a chosen moment."""

from __future__ import annotations

import os
import re
import subprocess
import threading
import time
from pathlib import Path

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
STEP = re.compile(r"\s([1-9][0-9]*)/[0-9?]")  # the progress bar's "completed/total", past 0

# A child process whose rich progress bar draws into a pipe (as on a terminal, wide enough that
# the step count is never cut), so that a test can see training under way.
PROGRESS_ENV = {"FORCE_COLOR": "1", "COLUMNS": "200"}


class Output:
    """Everything a process writes to its stdout, read as it comes by a thread; wait on it with
    :meth:`wait_for` and take all of it with :meth:`text` once the process has ended."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        self.proc, self._chunks, self._changed = proc, [], threading.Condition()
        self._fd = proc.stdout.fileno()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while chunk := os.read(self._fd, 65536):
            with self._changed:
                self._chunks.append(chunk.decode(errors="replace"))
                self._changed.notify_all()
        with self._changed:
            self._chunks.append("")  # end of output
            self._changed.notify_all()

    def _plain(self) -> str:
        return ANSI.sub("", "".join(self._chunks)).replace("\r", "\n")

    def wait_for(self, pattern: re.Pattern[str] = STEP, timeout: float = 120) -> re.Match[str]:
        """The first match of ``pattern`` in the output so far, waiting for it."""
        end = time.monotonic() + timeout
        with self._changed:
            while True:
                found = pattern.search(self._plain())
                if found is not None:
                    return found
                ended = self._chunks and self._chunks[-1] == ""
                assert not ended, f"the process ended first:\n{self._plain()[-3000:]}"
                left = end - time.monotonic()
                assert left > 0, f"{pattern.pattern!r} never appeared:\n{self._plain()[-3000:]}"
                self._changed.wait(left)

    def text(self, timeout: float = 120) -> str:
        """All of the output, once the process has closed it."""
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the process did not end"
        return self._plain()


def wait_for_file(path: Path, proc: subprocess.Popen[str], timeout: float = 60) -> None:
    """Until ``path`` exists (polled: files have no event to wait on without inotify)."""
    end = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, f"the process ended before {path} appeared"
        assert time.monotonic() < end, f"{path} never appeared"
        time.sleep(0.02)
