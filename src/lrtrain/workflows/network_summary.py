"""The summaries of runs whose loss is not a quadratic (``model.kind: mlp``), and the sharpness
part every run measuring it carries (``train.sharpness_every``): what the local quadratic at θ₀
predicted, what the loss and the measured sharpness showed, and which rule said so
(:mod:`lrtrain.theory.regimes`)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from lrtrain.runs.network_summaries import (
    NetworkFitSummary,
    NetworkModel,
    NetworkSweepRow,
    NetworkSweepSummary,
    NetworkVerdict,
)
from lrtrain.runs.summaries import FORMAT_VERSION, NoiseScaleSummary, SharpnessSummary
from lrtrain.theory.regimes import first_rise, observed_regime, predicted_regime, thresholds
from lrtrain.workflows.replicas import summarise
from lrtrain.workflows.summary import (
    how_it_ran,
    json_number,
    optimizer_summary,
    validation_summary,
)

if TYPE_CHECKING:
    from lrtrain.config.schema import Config
    from lrtrain.data.dataset import Dataset
    from lrtrain.engine.train import TrainResult
    from lrtrain.runs.records import ReplicaBand

# what a network's run says instead of a linear model's exact numbers
NO_EXACT_THEORY = (
    "none: the closed form, the critical rates, the exact mini-batch theory and the explore "
    "page's exact iteration hold where the loss is a quadratic (model.kind: linear); a "
    "network's curvature is measured instead (sharpness)"
)
PASSES_PER_PRODUCT = 3  # a Hessian-vector product: one forward and two backward passes


def network_model(config: Config, result: TrainResult) -> NetworkModel:
    spec = config.model
    return {
        "kind": spec.kind,
        "hidden": list(spec.hidden),
        "activation": spec.activation,
        "init": spec.init,
        "parameters": int(result.initial_grad.shape[1]),
    }


def limit_at(config: Config, result: TrainResult, k: int, steps: list[int]) -> np.ndarray:
    """The stability threshold at each step: 2(1+β)/η_t for heavy-ball SGD (β = 0: plain),
    2(1+β)/((1+2β)η_t) for Nesterov's; inf for the adaptive optimizers, which have no such
    rule."""
    opt = config.optimizer
    rates = np.asarray(result.rates(k, steps), dtype=np.float64)
    if opt.name != "sgd":
        return np.full(len(steps), math.inf)
    momentum = opt.momentum_value
    return np.asarray([thresholds(rate, momentum, opt.nesterov).stable if rate > 0 else math.inf
                       for rate in rates])  # fmt: skip


def sharpness_summary(config: Config, result: TrainResult, k: int) -> SharpnessSummary:
    """Replica k's measured sharpness against its thresholds."""
    assert result.sharpness is not None, "train measured the sharpness"
    steps = list(result.sharpness_steps)
    top, second = result.sharpness[:, k, 0], result.sharpness[:, k, 1]
    limits = limit_at(config, result, k, steps)
    ratios = top / limits
    products = list(result.sharpness_products)
    return {
        "every": config.train.sharpness_every,
        "steps": steps,
        "values": [json_number(float(v)) for v in top],
        "second": [json_number(float(v)) for v in second],
        "thresholds": [json_number(float(v)) for v in limits],  # None: no rule (adaptive)
        "ratios": [json_number(float(v)) for v in ratios],
        "initial": json_number(float(top[0])),
        "final": json_number(float(top[-1])),
        "hessian_vector_products": products,
        "seconds": result.sharpness_seconds,
        "full_batch_reads": PASSES_PER_PRODUCT * sum(products),
    }


def noise_summary(
    result: TrainResult,
    k: int,
    exact: list[float | None] | None = None,
    critical_batch_size: int | None = None,
) -> NoiseScaleSummary:
    """Replica k's gradient noise scale at the measured steps (``exact``: the linear model's
    from the rows' moments, at the same steps)."""
    assert result.noise is not None, "measured with the sharpness"
    trace, grad_sq = result.noise[:, 0, k], result.noise[:, 1, k]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = trace / grad_sq
    return {
        "steps": list(result.sharpness_steps),
        "b_simple": [json_number(float(v)) for v in ratio],
        "trace_sigma": [json_number(float(v)) for v in trace],
        "grad_sq_norm": [json_number(float(v)) for v in grad_sq],
        "exact_b_simple": exact,
        "critical_batch_size": critical_batch_size,
    }


def verdict(config: Config, result: TrainResult, k: int) -> NetworkVerdict:
    """Replica k's prediction at θ₀ and observed regime, with the rule and the reason."""
    history = result.replica_history(k)
    steps, loss = history["step"].numpy(), history["loss"].numpy()
    assert result.sharpness is not None
    measured = np.asarray(result.sharpness_steps)
    top = result.sharpness[:, k, 0]
    limits = limit_at(config, result, k, list(result.sharpness_steps))
    projection = None
    if result.top_projection is not None:
        projection = result.top_projection[: len(steps), k]
    seen = observed_regime(steps, loss, result.statuses[k], measured, top, limits, projection)
    predicted, why = _predicted(config, result, k, float(top[0]))
    differs = None
    if predicted is not None and predicted != seen.regime:
        moved = f"λ_max {float(top[0]):.4g} → {float(top[-1]):.4g}"
        differs = f"{_why_differs(predicted, seen.regime)} ({moved})"
        why += f"; observed {seen.regime} instead: {differs}"
    return {
        "predicted": predicted,
        "observed": seen.regime,
        "rule": seen.rule,
        "why": why,
        "differs": differs,
        "diverged_at": first_rise(loss, steps) if seen.regime == "diverged" else None,
        "full_batch_prediction": config.train.batch_size is None,
    }


def _predicted(
    config: Config, result: TrainResult, k: int, sharpness: float
) -> tuple[str | None, str]:
    opt = config.optimizer
    if opt.name != "sgd":
        return None, f"{opt.name} normalises its steps: no quadratic stability rule, only measured"
    rate = result.rates(k, [0])[0]
    return predicted_regime(rate, opt.momentum_value, sharpness, opt.weight_decay, opt.nesterov)


def _why_differs(predicted: str, observed: str) -> str:
    """Why a network's regime can differ from its quadratic at θ₀: the curvature moved."""
    if observed == "edge of stability":
        return ("training raised the sharpness (progressive sharpening) to 2(1+β)/η, where it "
                "hovered")  # fmt: skip
    if observed == "catapult":
        return ("the loss grew along the sharp directions until the network moved to a flatter "
                "region, where the rate is stable")  # fmt: skip
    order = ["monotone", "oscillating", "diverged"]
    if order.index(observed) > order.index(predicted):
        return "training raised the sharpness past the threshold the prediction stood on"
    return "the sharpness fell below the threshold the prediction stood on during training"


def _data(dataset: Dataset) -> dict[str, Any]:
    return {"n_samples": dataset.n, "features": dataset.feature_names,
            "target": dataset.target_name}  # fmt: skip


def network_fit_summary(
    config: Config,
    dataset: Dataset,
    result: TrainResult,
    validation: list[float] | None = None,
    band: ReplicaBand | None = None,
) -> NetworkFitSummary:
    """summary.json of a network's fit (replica 0; ``validation``: the held-out rows' loss at
    each logged step; ``band``: with train.replicas, the batch streams' mean and band)."""
    history = result.replica_history(0)
    steps = result.stop_steps[0]
    summary: NetworkFitSummary = {
        "format_version": FORMAT_VERSION,
        "kind": "fit",
        "name": config.name,
        "model": network_model(config, result),
        "status": result.statuses[0],
        "steps": steps,
        "max_iter": config.train.max_iter,
        "lr": result.lrs[0],
        "initial": {"loss": json_number(float(history["loss"][0]))},
        "final": {
            "loss": json_number(result.final_loss[0]),
            "grad_norm": json_number(result.final_grad_norm[0]),
        },
        "best_line": {"loss": float(dataset.answer().loss_star)},
        "exact_theory": NO_EXACT_THEORY,
        "verdict": verdict(config, result, 0),
        "sharpness": sharpness_summary(config, result, 0),
        "noise_scale": noise_summary(result, 0),
        "optimizer": optimizer_summary(config, None),
        "data": _data(dataset),
        "trajectory": None,
        "true": None,
        **how_it_ran(config, result, steps),
    }
    if validation is not None and dataset.validation is not None:
        summary["validation"] = validation_summary(dataset, result, validation)
    if band is not None:
        summary["replicas"] = summarise(band, result, None)
    return summary


def network_sweep_summary(
    config: Config, dataset: Dataset, result: TrainResult, interrupted: bool
) -> NetworkSweepSummary:
    """summary.json of a network's sweep: every rate's verdicts, from one start θ₀."""
    rows: list[NetworkSweepRow] = []
    for k, lr in enumerate(result.lrs):
        said = verdict(config, result, k)
        sharp = sharpness_summary(config, result, k)
        rows.append({
            "lr": lr,
            "verdict": said["observed"],
            "predicted_verdict": said["predicted"],
            "final_loss": json_number(result.final_loss[k]),
            "gap": None,
            "diverged_at": said["diverged_at"],
            "stopped_at": result.stop_steps[k] if result.statuses[k] == "diverged" else None,
            "steps_to_target": None,
            "initial_sharpness": sharp["initial"],
            "final_sharpness": sharp["final"],
            "threshold": sharp["thresholds"][0],
            "rule": said["rule"],
            "differs": said["differs"],
        })  # fmt: skip
    initial = rows[0]["initial_sharpness"] if rows else None
    opt = config.optimizer
    stable = None
    if initial and opt.name == "sgd":  # the rate whose threshold is λ_max(θ₀)
        unit = thresholds(1.0, opt.momentum_value, opt.nesterov).stable
        stable = unit / (initial + opt.weight_decay)
    return {
        "format_version": FORMAT_VERSION,
        "kind": "sweep",
        "name": config.name,
        "model": network_model(config, result),
        "lrs": list(result.lrs),
        "status": "interrupted" if interrupted else "completed",
        "steps_run": result.steps_run,
        "max_iter": config.train.max_iter,
        "initial_sharpness": initial,
        "stable_lr_at_start": stable,
        "best_line": {"loss": float(dataset.answer().loss_star)},
        "exact_theory": NO_EXACT_THEORY,
        "full_batch_prediction": config.train.batch_size is None,
        "results": rows,
        "sharpness_every": config.train.sharpness_every,
        "data": _data(dataset),
        "trajectory": None,
        "true": None,
        **how_it_ran(config, result, result.steps_run),
    }
