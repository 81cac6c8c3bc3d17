"""Training progress drawn with rich: the CLI's bar, and ``progress=True`` in the Python API
(rich renders it as a live widget in Jupyter). The one place besides ``cli`` that imports rich,
because the notebook API asks for rich's notebook-aware progress; imported only when used."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from rich.console import Console

if TYPE_CHECKING:
    from lrtrain.engine.train import ProgressCallback


class ProgressBar:
    """A rich progress bar fed by the training callback; silent unless on a terminal or in a
    notebook (rich draws it as a live widget there)."""

    def __init__(self, enabled: bool, description: str, console: Console | None = None) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        console = console or Console()
        self.enabled = enabled and (console.is_terminal or console.is_jupyter)
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}"),
            TextColumn("{task.fields[rate]} steps/s"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=True,
            disable=not self.enabled,
        )
        self.task = self.progress.add_task(description, total=None, loss="…", rate="…")
        self.start = time.perf_counter()
        self.last_draw = 0.0

    def __enter__(self) -> ProgressBar:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.progress.__exit__(*exc)

    def __call__(self, step: int, total: int, losses: list[float]) -> None:
        now = time.perf_counter()
        if not self.enabled or (now - self.last_draw < 0.1 and step < total):
            return  # throttled: redrawing costs more than a training step
        self.last_draw = now
        rate = step / max(now - self.start, 1e-9)
        shown = f"{losses[0]:.6g}" if len(losses) == 1 else f"{min(losses):.4g} (best)"
        self.progress.update(
            self.task, completed=step, total=total, loss=shown, rate=f"{rate:,.0f}"
        )


@contextmanager
def progress_for(
    progress: ProgressCallback | bool | None, description: str
) -> Iterator[ProgressCallback | None]:
    """The callback the engine gets: the caller's own, a rich bar for ``True``, or none."""
    if progress is True:
        with ProgressBar(True, description) as bar:
            yield bar
    else:
        yield progress or None
