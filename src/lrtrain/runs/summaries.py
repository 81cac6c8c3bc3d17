"""Every summary a run directory holds, typed: what ``summary.json`` says for each run kind (fit,
sweep, batch map, find-lr; a network's fit and sweep in :mod:`network_summaries`), and the
format's constants (its version, the files beside it).

They are typed dictionaries rather than dataclasses because they *are* JSON: written as they
are, read back by ``plot``, ``predict``, ``jq`` and older or newer lrtrain versions. The types
say which keys exist and what they hold, so a reader of ``summary["verdict"]["why"]`` — and the
type checker — knows its shape. ``workflows.summary`` builds them (one function per run kind);
the theory fills in its parts (``theory.ols``, ``theory.modes``); ``runs`` writes and reads them.
"""

from __future__ import annotations

from typing import Any, TypedDict

# Of the run directory: summary.json and the files beside it. 2: the p × p arrays moved from
# summary.json to arrays.npz, and wide runs keep their parameters in trajectory.npy. 3:
# arrays.npz keeps H's eigenvectors alone (H = V diag(λ) Vᵀ), float32 beyond 200 parameters.
# 4: standardised runs train on a centred target (``standardization.target_mean``; a
# network's arrays.npz ``y_mean``), and data_sample.csv holds the data's own units.
FORMAT_VERSION = 4
CENTRED_TARGET_SINCE = 4  # the format from which standardised parameters are those of y − ȳ
ARRAYS_FILE = "arrays.npz"
# Parameters per row beyond which metrics.csv / trajectories.csv keep only the scalars and the
# parameters go to the .npy file ``trajectory`` names (2 000 features would be 2 001 columns).
CSV_PARAMETERS = 100
COEFFICIENTS_FILE = "coefficients.csv"  # wide runs: the fit statistics' per-coefficient table


class Params(TypedDict):
    """Parameters as the model holds them: w (one per feature) and b; None where not finite."""

    w: list[float | None]
    b: float | None


class Initial(TypedDict):
    loss: float | None
    grad: Params


class Final(Params):
    loss: float | None
    grad_norm: float | None


class ClosedForm(Params):
    loss: float


class Gap(TypedDict):
    absolute: float | None
    relative: float | None  # to loss*, or where it is 0 to the initial loss (gap_scale)


class Truth(TypedDict):
    w: list[float]
    b: float | None


class Verdict(TypedDict):
    predicted: str | None  # monotone | oscillating | diverged, from the Hessian (None: no theory)
    observed: str  # the same words, from the loss and the path
    diverged_at: int | None  # the first step whose loss is above the initial loss
    full_batch_prediction: bool  # the prediction is for full-batch SGD
    why: str


class AutoChoice(TypedDict):
    rule: str
    rate: float
    note: str | None


class OptimizerSummary(TypedDict):
    name: str  # the torch.optim class: sgd | adam | adamw | rmsprop | adagrad
    schedule: dict[str, Any]  # optimizer.schedule: kind and its keys
    lr: float
    momentum: float
    nesterov: bool
    weight_decay: float
    auto: AutoChoice | None


class _TheoryRequired(TypedDict):
    rate: float  # the slowest mode's contraction per step
    target_gap: float | None
    predicted_steps: int | None


class Theory(_TheoryRequired, total=False):
    observed_steps: int | None  # with train.target_gap
    full_batch_prediction: bool  # with train.target_gap
    minibatch: MinibatchTheory  # with train.batch_size


class ValidationSummary(TypedDict):
    """The held-out rows' loss (data.validation_fraction)."""

    fraction: float
    rows: int
    initial_loss: float | None
    final_loss: float | None
    best_loss: float | None  # the lowest at a logged step …
    best_step: int  # … and where


class _StandardizationRequired(TypedDict):
    mean: list[float]
    scale: list[float]
    condition_number_before: float | None


class Standardization(_StandardizationRequired, total=False):
    """data.standardize: the features trained on are (x − mean)/scale, the target
    y − target_mean (absent from runs before lrtrain 0.5, which did not centre it)."""

    target_mean: float


class OriginalParams(TypedDict):
    w: list[float]
    b: float


class ArraysRef(TypedDict):
    """Where the analysis's p × p arrays are: a NumPy ``.npz`` (no pickle) beside summary.json."""

    file: str
    shapes: dict[str, list[int]]  # hessian, eigenvectors


class DataSummary(TypedDict):
    n_samples: int
    features: list[str]
    target: str


class RunInfo(TypedDict):
    """How a run ran: where, by which gradient path, how fast, with what."""

    device: str
    gradient: str  # the path the steps took: autograd, gram, mini-batch …
    distributed: dict[str, Any]  # World.describe()
    dtype: str
    seed: int
    elapsed_s: float
    steps_per_s: float | None
    versions: dict[str, str]


class _FitSummaryRequired(RunInfo):
    format_version: int
    kind: str  # "fit"
    name: str
    status: str  # completed | converged | diverged | interrupted
    steps: int
    max_iter: int
    lr: float
    initial: Initial
    final: Final
    closed_form: ClosedForm
    optimality_gap: Gap
    true: Truth | None
    verdict: Verdict
    warnings: list[str]
    optimizer: OptimizerSummary
    theory: Theory
    analysis: dict[str, Any]  # Analysis.to_json()
    arrays: ArraysRef
    trajectory: str | None  # the parameters per logged step, when not in metrics.csv (wide)
    data: DataSummary


class FitSummary(_FitSummaryRequired, total=False):  # with data.standardize, train.replicas
    final_original: OriginalParams
    closed_form_original: OriginalParams
    standardization: Standardization
    replicas: ReplicaSummary
    statistics: FitStatistics  # always: the OLS statistics of the closed form
    modes: ModesSummary  # the eigen-modes (with a prediction)
    validation: ValidationSummary  # with data.validation_fraction
    sharpness: SharpnessSummary  # with train.sharpness_every: λ_max measured, = the closed form's
    noise_scale: NoiseScaleSummary  # with train.sharpness_every (rows held)


class _SweepSummaryRequired(RunInfo):
    format_version: int
    kind: str  # "sweep"
    name: str
    lrs: list[float]
    critical_lr: float
    monotone_lr_limit: float
    asymptotically_optimal_lr: float
    condition_number: float | None
    status: str  # completed | interrupted
    steps_run: int
    recommended_lr: float | None
    recommendation: str
    full_batch_prediction: bool  # the predicted verdicts are the full-batch theory's
    minibatch_critical_lr: float | None  # mini-batches: the mean-square one they predict from
    closed_form: ClosedForm
    true: Truth | None
    results: list[SweepRow]
    analysis: dict[str, Any]
    arrays: ArraysRef
    trajectory: str | None  # the parameters of trajectories.csv's rows, when not in it (wide)
    max_iter: int


class SweepSummary(_SweepSummaryRequired, total=False):
    standardization: Standardization  # with data.standardize


class SweepRow(TypedDict):
    """One learning rate of a sweep: a row of sweep.csv and of the summary's ``results``."""

    lr: float
    verdict: str  # observed: monotone | oscillating | diverged
    predicted_verdict: str | None  # None: the optimizer has no exact theory
    final_loss: float | None  # None: not finite
    gap: float | None  # (final loss − loss*) / the gap's scale
    diverged_at: int | None  # the first step whose loss is above the initial loss
    stopped_at: int | None  # where a diverged run stopped
    steps_to_target: int | None


class MapRow(TypedDict):
    """One (batch size, rate): a row of batch_map.csv."""

    batch_size: int | None  # None: full batch
    lr: float
    predicted_steps: int | None  # E[L_t] first at or below the target (None: never, or beyond)
    observed_steps: int | None  # the streams' mean full-batch loss first at or below it


class MapSize(TypedDict):
    """One batch size of the map: its limit, its fastest rate predicted and observed."""

    batch_size: int | None
    critical_lr: float  # mean-square critical lr (full batch: 2/λ_max)
    predicted_fastest_lr: float | None  # the theory's best constant rate (any rate, not the grid)
    predicted_fastest_steps: int | None
    observed_best_lr: float | None  # the grid rate whose streams' mean got there first
    observed_best_steps: int | None


class BatchMapSummary(TypedDict):
    """summary.json of a map (kind ``batch-map``)."""

    format_version: int
    kind: str  # "batch-map"
    name: str
    sampling: str  # train.sampling of every size's batches
    paths: int  # independent batch streams per (size, rate): the observed side is their mean
    target_gap: float  # the relative gap the steps count to
    target_loss: float  # … as a loss
    lrs: list[float]
    max_iter: int
    rows: int  # the data set's: where the full batch sits on a batch-size axis
    sizes: list[MapSize]
    critical_batch_size: int | None  # the theory's, over powers of two up to the rows
    linear_scaling_up_to: int | None  # the largest size where the fastest lr ∝ batch holds
    elapsed_s: float


class MinibatchTheory(TypedDict):
    """summary.json ``theory.minibatch``: the mean-square prediction for a mini-batch fit."""

    available: bool
    why: str | None  # why not, when not available
    sampling: str  # train.sampling: epoch (shuffled epochs) or replacement
    approximation: bool  # epoch: the theory (drawn with replacement) approximates the run
    batch_size: int
    critical_lr: float | None  # mean-square critical lr for this batch size and rule
    full_batch_critical_lr: float
    noise_floor: float | None  # E[L_∞] − L* at the last step's rate (None: diverges)
    target_gap: float  # the relative gap the next three answer to (train.target_gap, or 1e-3)
    fastest_lr: float | None  # the constant lr reaching it in the fewest expected steps
    fastest_steps: int | None  # … and those steps
    critical_batch_size: int | None  # the smallest 2^k whose fewest steps are ≤ 2 × full batch's
    schedule: str | None  # the schedule in words (None: a constant rate)
    verdict: str | None  # "converges" (to the noise floor) | "diverges" (in mean square)
    expected_final_loss: float | None
    observed_final_loss: float | None


class ReplicaSummary(TypedDict):
    """summary.json ``replicas``: K batch streams against the theory."""

    count: int
    verdict: str  # "converges" (the mean ends below where it began) | "diverges" (in mean square)
    diverged: int  # replicas stopped by the divergence guard
    final_mean_loss: float | None
    final_band: list[float | None]  # the 99% band of the mean at the last step
    expected_final_loss: float | None
    inside_band: float | None  # the share of logged steps whose expected loss is in the band


class Ratios(TypedDict):
    """A suggestion divided by each reference (None where there is none)."""

    critical: float
    optimal: float | None  # None: a network has no η*
    minibatch_critical: float | None
    fastest: float | None


class Spread(TypedDict):
    values: list[float]  # one per repeat
    min: float
    median: float
    max: float


class FindLrSummary(TypedDict):
    """summary.json of ``lrtrain find-lr`` (kind ``find-lr``)."""

    format_version: int
    kind: str
    name: str
    repeats: int
    batch_size: int | None
    optimizer: str
    tests: dict[str, dict[str, float]]  # each finder's published settings
    suggestions: dict[str, float]  # the median over the repeats
    spread: dict[str, Spread]
    critical_lr: float  # 2/λ_max (for the optimizer's momentum)
    critical_from: str  # the closed form's λ_max, or — a network — λ_max(θ₀) measured
    optimal_lr: float | None  # η* (None: a network, which has none)
    minibatch_critical_lr: float | None
    fastest_lr: float | None  # the sweep's: the fewest steps to the target gap
    fastest_steps: int | None
    target_gap: float
    ratios: dict[str, Ratios]
    elapsed_s: float


class Coefficient(TypedDict):
    name: str  # w_0 … w_{d−1}, b
    feature: str | None  # the feature w_i multiplies (None for b)
    estimate: float
    se: float | None  # None where the data cannot identify it (singular, or no residual dof)
    t: float | None
    p: float | None
    ci_low: float | None
    ci_high: float | None


class FitStatistics(TypedDict):
    """summary.json ``statistics``: of the closed-form (OLS) estimate, in original units."""

    estimator: str  # "ols": the least-squares estimate θ*, whatever optimizer trained
    note: str | None  # what is not reported, and why (weight decay, singular data)
    n: int
    dof: int  # N − p, the residual degrees of freedom
    r2: float | None
    adj_r2: float | None
    rmse: float  # √(RSS/N)
    sigma: float | None  # residual standard error √(RSS/(N − p))
    level: float
    coefficients: list[Coefficient]
    # wide runs (over 100 parameters): the coefficients' file; summary.json then holds [] and
    # runs.load_run reads them back
    coefficients_file: str | None


class ModeSummary(TypedDict):
    index: int  # in ascending order of the eigenvalues (0: the flattest)
    eigenvalue: float  # λ_i of the loss's Hessian H
    eigenvector: list[float] | None  # u_i (None beyond 100 parameters: arrays.npz has them)
    contraction: float | None  # the factor the mode's error shrinks by per step (None: no theory)
    steps_per_digit: float | None  # ln 10 / −ln(contraction) (None: it does not shrink)


class ModesSummary(TypedDict):
    """summary.json ``modes``."""

    prediction: str  # what the predicted curves are, or why there are none
    shown: list[int]  # the modes modes.csv and the figure carry
    modes: list[ModeSummary]  # every mode up to 100 parameters; beyond, the shown ones


# --------------------------------------------------------------------------- networks


class SharpnessSummary(TypedDict):
    """The top Hessian eigenvalue of the full-batch loss at the measured steps (Lanczos on
    Hessian-vector products), against the stability threshold 2(1+β)/η_t at each."""

    every: int  # train.sharpness_every (0: at θ₀ and at the end only)
    steps: list[int]
    values: list[float | None]  # λ_max(θ_t)
    second: list[float | None]  # λ_2(θ_t) (at the end; elsewhere when resolved)
    thresholds: list[float | None]  # 2(1+β)/η_t (None: the optimizer has no such rule)
    ratios: list[float | None]  # λ_max / threshold
    initial: float | None  # λ_max(θ₀)
    final: float | None  # where the run ended
    hessian_vector_products: list[int]  # per measurement (each for every replica at once)
    seconds: float  # all measurements together
    full_batch_reads: int  # passes over every row they took (3 a product: forward, 2 backward)


class NoiseScaleSummary(TypedDict):
    """The gradient noise scale B_simple = tr(Σ)/|G|² (McCandlish et al., 2018) at the steps the
    sharpness was measured, from per-example gradients; for the linear model also exactly, from
    the rows' moments, and the exact critical batch size of a mini-batch fit beside it."""

    steps: list[int]
    b_simple: list[float | None]
    trace_sigma: list[float | None]
    grad_sq_norm: list[float | None]
    exact_b_simple: list[float | None] | None  # the linear model, up to 10 parameters
    critical_batch_size: int | None  # the mini-batch theory's (linear mini-batch fits)
