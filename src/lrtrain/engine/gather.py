"""One result from the groups of learning rates that several processes trained (a sweep under
torchrun: ``distributed.deal`` hands rate i to rank i mod W), the replicas back in their
original order, the measurements merged on the union of their steps."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
import torch

from lrtrain.engine.train import TrainResult


def _state_entry(result: TrainResult, name: str) -> torch.Tensor:
    return result.model_state[name]


def concat_results(parts: list[TrainResult], world: dict[str, Any]) -> TrainResult:
    """One result from the groups of learning rates that processes trained (dealt out by
    ``distributed.deal``), replicas back in their original order. Sweeps are not resumed, so
    optimizer and loop states are not kept."""
    from lrtrain.data.distributed import undeal

    order = undeal([[(r, k) for k in range(len(part.lrs))] for r, part in enumerate(parts)])

    def pick(get: Callable[[TrainResult], torch.Tensor], dim: int) -> torch.Tensor:
        return torch.stack([get(parts[r]).select(dim, k) for r, k in order], dim=dim)

    def each(get: Callable[[TrainResult], list[Any]]) -> list[Any]:
        return [get(parts[r])[k] for r, k in order]

    first = parts[0]
    merged = TrainResult(
        lrs=each(lambda p: p.lrs),
        steps=first.steps,
        loss=pick(lambda p: p.loss, 1),
        grad_norm=pick(lambda p: p.grad_norm, 1),
        theta=pick(lambda p: p.theta, 1),
        stop_steps=each(lambda p: p.stop_steps),
        statuses=each(lambda p: p.statuses),
        final_loss=each(lambda p: p.final_loss),
        final_grad_norm=each(lambda p: p.final_grad_norm),
        final_theta=pick(lambda p: p.final_theta, 0),
        initial_grad=pick(lambda p: p.initial_grad, 0),
        elapsed_s=max(p.elapsed_s for p in parts),
        steps_run=max(p.steps_run for p in parts),
        device=first.device,
        model_state={name: pick(partial(_state_entry, name=name), 0) for name in first.model_state},
        world=world,
        gradient=first.gradient,
        lr_factors=first.lr_factors,
    )
    if all(part.sharpness is not None for part in parts):
        _merge_measurements(parts, order, merged)
    return merged


def _merge_measurements(
    parts: list[TrainResult], order: list[tuple[int, int]], merged: TrainResult
) -> None:
    """The groups' sharpness and noise on the union of their measured steps (a group whose
    replicas all stopped early measured its last at its own end: NaN at the others')."""
    steps = sorted({step for part in parts for step in part.sharpness_steps})
    at = {step: i for i, step in enumerate(steps)}

    def spread(part: TrainResult, values: np.ndarray) -> np.ndarray:
        out = np.full((len(steps), *values.shape[1:]), np.nan)
        out[[at[step] for step in part.sharpness_steps]] = values
        return out

    sharp = [spread(part, part.sharpness) for part in parts if part.sharpness is not None]
    noise = [spread(part, part.noise) for part in parts if part.noise is not None]
    merged.sharpness_steps = steps
    merged.sharpness = np.stack([sharp[r][:, k] for r, k in order], axis=1)
    if len(noise) == len(parts):
        merged.noise = np.stack([noise[r][:, :, k] for r, k in order], axis=2)
    products = [0] * len(steps)
    for part in parts:
        for step, count in zip(part.sharpness_steps, part.sharpness_products, strict=True):
            products[at[step]] += count
    merged.sharpness_products = products
    merged.sharpness_seconds = max(part.sharpness_seconds for part in parts)
    vectors = [part.sharpness_vectors for part in parts if part.sharpness_vectors is not None]
    if len(vectors) == len(parts):
        merged.sharpness_vectors = np.stack([vectors[r][k] for r, k in order])
    projections = [part.top_projection for part in parts if part.top_projection is not None]
    if len(projections) == len(parts):
        merged.top_projection = np.stack([projections[r][:, k] for r, k in order], axis=1)
