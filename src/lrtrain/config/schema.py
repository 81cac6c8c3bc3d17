"""The config: schema, dotted overrides and validation (where a config's text comes from in
``sources``, YAML in ``yaml_io``, error wording in ``messages``).

Every problem in a config is collected and reported at once, each line naming the file and the
dotted key, so a user fixes them all in one go. The schema's defaults are the lesson itself, so
``Config()`` is the embedded default and equals the bundled ``lecture.yaml``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Annotated, Any, Literal, Union, get_args

from pydantic import Field, ValidationError, field_validator, model_validator

from lrtrain.config.messages import describe
from lrtrain.config.optimizer import SCHEDULE_KINDS, OptimizerConfig
from lrtrain.config.sections import FiniteFloat, Int, Section
from lrtrain.config.sources import deep_copy, read_config_source
from lrtrain.config.yaml_io import dump_yaml, parse_yaml
from lrtrain.errors import ConfigError


class ArangeX(Section):
    """x_i = start + i·step (one feature): the lesson's 0.0, 0.1, …, 9.9."""

    kind: Literal["arange"] = "arange"
    start: FiniteFloat = 0.0
    step: FiniteFloat = 0.1

    @field_validator("step")
    @classmethod
    def _nonzero(cls, v: float) -> float:
        if v == 0:
            raise ValueError("must not be 0 (every x would be equal and the problem singular)")
        return v


class UniformX(Section):
    """Each feature drawn uniformly from [low, high)."""

    kind: Literal["uniform"] = "uniform"
    low: FiniteFloat = 0.0
    high: FiniteFloat = 1.0

    @model_validator(mode="after")
    def _ordered(self) -> UniformX:
        if not self.high > self.low:
            raise ValueError(f"high ({self.high}) must be greater than low ({self.low})")
        return self


class NormalX(Section):
    """Each feature drawn from N(mean, std²)."""

    kind: Literal["normal"] = "normal"
    mean: FiniteFloat = 0.0
    std: Annotated[FiniteFloat, Field(gt=0)] = 1.0


XSpec = Annotated[Union[ArangeX, UniformX, NormalX], Field(discriminator="kind")]  # noqa: UP007
# the keys each kind of data.x takes (the schema's one tagged section)
X_KINDS: dict[str, set[str]] = {
    m.model_fields["kind"].default: set(m.model_fields) for m in (ArangeX, UniformX, NormalX)
}
# the schema's tagged sections: where they are, and the keys each of their kinds takes
TAGGED: dict[str, dict[str, set[str]]] = {"data.x": X_KINDS, "optimizer.schedule": SCHEDULE_KINDS}


class DataConfig(Section):
    source: Literal["synthetic", "csv", "arrays"] = "synthetic"
    """`synthetic`, `csv`, or `arrays`: rows handed over from Python (`lrtrain.fit(config,
    data=(X, y))`: numpy, pandas, torch); a saved config of such a run needs them again"""
    n_samples: Annotated[Int, Field(ge=2, le=10**12)] = 100
    """rows (≥ 2)"""
    x: XSpec = Field(default_factory=ArangeX)
    """`arange` (one feature) · `uniform {low, high}` · `normal {mean, std}`"""
    true_w: Annotated[list[FiniteFloat], Field(min_length=1, max_length=10_000)] = [3.0]  # noqa: RUF012 (pydantic copies)
    """one weight per feature; its length is d"""
    true_b: FiniteFloat = 0.0
    """true intercept"""
    noise_std: Annotated[FiniteFloat, Field(ge=0)] = 1.0
    """y = f(x) + noise_std·N(0, 1)"""
    function: Literal["linear", "sine"] = "linear"
    """the synthetic target f: `linear` x·true_w + true_b (the lesson) · `sine`
    Σⱼ true_wⱼ·sin(xⱼ) + true_b, which a network fits and the linear model cannot"""
    path: str | None = None
    """CSV file (header row required); relative paths in a config file are relative to that file"""
    target: str = "y"
    """CSV target column"""
    features: list[str] | None = None
    """CSV feature columns (default: all but the target)"""
    standardize: bool = False
    """train on features scaled to zero mean, unit variance, and the target centred (parameters
    are reported in the data's units as well)"""
    validation_fraction: Annotated[FiniteFloat, Field(ge=0, lt=1)] = 0.0
    """hold this share of the rows out of training (chosen row by row from the seed); their
    loss is logged beside the training loss (`val_loss` in metrics.csv, the loss figure, the
    summary's `validation`)"""
    stream: bool = False
    """`true`: synthetic rows are regenerated chunk by chunk every pass instead of held in memory
    (bounded memory, any `n_samples`; full batch only)
    """

    @property
    def d(self) -> int:
        """Number of features of a synthetic problem (the length of ``true_w``)."""
        return len(self.true_w)

    @model_validator(mode="after")
    def _consistent(self) -> DataConfig:
        if self.source == "synthetic" and isinstance(self.x, ArangeX) and self.d != 1:
            raise ValueError(
                f"x.kind 'arange' gives one feature but true_w has {self.d} weights; "
                "use x.kind 'uniform' or 'normal' for several features"
            )
        if self.stream and self.source != "synthetic":
            raise ValueError(
                "stream: true regenerates synthetic data on demand; a CSV or arrays are held in "
                "memory — set data.stream: false (or generate the data: data.source: synthetic)"
            )
        if self.source == "csv" and not self.path:
            raise ValueError("source 'csv' needs data.path, the CSV file to read")
        return self


Width = Annotated[Int, Field(ge=1, le=1_000_000)]  # units in a hidden layer


class ModelConfig(Section):
    kind: Literal["linear", "mlp"] = "linear"
    """`linear`: the lesson's `MyLinearRegressionModel`, with its exact theory · `mlp`: layers
    of linear models with a non-linear activation between them (`model.hidden`,
    `model.activation`), trained and measured (`train.sharpness_every`)"""
    hidden: Annotated[list[Width], Field(max_length=64)] = [3, 4, 2]  # noqa: RUF012
    """`mlp`: the widths of the hidden layers (the lecture's [3, 4, 2])"""
    activation: Literal["relu", "tanh", "gelu", "sigmoid"] = "relu"
    """`mlp`: the non-linearity after each hidden layer (torch.nn's `ReLU`, `Tanh`, `GELU`,
    `Sigmoid`)"""
    init: Literal["zeros", "normal", "torch"] = "zeros"
    """`zeros` (the lesson) · `normal` (small, seeded) · `torch` (as `nn.Linear` initialises
    its layers, seeded; what `mlp` takes when `init` is not given: a network whose weights
    are all equal never breaks the symmetry between its units)"""

    @model_validator(mode="before")
    @classmethod
    def _network_init(cls, raw: Any) -> Any:
        if isinstance(raw, dict) and raw.get("kind") == "mlp" and "init" not in raw:
            return {**raw, "init": "torch"}
        return raw

    @model_validator(mode="after")
    def _family(self) -> ModelConfig:
        if self.kind == "mlp" and not self.hidden:
            raise ValueError(
                "kind 'mlp' needs at least one hidden layer, e.g. hidden: [3, 4, 2] "
                "(with none it is the linear model: kind: linear)"
            )
        if self.kind == "mlp" and self.init == "zeros":
            raise ValueError(
                "init 'zeros' gives every unit of a layer the same weights and the same "
                "gradient, so they never differ — use init: torch (or normal) for kind 'mlp'"
            )
        return self


DEFAULT_GAP = 1e-3  # the gap "steps to target" counts to when train.target_gap is unset


class TrainConfig(Section):
    max_iter: Annotated[Int, Field(ge=1, le=10**9)] = 100
    """steps"""
    batch_size: Annotated[Int, Field(ge=1)] | None = None
    """`null` = full batch (gradient descent); k = mini-batch SGD (see `train.sampling`)"""
    sampling: Literal["epoch", "replacement"] = "epoch"
    """mini-batches: `epoch` = slices of a fresh shuffle of the rows each epoch; `replacement` =
    each step draws `batch_size` rows independently, uniformly, with replacement — what the
    mini-batch theory (`theory.minibatch`, `expected_loss`) describes exactly"""
    replicas: Annotated[Int, Field(ge=1, le=65_536)] = 1
    """`fit` with mini-batches: K independent batch streams trained at once (replica 0 is the
    run itself); `replicas.csv` and the summary give their mean loss with its 99% band against
    the theory's `expected_loss`, and the verdict from their mean (`--replicas K`)"""
    tol: Annotated[FiniteFloat, Field(gt=0)] | None = None
    """`fit` only: stop (status `converged`) when the loss changes by less than tol in one step
    (`sweep-lr` refuses it; its target is `train.target_gap`)
    """
    target_gap: Annotated[FiniteFloat, Field(gt=0)] | None = None
    """the relative optimality gap (loss − loss*)/loss* to reach, loss* from the closed form
    (relative to the initial loss when loss* is 0): `fit` stops there (status `converged`; the
    summary puts the steps the theory predicts beside the steps taken); `sweep-lr` counts each
    rate's steps to it (1e-3 when unset)
    """
    log_every: Annotated[Int, Field(ge=1)] = 1
    """keep every k-th step in `metrics.csv` (and the last)"""
    dtype: Literal["float32", "float64"] = "float32"
    """`float32` or `float64`"""
    sharpness_every: Annotated[Int, Field(ge=0)] = 0
    """measure the sharpness — the top eigenvalue of the full-batch loss's Hessian, by Lanczos
    on Hessian-vector products — at every k-th step (and the last): the `sharpness` column of
    metrics.csv and the summary's `sharpness`, against the stability threshold 2/η; 0: off"""
    gradient: Literal["auto", "autograd", "gram"] = "auto"
    """how a full-batch step gets its loss and gradient: `autograd` the lesson's loop (forward,
    MSE, `loss.backward()`) over the rows; `gram` from the float64 statistics of one read of the
    data, O(p²) per step whatever N; `auto` gram from 65 536 rows, streamed or on several
    processes, else autograd (mini-batches always read their rows)
    """

    @property
    def gap_target(self) -> float:
        """The relative optimality gap "steps to target" counts to: ``target_gap``, else
        1e-3."""
        return self.target_gap if self.target_gap is not None else DEFAULT_GAP

    def full_batch(self, rows: int) -> bool:
        """Whether every step reads all ``rows``: no batch size, or batches as large as the
        data in shuffled epochs (drawn with replacement, N rows are still a random batch)."""
        return self.batch_size is None or (self.batch_size >= rows and self.sampling == "epoch")


class SweepConfig(Section):
    lrs: (
        Annotated[list[Annotated[FiniteFloat, Field(gt=0)]], Field(min_length=1, max_length=4096)]
        | None
    ) = None
    """learning rates for the sweep"""


FigureFormat = Literal["png", "svg", "pdf"]
FIGURE_FORMATS: tuple[str, ...] = get_args(FigureFormat)  # what matplotlib writes for lrtrain


class OutputConfig(Section):
    root: str = "runs"
    """where run directories go"""
    plots: list[Literal["loss", "contour", "fit", "modes"]] = ["loss", "contour", "fit", "modes"]  # noqa: RUF012
    """which figures to draw: `loss` (a sweep: its loss curves and final gap per rate),
    `contour` (a sweep: every rate's path), `fit` (fits only: the line through the data),
    `modes` (each eigen-direction's error, observed and predicted); `[]`: none"""
    format: FigureFormat = "png"
    """`png` · `svg` · `pdf`"""
    csv_rows: Annotated[Int, Field(ge=0)] = 200_000
    """a sweep's per-step table goes to `trajectories.csv` up to this many rows (rates × logged
    steps); beyond, to `trajectories.npz` (the same columns, `numpy.load`): formatting millions
    of rows as text takes longer than training them"""
    loggers: list[Literal["tensorboard", "mlflow"]] = []  # noqa: RUF012
    """also log fits and sweeps to TensorBoard (`RUN_DIR/tensorboard`) and/or MLflow (extras
    `lrtrain[tensorboard]`, `lrtrain[mlflow]`); `--logger NAME` on the command line"""
    mlflow_uri: str | None = None
    """MLflow tracking URI (default: `sqlite:///RUN_DIR/mlflow.db`, artifacts in
    `RUN_DIR/mlartifacts`)"""


class Config(Section):
    """The whole resolved config. ``Config()`` is the lesson."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")] = "lecture"
    """run name (letters, digits, `_ . -`)"""
    seed: Annotated[Int, Field(ge=0, lt=2**63)] = 0
    """seeds the data, the shuffling and `model.init: normal`"""
    device: Annotated[str, Field(pattern=r"^(auto|cpu|cuda|cuda:\d+)$")] = "auto"
    """`auto` (CUDA if available) · `cpu` · `cuda` · `cuda:N`"""
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    sweep: SweepConfig = Field(default_factory=SweepConfig)
    output: OutputConfig = Field(default_factory=OutputConfig)

    @model_validator(mode="after")
    def _stream_full_batch(self) -> Config:
        if self.data.stream and self.train.batch_size is not None:
            raise ValueError(
                "data.stream: true trains full-batch from statistics of one generation pass; "
                "mini-batches draw random rows from everywhere, which needs the data in memory "
                "— set train.batch_size: null, or data.stream: false"
            )
        if self.data.stream and self.train.gradient == "autograd":
            raise ValueError(
                "data.stream: true keeps no rows to run autograd over; its steps use the "
                "statistics — set train.gradient: auto (or gram), or data.stream: false"
            )
        if self.train.replicas > 1 and self.train.batch_size is None:
            raise ValueError(
                "train.replicas: independent batch streams need mini-batches (full-batch "
                "replicas would all be the same run) — set train.batch_size, or replicas: 1"
            )
        if self.train.gradient == "gram" and self.train.batch_size is not None:
            raise ValueError(
                "train.gradient: gram is full-batch gradient descent (the statistics of all "
                "rows); a mini-batch reads its rows — set train.batch_size: null, or "
                "train.gradient: auto"
            )
        self._network_settings()
        return self

    def _network_settings(self) -> None:
        """What only the linear model's exact answer makes possible, refused for a network."""
        if self.model.kind == "linear":
            return
        for wrong, fix in (
            (self.optimizer.auto, "lr and momentum: auto come from the linear model's closed-form "
             "Hessian, which a network has not — give numbers (lrtrain find-lr suggests one)"),
            (self.train.target_gap is not None, "train.target_gap counts to the closed form's "
             "loss, which a network has not — use train.tol or train.max_iter"),
            (self.train.gradient == "gram", "train.gradient: gram is least squares' statistics; "
             "a network's steps run autograd — set train.gradient: auto"),
            (self.data.stream, "data.stream: true keeps no rows for a network's forward pass — "
             "set data.stream: false"),
        ):  # fmt: skip
            if wrong:
                raise ValueError(f"model.kind: mlp: {fix}")

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def to_yaml(self) -> str:
        """The config as YAML to read and paste: one key per line, short lists inline."""
        return dump_yaml(self.to_dict())


# --------------------------------------------------------------------------- overrides


_DOTTED = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


def apply_overrides(
    raw: dict[str, Any], overrides: list[str], settings: Sequence[tuple[str, Any]] = ()
) -> dict[str, Any]:
    """Apply dotted ``key=value`` overrides (values parsed as YAML) to a raw config mapping,
    then ``settings``: (dotted key, value) pairs whose values are Python already (the
    estimator's parameters: no text to parse, ~0.17 ms of YAML each).

    A mapping value replaces the whole section, as in Hydra: ``data.x={kind: normal}``.
    """
    result = deep_copy(raw)
    errors = []
    pairs = []
    for item in overrides:
        key, sep, value_text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            errors.append(
                f"override '{item}': expected KEY=VALUE with a dotted key, e.g. optimizer.lr=0.01"
            )
            continue
        label = f"override '{item}'"
        if not _DOTTED.fullmatch(key):
            errors.append(f"{label}: '{key}' is not a dotted key like train.max_iter")
            continue
        try:
            value = parse_yaml(value_text, label) if value_text.strip() else None
        except ConfigError as exc:
            errors.extend(exc.messages)
            continue
        pairs.append((key, value, label))
    for key, value in settings:
        if not _DOTTED.fullmatch(key):
            errors.append(f"setting '{key}': not a dotted key like train.max_iter")
            continue
        pairs.append((key, deep_copy(value), f"setting '{key}'"))
    for key, value, label in pairs:
        error = _set(result, key, value, label)
        if error:
            errors.append(error)
    if errors:
        raise ConfigError(*errors)
    return result


def _set(result: dict[str, Any], key: str, value: Any, label: str) -> str | None:
    """Set one dotted key in the raw mapping; the error message, if it cannot be."""
    parts = key.split(".")
    node = result
    for depth, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            # A key inside a section the config leaves out starts from the section's
            # defaults (data.x.step=0.2 keeps data.x's kind and start).
            child = node[part] = deep_copy(_default_at(parts[: depth + 1]))
        if not isinstance(child, dict):
            where = ".".join(parts[: depth + 1])
            return f"{label}: '{where}' is a value, not a section"
        node = child
    if parts[-1] == "kind" and node.get("kind") != value:
        # a new kind keeps only the keys it takes (data.x.kind=normal drops step)
        kinds = TAGGED.get(".".join(parts[:-1]), {})
        for other in set(node) - kinds.get(str(value), set()):
            del node[other]
    node[parts[-1]] = value
    return None


def _default_at(parts: list[str]) -> Any:
    """The schema's default for a dotted path, or an empty section if it has none."""
    node: Any = Config().to_dict()
    for part in parts:
        node = node.get(part) if isinstance(node, dict) else None
    return node if isinstance(node, dict) else {}


# --------------------------------------------------------------------------- validation


def validate(raw: dict[str, Any], source: str = "<config>") -> Config:
    """Validate a raw mapping; every error is reported at once with its dotted path."""
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(
            *(describe(err, source, Config, TAGGED) for err in exc.errors())
        ) from None


def load_config(
    spec: str | None = None,
    overrides: list[str] | None = None,
    settings: Sequence[tuple[str, Any]] = (),
) -> Config:
    """Load ``-c SPEC`` (path, bundled name, or None for the lesson), apply overrides (then
    ``settings``, the same as Python values: :func:`apply_overrides`), validate."""
    raw, source = read_config_source(spec)
    return validate(apply_overrides(raw, overrides or [], settings), source)
