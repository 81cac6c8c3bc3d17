"""The ``lrtrain`` command: the Typer app (``app``) and one module per command (``fit``,
``sweep_lr``, ``find_lr``, ``plot``, ``explore``, ``configs``, ``validate``, ``schema``, ``data``,
``predict``), how a command runs (``running``: user errors → exit 2, Ctrl-C → save and 130),
``--nproc`` through torchrun's launcher, the drawer process, and the reports rendered with rich.

May import: :mod:`lrtrain.api` (everything a command does goes through it; never ``workflows``,
``engine`` or ``theory`` directly — checked), ``runs`` (to find the newest run, write a file
whole), ``data`` (the process and device checks ``--nproc`` makes before it launches),
``config``, ``errors``. The only package that imports typer; with ``workflows.progress`` the only
one that imports rich. Nothing imports it.
"""
