"""Every figure lrtrain draws, and the descent animation: from arrays and a loaded run
(:class:`lrtrain.runs.directory.RunData`), with numpy and matplotlib — never torch, never a tensor.

Each figure takes an optional matplotlib ``ax`` and returns its figure, so the same functions
serve a notebook and a run directory's files::

    >>> from lrtrain import plots
    >>> fig = plots.loss_figure(run)                                  # doctest: +SKIP

May import: ``runs`` (the loaded run) and ``theory``'s numpy-only modules (the exact surface,
gradient flow). Matplotlib is imported inside the functions, so importing this package costs
numpy alone. Nothing below ``workflows`` imports it.
"""

from lrtrain.plots.contours import contour_figure, contour_grid_figure
from lrtrain.plots.figures import compare_figure, fit_figure, loss_figure, modes_figure, run_figures
from lrtrain.plots.minibatch import batch_map_figure, replica_figure
from lrtrain.plots.sweep import sweep_loss_figure, sweep_summary_figure

__all__ = [
    "batch_map_figure", "compare_figure", "contour_figure", "contour_grid_figure", "fit_figure",
    "loss_figure", "modes_figure", "replica_figure", "run_figures", "sweep_loss_figure",
    "sweep_summary_figure",
]  # fmt: skip
