"""The summaries of a network's runs (``model.kind: mlp``), typed as :mod:`summaries` types the
linear model's: no closed form, the measured curvature instead. The parts a linear fit shares
(the sharpness, the noise scale, the optimizer) are :mod:`summaries`'."""

from __future__ import annotations

from typing import Any, TypedDict

from lrtrain.runs.summaries import (
    NoiseScaleSummary,
    OptimizerSummary,
    ReplicaSummary,
    RunInfo,
    SharpnessSummary,
    ValidationSummary,
)


class NetworkModel(TypedDict):
    """model.kind beyond the linear one: what was trained."""

    kind: str  # mlp
    hidden: list[int]
    activation: str
    init: str
    parameters: int  # P


class NetworkVerdict(TypedDict):
    predicted: str | None  # the local quadratic at θ₀: monotone | oscillating | diverged
    observed: str  # monotone | oscillating | edge of stability | catapult | diverged
    rule: str  # which rule fired, with its numbers
    why: str  # the prediction's reason, and why it differed when it did
    differs: str | None  # why it differed (None: it did not, or nothing was predicted)
    diverged_at: int | None
    full_batch_prediction: bool


class _NetworkFitSummaryRequired(RunInfo):
    format_version: int
    kind: str  # "fit"
    name: str
    model: NetworkModel
    status: str
    steps: int
    max_iter: int
    lr: float
    initial: dict[str, float | None]  # loss
    final: dict[str, float | None]  # loss, grad_norm
    best_line: dict[str, float]  # loss: least squares' line on the same rows, for comparison
    exact_theory: str  # why the closed form and the exact mini-batch theory are not given
    verdict: NetworkVerdict
    sharpness: SharpnessSummary
    noise_scale: NoiseScaleSummary
    optimizer: OptimizerSummary
    data: dict[str, Any]
    trajectory: None  # a network's parameters are in model.pt, not per row
    true: None


class NetworkFitSummary(_NetworkFitSummaryRequired, total=False):
    """summary.json of a network's fit: no closed form — the measured curvature instead."""

    validation: ValidationSummary  # with data.validation_fraction
    replicas: ReplicaSummary  # with train.replicas


class NetworkSweepRow(TypedDict):
    """One rate of a network's sweep (sweep.csv's row)."""

    lr: float
    verdict: str
    predicted_verdict: str | None
    final_loss: float | None
    gap: None
    diverged_at: int | None
    stopped_at: int | None
    steps_to_target: None
    initial_sharpness: float | None
    final_sharpness: float | None
    threshold: float | None
    rule: str
    differs: str | None  # why the run differed from the prediction at θ₀ (None: it did not)


class NetworkSweepSummary(RunInfo):
    format_version: int
    kind: str  # "sweep"
    name: str
    model: NetworkModel
    lrs: list[float]
    status: str
    steps_run: int
    max_iter: int
    initial_sharpness: float | None  # λ_max(θ₀), the same start for every rate
    stable_lr_at_start: float | None  # 2(1+β)/λ_max(θ₀)
    best_line: dict[str, float]
    exact_theory: str
    full_batch_prediction: bool
    results: list[NetworkSweepRow]
    sharpness_every: int
    data: dict[str, Any]
    trajectory: None
    true: None
