"""What a run hands to its run directory, as one record per run kind: numpy arrays, text and
bytes — never tensors. ``workflows`` builds a record from a finished run; ``runs.directory``
writes every file of it, and nothing else reaches the writer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from lrtrain.config.schema import Config
    from lrtrain.runs.network_summaries import NetworkFitSummary, NetworkSweepSummary
    from lrtrain.runs.summaries import FitSummary, SweepSummary


@dataclass
class History:
    """One replica's logged rows, t = 0 … its stop (float64): what metrics.csv and
    trajectories.csv hold."""

    step: np.ndarray  # [R] int
    loss: np.ndarray  # [R]
    grad_norm: np.ndarray  # [R]
    theta: np.ndarray  # [R, p]: (w, b) at each row ([R, 0]: a network's, not kept)
    lr: np.ndarray  # [R]: the rate used at each row (the schedule's, when scheduled)
    # train.sharpness_every: λ_max at the rows measured (NaN elsewhere), and the stability
    # threshold 2(1+β)/η_t at every row (None: not measured)
    sharpness: np.ndarray | None = None
    threshold: np.ndarray | None = None


@dataclass
class Sample:
    """The rows of a one-feature data set kept for fit.png, in the data's units (before lrtrain
    0.5, standardised features where the run was standardised)."""

    feature: str
    target: str
    x: np.ndarray  # [n]
    y: np.ndarray  # [n]


@dataclass
class ModeHistory:
    """The modes of a run at its logged steps (what the Python API returns as ``FitRun.modes``)."""

    steps: np.ndarray  # [R]
    shown: list[int]
    eigenvalues: np.ndarray  # [k] of the shown modes
    observed: np.ndarray  # [R, k]: |u_iᵀ(θ_t − θ_target)|
    predicted: np.ndarray | None  # [R, k]: exact |error|, or the mini-batch RMS; None: no theory


@dataclass
class ReplicaBand:
    """Per logged step: the replicas' mean full-batch loss and its 99% band."""

    steps: np.ndarray  # [R]
    run: np.ndarray  # [R]: replica 0's full-batch loss — the run itself
    mean: np.ndarray  # [R]
    low: np.ndarray  # [R]
    high: np.ndarray  # [R]


@dataclass
class Curve:
    """One range test's record: the rate, the batch loss and the finder's smoothed loss."""

    finder: str
    repeat: int
    lrs: np.ndarray
    losses: np.ndarray
    smoothed: np.ndarray


@dataclass
class FitRecord:
    """Everything a fit writes. ``expected_loss``: the theory's E[L] at each logged step;
    ``band``/``band_expected``: with ``train.replicas``, the replicas' mean loss, its 99% band and
    E[L]; ``validation``: the held-out loss per logged step; ``model``/``checkpoint``: model.pt and
    checkpoint.pt as the engine serialised them."""

    config: Config
    summary: FitSummary | NetworkFitSummary
    arrays: dict[str, np.ndarray]
    history: History
    model: bytes
    checkpoint: bytes
    expected_loss: list[float] | None = None
    validation: list[float] | None = None
    band: ReplicaBand | None = None
    band_expected: list[float] | None = None
    modes: ModeHistory | None = None
    sample: Sample | None = None


@dataclass
class SweepRecord:
    """Everything a sweep writes: each rate's history (``histories[k]`` trained at ``lrs[k]``) and
    the theory's expected loss per rate and logged step (None: not modelled)."""

    config: Config
    summary: SweepSummary | NetworkSweepSummary
    arrays: dict[str, np.ndarray]
    lrs: list[float]
    histories: list[History]
    expected_loss: list[list[float]] | None = None
