"""What least squares knows exactly, before and beside training: the Hessian's spectrum, critical
and optimal learning rates and ``auto`` settings, full-batch dynamics mode by mode, mini-batch SGD
in expectation and its step counts, learning-rate schedules, the OLS statistics, the eigen-modes of
a path, gradient flow and the exact loss surface.

May import: ``data`` (the statistics it starts from), ``runs`` (the summary types its parts
fill: ``runs.summaries``), ``config``, ``errors``. Never the engine: the theory is computed
without training, and training is checked against it.
"""
