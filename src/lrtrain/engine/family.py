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

from typing import Union

import torch

from lrtrain.config.schema import Config
from lrtrain.engine.model import MyLinearRegressionModel
from lrtrain.engine.network import MLP

Model = Union[MyLinearRegressionModel, MLP]  # noqa: UP007 (a runtime alias for the type checker)


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


def keeps_path(model: Model) -> bool:
    """Whether the loop keeps θ at every logged step: the linear model's path is what its
    contour figures draw; a network's would be K × P numbers a row that nothing reads."""
    return isinstance(model, MyLinearRegressionModel)
