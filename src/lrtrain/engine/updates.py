"""How one step moves each replica (``train``'s update): SGD's gradients scaled by each
replica's rate before a unit-rate ``torch.optim.SGD`` step (exact for plain, momentum and
Nesterov SGD, weight decay folded in first), and the adaptive optimizers' step at the
optimizer's rate with each replica's displacement scaled by its rate (their state never depends
on the rate and their step is linear in it). A stopped replica does not move.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from lrtrain.config.schema import OptimizerConfig
from lrtrain.engine.family import Model


def build_optimizer(opt: OptimizerConfig, parameters: Any) -> torch.optim.Optimizer:
    """``opt``'s ``torch.optim`` class at lr = 1, its keys given where the config sets them
    (PyTorch's defaults otherwise). SGD's weight decay is folded into the gradient by the loop,
    before the per-replica rates scale it."""
    params = list(parameters)
    # On the CPU PyTorch's default implementation is the single-tensor loop, which it would
    # work out again at every step (~5–10 µs a step measured); saying so once is the same
    # arithmetic. Elsewhere its default (multi-tensor kernels) stays.
    foreach = False if all(p.device.type == "cpu" for p in params) else None
    if opt.name == "sgd":
        return torch.optim.SGD(params, lr=1.0, momentum=opt.momentum_value, nesterov=opt.nesterov,
                               weight_decay=0.0, foreach=foreach)  # fmt: skip
    keys = {key: getattr(opt, key) for key in opt.keys if getattr(opt, key) is not None}
    classes = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW,
               "rmsprop": torch.optim.RMSprop, "adagrad": torch.optim.Adagrad}  # fmt: skip
    optimizer: torch.optim.Optimizer = classes[opt.name](
        params, lr=1.0, weight_decay=opt.weight_decay, foreach=foreach, **keys
    )
    return optimizer


class GradSlot:
    """The parameters' .grad as the column views of one [K, p] buffer, made once: each step's
    update writes its scaled gradient into the buffer (one operation) instead of handing the
    optimizer new tensors, whose slicing and .grad assignments cost more than the arithmetic
    of a Gram step (measured ~40 against ~58 µs an update at K = 1 000). A gradient path that
    runs autograd replaces .grad; :meth:`attach` puts the views back."""

    def __init__(self, model: Model) -> None:
        self.model = model
        # laid out as θ is (the model's table): the update's writes and the optimizer's reads
        # run over memory in order
        self.buffer = torch.zeros_like(model.theta())
        # each parameter with its view of the buffer, held here: a module's attribute lookup
        # costs ~1 µs a step
        self.pairs = model.parameter_views(self.buffer)

    def attach(self) -> None:
        for param, view in self.pairs:
            if param.grad is not view:
                param.grad = view


def sgd_step(
    slot: GradSlot,
    take_step: Callable[[], None],
    theta: torch.Tensor,
    grad: torch.Tensor,
    rate: torch.Tensor,
    masking: bool,
    weight_decay: float,
) -> None:
    """Plain, momentum or Nesterov SGD at lr = 1 on the gradient ``grad`` [K, p] at ``theta``
    scaled by each replica's ``rate`` [K, 1], which is 0 for a stopped replica: it gets a zero
    gradient, and :func:`forget_momentum` has emptied its buffer, so it does not move.
    ``grad`` is the step's to overwrite. ``masking``: a stopped replica's gradient may not be
    finite. Called with gradients off (``train``'s loop), as ``take_step`` needs."""
    if weight_decay:
        grad.add_(theta, alpha=weight_decay)
    if grad.dtype == slot.buffer.dtype:
        torch.mul(grad, rate, out=slot.buffer)
    else:
        # Scaled in the gradient's dtype (``rate`` is in it), then cast once as it is written:
        # one multiplication into the parameters' dtype takes PyTorch's slow mixed-dtype path
        # (~18 against ~5 µs at K = 1 000 for a float64 Gram gradient).
        slot.buffer.copy_(grad.mul_(rate))
    if masking:
        # A stopped replica's gradient may be infinite or NaN, and inf·0 is NaN: make it 0.
        # An active replica's is finite (its loss passed the divergence check this step).
        slot.buffer.nan_to_num_(nan=0.0, posinf=math.inf, neginf=-math.inf)
    slot.attach()
    take_step()


def scaled_step(
    slot: GradSlot,
    take_step: Callable[[], None],
    theta: torch.Tensor,
    grad: torch.Tensor,
    rate: torch.Tensor,
    active: torch.Tensor | None,
) -> None:
    """An adaptive optimizer's step at lr = 1, each replica's displacement scaled by its
    ``rate`` [K, 1] (0 for a stopped one, whose gradient is zeroed too — it may be infinite,
    and the optimizer would move it to NaN, which 0 × NaN would keep; ``active`` None: every
    replica is active). Called with gradients off (``train``'s loop)."""
    theta = theta.clone()  # θ_t: the view the step reads moves with the parameters
    slot.buffer.copy_(grad)
    if active is not None:
        slot.buffer.masked_fill_(active.logical_not(), 0.0)
    slot.attach()
    take_step()
    for param, before in slot.model.parameter_views(theta):
        factor = rate if before.dim() == 2 else rate[:, 0]  # a [K] parameter: the linear b
        param.copy_(torch.addcmul(before, factor, param - before))


@torch.no_grad()
def forget_momentum(optimizer: torch.optim.Optimizer, model: Model, active: torch.Tensor) -> None:
    """Empty the momentum buffers of the stopped replicas (``active`` [K, 1] False): with a
    zero gradient and a zero buffer, SGD leaves a replica where it stopped. Called when a
    replica stops (every step on a GPU, which never asks the host which one did)."""
    stopped = active.logical_not().expand(-1, model.n_params)
    for param, gone in model.parameter_views(stopped):
        buffer = optimizer.state.get(param, {}).get("momentum_buffer")
        if buffer is not None:
            buffer.masked_fill_(gone, 0.0)
