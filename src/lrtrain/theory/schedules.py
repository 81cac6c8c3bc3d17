"""Learning-rate schedules as the factor each step's rate is multiplied by.

The factors come from PyTorch's own ``torch.optim.lr_scheduler`` classes, stepped once per
optimizer step on an optimizer whose base rate is 1 — so f_t is exactly what that scheduler
would set the rate to at step t, and the rate used at step t is lr × f_t. Training and the
theory read the same table: the loop scales each replica's rate by f_t (a sweep's replicas keep
their own base rates under one schedule), and the exact predictions step with η_t = lr × f_t.
A table rather than a live scheduler keeps a resumed run exact without scheduler state and lets
a CUDA graph index it by a device-side step.
"""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

    from lrtrain.config.optimizer import Schedule


def lr_factors(schedule: Schedule, max_iter: int) -> np.ndarray | None:
    """f_0 … f_{max_iter−1} for ``schedule`` (None for a constant rate: f_t = 1)."""
    if schedule.kind == "constant":
        return None
    from lrtrain.theory.startup import without_dynamo_import

    with without_dynamo_import():  # building an optimizer would import torch._dynamo (~2 s)
        return _table(schedule, max_iter)


def _table(schedule: Schedule, max_iter: int) -> np.ndarray:
    import numpy as np
    import torch

    parameter = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.SGD([parameter], lr=1.0)
    scheduler = _scheduler(schedule, optimizer, max_iter)
    out = np.empty(max_iter)
    group = optimizer.param_groups[0]
    with warnings.catch_warnings():
        # the scheduler is stepped without optimizer steps on purpose: only its rates are read
        warnings.simplefilter("ignore", UserWarning)
        for step in range(max_iter):
            out[step] = group["lr"]
            if step + 1 < max_iter:
                scheduler.step()
    return out


def _scheduler(schedule: Schedule, optimizer: Any, max_iter: int) -> Any:
    from torch.optim import lr_scheduler as s

    from lrtrain.config import optimizer as c

    if isinstance(schedule, c.StepSchedule):
        return s.StepLR(optimizer, step_size=schedule.step_size, gamma=schedule.gamma)
    if isinstance(schedule, c.ExponentialSchedule):
        return s.ExponentialLR(optimizer, gamma=schedule.gamma)
    if isinstance(schedule, c.CosineSchedule):
        t_max = schedule.t_max or max_iter
        return s.CosineAnnealingLR(optimizer, T_max=t_max, eta_min=schedule.min_factor)
    if isinstance(schedule, c.WarmupCosineSchedule):
        total = schedule.t_max or max_iter
        factor = warmup_cosine(schedule.warmup_steps, total, schedule.min_factor)
        return s.LambdaLR(optimizer, factor)
    if isinstance(schedule, c.OneCycleSchedule):
        return s.OneCycleLR(
            optimizer, max_lr=1.0, total_steps=max_iter, pct_start=schedule.pct_start,
            anneal_strategy=schedule.anneal, cycle_momentum=False,
            div_factor=schedule.div_factor, final_div_factor=schedule.final_div_factor,
        )  # fmt: skip
    if isinstance(schedule, c.InvScalingSchedule):
        power = schedule.power_t
        return s.LambdaLR(optimizer, lambda t: 1.0 / (t + 1) ** power)
    raise ValueError(f"no scheduler for {schedule.kind!r}")  # pragma: no cover - constant


def warmup_cosine(warmup: int | None, total: int, min_factor: float) -> Any:
    """The factor at step t: t/w during the warm-up, then a half cosine from 1 to min_factor
    over the remaining steps (held there after ``total``), as transformers'
    ``get_cosine_schedule_with_warmup`` with a floor. ``warmup`` None: a tenth of ``total``."""
    w = max(total // 10, 1) if warmup is None else warmup

    def factor(t: int) -> float:
        if t < w:
            return t / w
        progress = min((t - w) / max(total - w, 1), 1.0)
        return min_factor + (1.0 - min_factor) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor


def depends_on_length(schedule: Schedule) -> bool:
    """Whether the schedule's shape follows train.max_iter (so a resumed run that changes
    max_iter would change rates already used)."""
    from lrtrain.config import optimizer as c

    if isinstance(schedule, c.OneCycleSchedule):
        return True
    return isinstance(schedule, c.CosineSchedule | c.WarmupCosineSchedule) and not schedule.t_max
