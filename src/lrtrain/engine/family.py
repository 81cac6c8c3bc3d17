"""The model families (``model.kind``) and what the engine asks of one.

A family is one module holding a model of K replicas whose parameters are θ, a [K, P] table:
``theta()`` (a view the updates keep current), ``parameter_views(table)`` (each parameter with
its columns of a [K, P] table: how a scaled gradient reaches ``.grad`` and a stopped replica's
momentum is emptied), ``loss_at(θ, rows)`` (the mean squared error at any θ, for the
Hessian-vector products of :mod:`~.sharpness`) and ``n_params``. The loop, the optimizers, the
stop checks and the histories then treat every family alike.

- ``linear``: the lesson's :class:`~.model.MyLinearRegressionModel`, the one family with an exact
  theory (a quadratic loss): its full-batch steps may come from the statistics (Gram path), and
  its θ history draws the contour figures.
- ``mlp``: :class:`~.network.MLP`, autograd over its rows; what the quadratic theory says of it is
  measured (sharpness), not derived.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

import torch
from torch import nn

from lrtrain.config.schema import Config
from lrtrain.engine.batches import Rows
from lrtrain.engine.model import MyLinearRegressionModel
from lrtrain.engine.network import MLP


class Model(Protocol):
    """What the engine asks of a family's model of K replicas (an ``nn.Module``)."""

    @property
    def replicas(self) -> int: ...

    @property
    def n_params(self) -> int: ...

    def theta(self) -> torch.Tensor:
        """θ of every replica, [K, P], detached: a view the in-place updates keep current."""
        ...

    def parameter_views(self, table: torch.Tensor) -> list[tuple[nn.Parameter, torch.Tensor]]:
        """Each parameter with its columns of a [K, P] table laid out as θ."""
        ...

    def loss_at(self, theta: torch.Tensor, rows: Rows) -> torch.Tensor:
        """Every replica's mean squared error at any θ [K, P] over ``rows``, [K]."""
        ...

    def parameters(self, recurse: bool = True) -> Iterator[nn.Parameter]: ...

    def state_dict(self) -> dict[str, torch.Tensor]: ...

    def load_state_dict(self, state_dict: dict[str, torch.Tensor]) -> object: ...


def build_model(
    config: Config, d: int, replicas: int, dtype: torch.dtype, device: torch.device
) -> Model:
    """The config's model, K replicas of it, initialised as ``model.init`` says (seeded)."""
    spec = config.model
    if spec.kind == "mlp":
        network = MLP(d, spec.hidden, spec.activation, replicas, dtype, device)
        if spec.init == "torch":
            network.init_torch_(config.seed)
        else:
            network.init_normal_(config.seed)
        return network
    model = MyLinearRegressionModel(d, replicas=replicas, dtype=dtype, device=device)
    if spec.init == "normal":
        model.init_normal_(config.seed)
    elif spec.init == "torch":
        model.init_torch_(config.seed)
    return model


def keeps_path(model: Model, config: Config) -> bool:
    """Whether the loop keeps θ at every logged step: the linear model's path is what its
    contour figures draw; a network's, K × P numbers a row, only where something reads it —
    the loss of batch streams (``train.replicas``) or of held-out rows at every logged step."""
    if isinstance(model, MyLinearRegressionModel):
        return True
    return config.train.replicas > 1 or config.data.validation_fraction > 0
