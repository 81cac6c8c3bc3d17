"""What a command does from start to finish: fit and resume, the learning-rate sweep, the
lr × batch-size map, find-lr (and the range tests as published), the explore page, predictions
from a saved run, the loggers, what the theory predicts for a run and the summaries of each run
kind, the progress bar offered to Python.

May import every package below it (``plots``, ``engine``, ``theory``, ``data``, ``runs``,
``config``). Reached from the CLI and from Python through :mod:`lrtrain.api`; nothing imports it
from below.
"""
