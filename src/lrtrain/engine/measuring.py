"""What a run measures besides its loss, set up for the model's family and the rows it trains
on: the sharpness tracker of ``train.sharpness_every`` (with the gradient noise scale at the
same steps), and the sharpness at θ₀ alone, which find-lr scores a network's range tests by."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch

from lrtrain.config.schema import Config
from lrtrain.data.dataset import Dataset
from lrtrain.data.devices import process_device, torch_dtype
from lrtrain.data.distributed import SINGLE, World
from lrtrain.engine.batches import Rows, all_rows
from lrtrain.engine.family import Model, build_model
from lrtrain.engine.gradients import Gradient, GramGradient
from lrtrain.engine.model import MyLinearRegressionModel
from lrtrain.engine.noise import gradient_noise
from lrtrain.engine.sharpness import Tracker, hessian_operator, top_eigenvalues


def tracker_for(
    config: Config,
    model: Model,
    data: Rows,
    full_gradient: Gradient,
    per_replica: bool,
    world: World,
) -> Tracker | None:
    """``train.sharpness_every``'s measurements (a network's always at θ₀ and at the end: the
    local quadratic's prediction needs them): Hessian-vector products by double backward
    through the model's loss over every row, or — rows not held (streamed), the linear
    model's Gram path — the statistics' Hessian itself."""
    every = config.train.sharpness_every
    if (not every and isinstance(model, MyLinearRegressionModel)) or per_replica:
        return None  # (find-lr's repeats each read their own rows: not measured)
    log_every = config.train.log_every
    rows = (config.train.max_iter - 1) // log_every + 1  # the logged rows
    if data.x is None:
        assert isinstance(full_gradient, GramGradient), "rows not held: the Gram path"
        hessian = full_gradient.hessian

        def gram_operator(theta: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
            return lambda v: torch.mm(v.to(hessian.dtype), hessian).to(v.dtype)

        return Tracker(gram_operator, every, config.seed, rows, log_every)
    operator = partial(hessian_operator, model.loss_at, rows=data, world=world)
    noise = partial(gradient_noise, model.loss_at, rows=data, world=world)
    return Tracker(operator, every, config.seed, rows, log_every, noise)


def initial_sharpness(config: Config, dataset: Dataset) -> float:
    """λ_max at θ₀, the model as training starts it, over every row (one process)."""
    device = process_device(config.device, SINGLE)
    dtype = torch_dtype(config.train.dtype)
    model = build_model(config, dataset.d, 1, dtype, device)
    rows = all_rows(dataset, device, dtype)
    theta = model.theta()
    gen = torch.Generator(device=theta.device).manual_seed(config.seed)
    start = torch.randn(theta.shape, dtype=theta.dtype, device=theta.device, generator=gen)
    estimate = top_eigenvalues(hessian_operator(model.loss_at, theta, rows), start)
    return float(estimate.values[0, 0])
