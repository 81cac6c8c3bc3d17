"""The config's ``optimizer`` section: which ``torch.optim`` optimizer, its keys, and the
learning-rate schedule (``optimizer.schedule``, one tagged section per kind).

The optimizers' own keys are flat, as in ``torch.optim`` (``betas``, ``eps``, ``alpha`` …);
a key the chosen optimizer does not take is refused by name, so ``betas`` on SGD is an error,
not a silent no-op. Keys left unset (null) take PyTorch's defaults.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal, Union

from pydantic import Field, model_validator

from lrtrain.config.sections import FiniteFloat, Int, Section, number_or_auto, resolved

OptimizerName = Literal["sgd", "adam", "adamw", "rmsprop", "adagrad"]

# The keys each optimizer takes besides lr, weight_decay and schedule (torch.optim's names).
OPTIMIZER_KEYS: dict[str, tuple[str, ...]] = {
    "sgd": ("momentum", "nesterov"),
    "adam": ("betas", "eps", "amsgrad"),
    "adamw": ("betas", "eps", "amsgrad"),
    "rmsprop": ("momentum", "alpha", "eps", "centered"),
    "adagrad": ("lr_decay", "eps", "initial_accumulator_value"),
}
# what a key holds when the user left it alone (momentum and nesterov default to plain SGD)
_UNSET = {"momentum": 0.0, "nesterov": False}


class ConstantSchedule(Section):
    """The same rate every step (the lesson)."""

    kind: Literal["constant"] = "constant"


class StepSchedule(Section):
    """``torch.optim.lr_scheduler.StepLR``: lr × gamma every ``step_size`` steps."""

    kind: Literal["step"] = "step"
    step_size: Annotated[Int, Field(ge=1)]
    gamma: Annotated[FiniteFloat, Field(gt=0)] = 0.1


class ExponentialSchedule(Section):
    """``torch.optim.lr_scheduler.ExponentialLR``: lr × gamma each step."""

    kind: Literal["exponential"] = "exponential"
    gamma: Annotated[FiniteFloat, Field(gt=0)]


class CosineSchedule(Section):
    """``torch.optim.lr_scheduler.CosineAnnealingLR`` from lr down to lr × min_factor."""

    kind: Literal["cosine"] = "cosine"
    t_max: Annotated[Int, Field(ge=1)] | None = None
    """steps of the half cosine (null: train.max_iter)"""
    min_factor: Annotated[FiniteFloat, Field(ge=0, le=1)] = 0.0
    """the last rate as a fraction of lr (torch's eta_min = lr × min_factor)"""


class WarmupCosineSchedule(Section):
    """Linear warm-up from 0 over ``warmup_steps``, then a half cosine to lr × min_factor
    (the transformers library's ``get_cosine_schedule_with_warmup``, as a ``LambdaLR``)."""

    kind: Literal["warmup_cosine"] = "warmup_cosine"
    warmup_steps: Annotated[Int, Field(ge=0)] | None = None
    """steps of linear warm-up (null: a tenth of t_max)"""
    t_max: Annotated[Int, Field(ge=1)] | None = None
    """warm-up and cosine together (null: train.max_iter)"""
    min_factor: Annotated[FiniteFloat, Field(ge=0, le=1)] = 0.0


class OneCycleSchedule(Section):
    """``torch.optim.lr_scheduler.OneCycleLR`` over train.max_iter steps, peaking at lr (its
    momentum cycling off: the optimizer's momentum stays what the config says)."""

    kind: Literal["onecycle"] = "onecycle"
    pct_start: Annotated[FiniteFloat, Field(gt=0, lt=1)] = 0.3
    div_factor: Annotated[FiniteFloat, Field(gt=0)] = 25.0
    """the first rate is lr / div_factor"""
    final_div_factor: Annotated[FiniteFloat, Field(gt=0)] = 1e4
    """the last rate is lr / (div_factor × final_div_factor)"""
    anneal: Literal["cos", "linear"] = "cos"


class InvScalingSchedule(Section):
    """scikit-learn SGDRegressor's ``invscaling``: η_t = lr / (t + 1)^power_t (a ``LambdaLR``)."""

    kind: Literal["invscaling"] = "invscaling"
    power_t: Annotated[FiniteFloat, Field(gt=0)] = 0.25


SCHEDULE_CLASSES = (
    ConstantSchedule, StepSchedule, ExponentialSchedule, CosineSchedule, WarmupCosineSchedule,
    OneCycleSchedule, InvScalingSchedule,
)  # fmt: skip
Schedule = Annotated[
    Union[  # noqa: UP007
        ConstantSchedule,
        StepSchedule,
        ExponentialSchedule,
        CosineSchedule,
        WarmupCosineSchedule,
        OneCycleSchedule,
        InvScalingSchedule,
    ],
    Field(discriminator="kind"),
]
SCHEDULE_KINDS: dict[str, set[str]] = {
    m.model_fields["kind"].default: set(m.model_fields) for m in SCHEDULE_CLASSES
}


class OptimizerConfig(Section):
    name: OptimizerName = "sgd"
    """`sgd` (the lesson) · `adam` · `adamw` · `rmsprop` · `adagrad`: the `torch.optim` class;
    each takes its own keys below (others are refused); exact theory for `sgd` only"""
    lr: Annotated[
        Annotated[FiniteFloat, Field(gt=0)] | Literal["auto"], number_or_auto(0, None, "> 0")
    ] = 0.001
    """> 0, or `auto` (sgd): the fastest constant step for this data (η* = 2/(λ_min+λ_max);
    with `momentum: auto`, Polyak's pair; with a fixed momentum, the lr minimising the worst
    mode's rate); with a schedule, the base rate the schedule scales
    """
    momentum: Annotated[
        Annotated[FiniteFloat, Field(ge=0, lt=1)] | Literal["auto"],
        number_or_auto(0, 1, "in [0, 1)"),
    ] = 0.0
    """sgd, rmsprop: in [0, 1), or `auto` (sgd, needs `lr: auto`): Polyak's heavy ball, or with
    `nesterov: true` the textbook Nesterov setting
    """
    nesterov: bool = False
    """sgd: needs momentum > 0"""
    weight_decay: Annotated[FiniteFloat, Field(ge=0)] = 0.0
    """≥ 0, as the optimizer's own `weight_decay` (an L2 term in the gradient; `adamw`:
    decoupled — lrtrain's default 0, not torch's 0.01)"""
    betas: (
        tuple[Annotated[FiniteFloat, Field(ge=0, lt=1)], Annotated[FiniteFloat, Field(ge=0, lt=1)]]
        | None
    ) = None
    """adam, adamw: the moving averages' factors (null: 0.9, 0.999)"""
    eps: Annotated[FiniteFloat, Field(gt=0)] | None = None
    """adam, adamw, rmsprop (null: 1e-8), adagrad (null: 1e-10)"""
    amsgrad: bool | None = None
    """adam, adamw (null: false)"""
    alpha: Annotated[FiniteFloat, Field(ge=0, lt=1)] | None = None
    """rmsprop: smoothing of the squared gradients (null: 0.99)"""
    centered: bool | None = None
    """rmsprop (null: false)"""
    lr_decay: Annotated[FiniteFloat, Field(ge=0)] | None = None
    """adagrad (null: 0)"""
    initial_accumulator_value: Annotated[FiniteFloat, Field(ge=0)] | None = None
    """adagrad (null: 0)"""
    schedule: Schedule = Field(default_factory=ConstantSchedule)
    """the rate over the steps: `constant` · `step {step_size, gamma}` · `exponential {gamma}`
    · `cosine {t_max, min_factor}` · `warmup_cosine {warmup_steps, t_max, min_factor}` ·
    `onecycle {pct_start, div_factor, final_div_factor, anneal}` · `invscaling {power_t}`;
    `lr` is the base (onecycle: the peak) rate"""

    @model_validator(mode="after")
    def _check_combination(self) -> OptimizerConfig:
        foreign = [self._foreign_key(key) for key in _all_keys() if key not in self.keys]
        errors = [e for e in foreign if e is not None]
        if self.name == "sgd" and self.momentum == "auto" and self.lr != "auto":
            errors.append(
                "momentum: auto needs lr: auto as well — the optimal momentum comes paired with "
                "its own step size (Polyak's, or Nesterov's with nesterov: true); set lr: auto, "
                "or give momentum a number"
            )
        if self.nesterov and self.momentum == 0:
            errors.append("nesterov: true needs momentum > 0 (as torch.optim.SGD requires)")
        if self.name != "sgd" and (self.lr == "auto" or self.momentum == "auto"):
            errors.append(
                f"auto is gradient descent's rule from the Hessian; {self.name} has no exact "
                "theory to choose it — give lr (and momentum) a number, or use name: sgd"
            )
        if errors:
            raise ValueError("; ".join(errors))
        return self

    def _foreign_key(self, key: str) -> str | None:
        """The error for a key set that this optimizer does not take (None: left unset)."""
        value = getattr(self, key)
        if value is None or value == _UNSET.get(key):
            return None
        owners = ", ".join(n for n, keys in OPTIMIZER_KEYS.items() if key in keys)
        return (
            f"{key} is not a key of {self.name} (it takes lr, weight_decay, schedule"
            f"{', ' + ', '.join(self.keys) if self.keys else ''}); {key} belongs to {owners} "
            f"— remove it, or set optimizer.name to one of those"
        )

    @property
    def keys(self) -> tuple[str, ...]:
        """The optimizer's own keys (besides lr, weight_decay, schedule)."""
        return OPTIMIZER_KEYS[self.name]

    @property
    def exact_theory(self) -> bool:
        """Whether lrtrain's exact dynamics describe this optimizer (SGD: plain, momentum,
        Nesterov, weight decay); the adaptive ones are observed only."""
        return self.name == "sgd"

    @property
    def auto(self) -> bool:
        return self.lr == "auto" or self.momentum == "auto"

    @property
    def lr_value(self) -> float:
        """The learning rate as a number (``auto`` is resolved before training: api.prepare)."""
        return resolved(self.lr, "optimizer.lr")

    @property
    def momentum_value(self) -> float:
        """SGD's momentum as a number: what the exact theory uses (0 for the adaptive ones,
        whose own momentum the theory does not describe)."""
        return resolved(self.momentum, "optimizer.momentum") if self.name == "sgd" else 0.0


def _all_keys() -> list[str]:
    return sorted({key for keys in OPTIMIZER_KEYS.values() for key in keys})


def describe_schedule(schedule: Mapping[str, Any]) -> str:
    """A schedule's section (as in summary.json) in a few words, for reports:
    ``cosine (t_max 100, min_factor 0.0)``; keys left null are not shown."""
    keys = {k: v for k, v in schedule.items() if k != "kind" and v is not None}
    if not keys:
        return str(schedule["kind"])
    words = ", ".join(f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}" for k, v in keys.items())
    return f"{schedule['kind']} ({words})"
