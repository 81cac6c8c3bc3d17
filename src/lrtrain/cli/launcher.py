"""``--nproc N``: the same command line run on N local processes through torchrun's launcher
(as ``torchrun --nproc-per-node N -m lrtrain …`` would). The CLI calls :func:`launch` and exits
with the code it returns; the processes report for themselves."""

from __future__ import annotations

import logging
import os
from typing import Any

from lrtrain.config.schema import Config

EXIT_INTERRUPTED = 130


def launch(cfg: Config, nproc: int, items: int | None, argv: list[str]) -> tuple[int, str | None]:
    """Run ``argv`` (this command's arguments, ``--nproc`` removed here) on ``nproc`` processes;
    returns (exit code, a message to print or None). ``items``: the learning rates a sweep
    deals out (None: a fit, whose rows are sharded)."""
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import get_args_parser, run

    from lrtrain.data.devices import resolve_device
    from lrtrain.data.distributed import check_gpus, check_sweep_size, check_world_size
    from lrtrain.data.load import row_count

    if items is None:
        check_world_size(row_count(cfg.data), nproc)
    else:
        check_sweep_size(items, nproc)
    if cfg.device != "cpu" and resolve_device(cfg.device).type == "cuda":
        check_gpus(nproc)
    args = get_args_parser().parse_args(
        ["--nnodes=1", f"--nproc-per-node={nproc}", "--rdzv-backend=c10d",
         "--rdzv-endpoint=127.0.0.1:0", "--max-restarts=0", "--module", "lrtrain",
         *without_nproc(argv)]
    )  # fmt: skip
    # Each process gets its share of the cores (torchrun would say 1, with a warning).
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    # The launcher's own log lines (rendezvous, "shutting down workers") are noise here: the
    # processes report for themselves. Its loggers exist once torch.distributed.run is imported.
    for name in list(logging.root.manager.loggerDict):
        if name.startswith("torch.distributed"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
    try:
        run(args)
    except ChildFailedError as exc:
        return exit_code(exc.failures)
    except SignalException:
        # Ctrl-C reached the processes too: they stopped together at a step and rank 0 saved
        # the run (its message says where); the launcher passed the signal on and ends here.
        return EXIT_INTERRUPTED, None
    return 0, None


def exit_code(failures: dict[int, Any]) -> tuple[int, str | None]:
    """The exit code that tells what happened: rank 0's own code, else the lowest rank's. A
    process the launcher stopped with a signal (after another one ended) says nothing of its
    own, so codes from signals count only when there is no other."""
    main = failures.get(0)
    if main is not None and main.exitcode > 0:
        return int(main.exitcode), None
    own = [failures[rank].exitcode for rank in sorted(failures) if failures[rank].exitcode > 0]
    if own:
        return int(own[0]), None
    signal_number = -failures[min(failures)].exitcode
    return 1, f"a process was killed by signal {signal_number}"


def without_nproc(argv: list[str]) -> list[str]:
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--nproc":
            skip = True
        elif not arg.startswith("--nproc="):
            out.append(arg)
    return out
