"""How one step moves each replica (``train``'s update): SGD's gradients scaled by each
replica's rate before a unit-rate ``torch.optim.SGD`` step (exact for plain, momentum and
Nesterov SGD, weight decay folded in first), and the adaptive optimizers' step at the
optimizer's rate with each replica's displacement scaled by its rate (their state never depends
on the rate and their step is linear in it). A stopped replica does not move.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from lrtrain.config import OptimizerConfig
from lrtrain.model import MyLinearRegressionModel


def build_optimizer(opt: OptimizerConfig, parameters: Any) -> torch.optim.Optimizer:
    """``opt``'s ``torch.optim`` class at lr = 1, its keys given where the config sets them
    (PyTorch's defaults otherwise). SGD's weight decay is folded into the gradient by the loop,
    before the per-replica rates scale it."""
    if opt.name == "sgd":
        return torch.optim.SGD(parameters, lr=1.0, momentum=opt.momentum_value,
                               nesterov=opt.nesterov, weight_decay=0.0)  # fmt: skip
    keys = {key: getattr(opt, key) for key in opt.keys if getattr(opt, key) is not None}
    classes = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW,
               "rmsprop": torch.optim.RMSprop, "adagrad": torch.optim.Adagrad}  # fmt: skip
    optimizer: torch.optim.Optimizer = classes[opt.name](
        parameters, lr=1.0, weight_decay=opt.weight_decay, **keys
    )
    return optimizer


@torch.no_grad()
def sgd_step(
    model: MyLinearRegressionModel,
    take_step: Callable[[], None],
    lr: torch.Tensor,
    active: torch.Tensor,
    weight_decay: float,
    momentum: bool,
) -> None:
    old = (model.w.clone(), model.b.clone()) if momentum else None
    for param, rate, going in (
        (model.w, lr.unsqueeze(1), active.unsqueeze(1)),
        (model.b, lr, active),
    ):
        grad = param.grad
        assert grad is not None  # the gradient path has just set it
        if weight_decay:
            grad.add_(param, alpha=weight_decay)
        # A stopped replica's gradient becomes 0 outright (it may be infinite, and inf·0 is
        # NaN); torch.where costs a fraction of masked_fill_ with a broadcast mask.
        param.grad = torch.where(going, grad.mul_(rate), 0.0)
    take_step()
    if old is not None:
        # Momentum would keep moving a stopped replica: put it back where it stopped.
        model.w.copy_(torch.where(active.unsqueeze(1), model.w, old[0]))
        model.b.copy_(torch.where(active, model.b, old[1]))


@torch.no_grad()
def scaled_step(
    model: MyLinearRegressionModel,
    take_step: Callable[[], None],
    rate: torch.Tensor,
    active: torch.Tensor,
) -> None:
    """An adaptive optimizer's step at lr = 1, each replica's displacement scaled by its rate
    (0 for a stopped one, whose gradient is zeroed too: it may be infinite)."""
    params = ((model.w, rate.unsqueeze(1), active.unsqueeze(1)), (model.b, rate, active))
    old = []
    for param, _, going in params:
        assert param.grad is not None  # the gradient path has just set it
        param.grad = torch.where(going, param.grad, 0.0)
        old.append(param.clone())
    take_step()
    for (param, scale, going), before in zip(params, old, strict=True):
        param.copy_(torch.addcmul(before, torch.where(going, scale, 0.0), param - before))
