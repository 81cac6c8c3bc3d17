"""The ``lrtrain`` command: the Typer app and one module per command, how a command runs (user
errors → exit 2, Ctrl-C → save and 130), ``--nproc`` through torchrun's launcher, the drawer
process, and the reports rendered with rich.

May import: :mod:`lrtrain.api` (everything a command does goes through it), ``config`` and
``errors``. The only package that imports typer; with ``workflows.progress`` the only one that
imports rich. Nothing imports it.
"""
