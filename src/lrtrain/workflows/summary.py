"""The reports of a fit and of a sweep, assembled in one place: what ``summary.json`` holds,
what the CLI prints (``report``) and what the figures read (``plots``).

They are typed dictionaries rather than dataclasses because they *are* JSON: written as they
are, read back by ``plot``, ``predict``, ``jq`` and older or newer lrtrain versions. The types
say which keys exist and what they hold, so a reader of ``summary["verdict"]["why"]`` — and the
type checker — knows its shape. ``runs`` only writes and reads them.
"""

from __future__ import annotations

import math
import platform
import statistics
from collections.abc import Sequence
from typing import TYPE_CHECKING

from lrtrain.runs.summaries import (
    ARRAYS_FILE,
    COEFFICIENTS_FILE,
    CSV_PARAMETERS,
    FORMAT_VERSION,
    ArraysRef,
    BatchMapSummary,
    FindLrSummary,
    FitSummary,
    MapSize,
    OptimizerSummary,
    Params,
    Ratios,
    RunInfo,
    Spread,
    Standardization,
    SweepSummary,
    Theory,
    Truth,
    ValidationSummary,
)

if TYPE_CHECKING:
    from lrtrain.config.schema import Config
    from lrtrain.data.dataset import Dataset
    from lrtrain.data.dataset import Standardization as DataStandardization
    from lrtrain.engine.train import TrainResult
    from lrtrain.theory.analysis import Analysis, AutoSettings
    from lrtrain.workflows.finder import RangeTest
    from lrtrain.workflows.prediction import Prediction
    from lrtrain.workflows.sweep import SweepOutcome


def _versions() -> dict[str, str]:
    import numpy as np
    import torch  # only the training commands assemble summaries

    from lrtrain._version import __version__

    return {
        "lrtrain": __version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


def json_number(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _params(theta: list[float]) -> Params:
    return {"w": [json_number(v) for v in theta[:-1]], "b": json_number(theta[-1])}


def fit_summary(
    config: Config,
    dataset: Dataset,
    analysis: Analysis,
    result: TrainResult,
    auto: AutoSettings | None = None,
    prediction: Prediction | None = None,
    validation: list[float] | None = None,
) -> FitSummary:
    """summary.json of a fit, from the results of replica 0 (and the theory's ``prediction``
    for it: the mini-batch theory of a mini-batch fit; ``validation``: the held-out rows' loss
    at each logged step)."""
    from lrtrain.theory.analysis import divergence_step, gap_scale, observed_verdict, warnings_for
    from lrtrain.theory.ols import fit_statistics
    from lrtrain.workflows.prediction import predicted_verdict

    history = result.replica_history(0)
    status = result.statuses[0]
    observed = observed_verdict(history["loss"], history["theta"], status, analysis.top_eigenvector)
    steps = result.stop_steps[0]
    final_loss = result.final_loss[0]
    target_loss = analysis.target_loss
    gap = final_loss - target_loss
    scale = gap_scale(target_loss, float(history["loss"][0]))
    lr = result.lrs[0]
    theta0 = result.theta[0, 0].tolist()
    predicted, why = predicted_verdict(config, analysis, lr, theta0, result.lr_factors)
    summary: FitSummary = {
        "format_version": FORMAT_VERSION,
        "kind": "fit",
        "name": config.name,
        "status": status,
        "steps": steps,
        "max_iter": config.train.max_iter,
        "lr": lr,
        "initial": {
            "loss": json_number(float(history["loss"][0])),
            "grad": _params(result.initial_grad[0].tolist()),
        },
        "final": {
            "loss": json_number(final_loss),
            "grad_norm": json_number(result.final_grad_norm[0]),
            **_params(result.final_theta[0].tolist()),
        },
        "closed_form": {"loss": target_loss, **_params(analysis.target_theta)},
        "optimality_gap": {
            "absolute": json_number(gap),
            # as the stopping rule reads it: relative to loss*, or where that is zero (noiseless
            # data) to the initial loss (a gap over a loss* of 1e-32 was reported as 9e20)
            "relative": json_number(gap / scale) if scale > 0 else None,
        },
        "true": _truth(dataset),
        "verdict": {
            "predicted": predicted,
            "observed": observed,
            # the first step whose loss is above the initial loss (``steps``: where it stopped)
            "diverged_at": divergence_step(history) if observed == "diverged" else None,
            "full_batch_prediction": config.train.batch_size is None,
            "why": why,
        },
        "warnings": warnings_for(
            analysis, config.data.standardize, config.train.target_gap, config.train.dtype
        ),
        "optimizer": optimizer_summary(config, auto),
        "theory": _theory_summary(config, analysis, result, prediction),
        "analysis": analysis.to_json(),
        "arrays": arrays_ref(analysis),
        "trajectory": None if len(analysis.theta_star) <= CSV_PARAMETERS else "trajectory.npy",
        "data": {
            "n_samples": dataset.n,
            "features": dataset.feature_names,
            "target": dataset.target_name,
        },
        **how_it_ran(config, result, steps),
    }
    _add_original_units(summary, dataset, result.final_theta[0].tolist(), analysis.target_theta)
    ols = fit_statistics(
        dataset.answer(), dataset.feature_names, dataset.standardization,
        config.optimizer.weight_decay,
    )  # fmt: skip
    if len(analysis.theta_star) > CSV_PARAMETERS:  # O(p) numbers in summary.json, the rest beside
        ols["coefficients_file"] = COEFFICIENTS_FILE
    summary["statistics"] = ols
    if prediction is not None and prediction.replicas is not None:
        summary["replicas"] = prediction.replicas
    if prediction is not None and prediction.modes_summary is not None:
        summary["modes"] = prediction.modes_summary
    if validation is not None and dataset.validation is not None:
        summary["validation"] = validation_summary(dataset, result, validation)
    return summary


def validation_summary(
    dataset: Dataset, result: TrainResult, validation: list[float]
) -> ValidationSummary:
    """The held-out rows' loss: first, last, lowest and where (replica 0's logged steps)."""
    assert dataset.validation is not None
    logged = result.replica_history(0)["step"].tolist()
    best = min(range(len(validation)), key=lambda i: (not math.isfinite(validation[i]),
                                                      validation[i]))  # fmt: skip
    return {
        "fraction": dataset.validation.fraction,
        "rows": dataset.validation.n,
        "initial_loss": json_number(validation[0]),
        "final_loss": json_number(validation[-1]),
        "best_loss": json_number(validation[best]),
        "best_step": int(logged[best]),
    }


def _add_original_units(
    summary: FitSummary, dataset: Dataset, final: list[float], closed: list[float]
) -> None:
    """With data.standardize, the parameters mapped back to the data's own units."""
    standardization = dataset.standardization
    if standardization is None:
        return
    w, b = standardization.original(final[:-1], final[-1])
    summary["final_original"] = {"w": w, "b": b}
    w, b = standardization.original(closed[:-1], closed[-1])
    summary["closed_form_original"] = {"w": w, "b": b}
    summary["standardization"] = standardization_summary(standardization)


def standardization_summary(s: DataStandardization) -> Standardization:
    """summary.json's record of the units trained in."""
    return {
        "mean": s.mean,
        "scale": s.scale,
        "target_mean": s.target_mean,
        "condition_number_before": json_number(s.condition_before),
    }


def optimizer_summary(config: Config, auto: AutoSettings | None) -> OptimizerSummary:
    opt = config.optimizer
    out: OptimizerSummary = {
        "name": opt.name,
        "schedule": opt.schedule.model_dump(),
        "lr": opt.lr_value,
        "momentum": opt.momentum_value if opt.name == "sgd" else float(opt.momentum),
        "nesterov": opt.nesterov,
        "weight_decay": opt.weight_decay,
        "auto": None,
    }
    if auto is not None:
        note = None
        if config.train.batch_size is not None:
            note = (
                "mini-batch SGD: these are the full-batch optimal settings; the gradient "
                "noise of small batches may call for a smaller lr"
            )
        out["auto"] = {"rule": auto.rule, "rate": auto.rate, "note": note}
    return out


def _theory_summary(
    config: Config, analysis: Analysis, result: TrainResult, prediction: Prediction | None
) -> Theory:
    """The worst mode's rate per step at the settings used, with train.target_gap the steps
    the theory predicts (exact full-batch dynamics) beside those observed, and for mini-batches
    the mean-square theory."""
    from lrtrain.theory.analysis import convergence_rate, curvature_range, gap_scale
    from lrtrain.theory.dynamics import predicted_steps

    opt = config.optimizer
    lam_min, lam_max = curvature_range(analysis)
    rate = convergence_rate(result.lrs[0], [lam_min, lam_max], opt.momentum_value, opt.nesterov)
    gap = config.train.target_gap
    out: Theory = {"rate": rate, "target_gap": gap, "predicted_steps": None}
    if gap is not None:
        theta0 = result.theta[0, 0].tolist()
        if opt.exact_theory:
            out["predicted_steps"] = predicted_steps(
                analysis, theta0, result.lrs[0], opt.momentum_value, opt.nesterov, gap,
                config.train.max_iter, result.lr_factors,
            )  # fmt: skip
        ref = analysis.target_loss
        scale = gap_scale(ref, float(result.loss[0, 0]))
        reached = result.final_loss[0] - ref <= gap * scale  # scale 0 where y is all zeros
        out["observed_steps"] = result.stop_steps[0] if reached else None
        out["full_batch_prediction"] = config.train.batch_size is None
    if prediction is not None and prediction.minibatch is not None:
        out["minibatch"] = prediction.minibatch
    return out


def _truth(dataset: Dataset) -> Truth | None:
    return {"w": dataset.true_w, "b": dataset.true_b} if dataset.true_w is not None else None


def sweep_summary(
    config: Config,
    dataset: Dataset,
    analysis: Analysis,
    result: TrainResult,
    outcome: SweepOutcome,
    minibatch_critical_lr: float | None = None,
) -> SweepSummary:
    """summary.json of a sweep: the limits, every rate's verdicts, the recommendation (and
    for mini-batches the mean-square critical lr the verdicts were predicted from)."""
    summary: SweepSummary = {
        "format_version": FORMAT_VERSION,
        "kind": "sweep",
        "name": config.name,
        "lrs": result.lrs,
        "critical_lr": analysis.critical_lr,
        "monotone_lr_limit": analysis.monotone_lr_limit,
        "asymptotically_optimal_lr": analysis.asymptotically_optimal_lr,
        "condition_number": json_number(analysis.condition_number),
        "status": "interrupted" if "interrupted" in result.statuses else "completed",
        "steps_run": result.steps_run,
        "recommended_lr": outcome.recommended_lr,
        "recommendation": outcome.recommendation,
        "full_batch_prediction": config.train.batch_size is None and minibatch_critical_lr is None,
        "minibatch_critical_lr": minibatch_critical_lr,
        "closed_form": {"loss": analysis.target_loss, **_params(analysis.target_theta)},
        "true": _truth(dataset),
        "results": outcome.rows,
        "analysis": analysis.to_json(),
        "arrays": arrays_ref(analysis),
        "trajectory": None if len(analysis.theta_star) <= CSV_PARAMETERS else "trajectories.npy",
        "max_iter": config.train.max_iter,
        **how_it_ran(config, result, result.steps_run),
    }
    if dataset.standardization is not None:
        summary["standardization"] = standardization_summary(dataset.standardization)
    return summary


def batch_map_summary(
    config: Config,
    paths: int,
    target: float,
    lrs: list[float],
    rows: int,
    sizes: list[MapSize],
    critical_batch_size: int | None,
    linear_scaling_up_to: int | None,
    elapsed: float,
) -> BatchMapSummary:
    """summary.json of an lr × batch-size map: the settings, each size's fastest rate, the
    critical batch size and how far the linear-scaling rule held."""
    return {
        "format_version": FORMAT_VERSION, "kind": "batch-map", "name": config.name,
        "sampling": config.train.sampling, "paths": paths,
        "target_gap": config.train.gap_target, "target_loss": target, "lrs": list(lrs),
        "max_iter": config.train.max_iter, "rows": rows, "sizes": sizes,
        "critical_batch_size": critical_batch_size,
        "linear_scaling_up_to": linear_scaling_up_to,
        "elapsed_s": elapsed,
    }  # fmt: skip


def find_lr_summary(
    config: Config,
    rates: tuple[float, float | None, str],
    tests: Sequence[RangeTest],
    found: list[dict[str, float]],
    minibatch_critical: float | None,
    fastest: tuple[float | None, int | None],
    elapsed: float,
) -> FindLrSummary:
    """summary.json of a find-lr run: each suggestion (the median over the repeats, with its
    spread) and its ratios to the thresholds — ``rates``: the critical lr, η* (None for a
    network) and where the critical lr came from — and to the fastest constant rate."""
    critical, optimal, critical_from = rates
    names = sorted({name for one in found for name in one})
    spread: dict[str, Spread] = {}
    for name in names:
        values = [one[name] for one in found if name in one]
        spread[name] = {"values": values, "min": min(values), "median": statistics.median(values),
                        "max": max(values)}  # fmt: skip
    chosen = {name: s["median"] for name, s in spread.items()}
    fastest_lr, fastest_steps = fastest

    def ratio(lr: float, reference: float | None) -> float | None:
        return lr / reference if reference else None

    ratios: dict[str, Ratios] = {
        name: {
            "critical": lr / critical,
            "optimal": ratio(lr, optimal),
            "minibatch_critical": ratio(lr, minibatch_critical),
            "fastest": ratio(lr, fastest_lr),
        }
        for name, lr in chosen.items()
    }
    return {
        "format_version": FORMAT_VERSION, "kind": "find-lr", "name": config.name,
        "repeats": len(found), "batch_size": config.train.batch_size,
        "optimizer": config.optimizer.name,
        "tests": {t.name: {"start": t.start, "end": t.end, "steps": t.steps}
                  for t in tests},
        "suggestions": chosen, "spread": spread, "critical_lr": critical,
        "critical_from": critical_from, "optimal_lr": optimal,
        "minibatch_critical_lr": minibatch_critical, "fastest_lr": fastest_lr,
        "fastest_steps": fastest_steps, "target_gap": config.train.gap_target, "ratios": ratios,
        "elapsed_s": elapsed,
    }  # fmt: skip


def arrays_ref(analysis: Analysis) -> ArraysRef:
    shapes = {name: list(array.shape) for name, array in analysis.arrays.items()}
    return {"file": ARRAYS_FILE, "shapes": shapes}


def how_it_ran(config: Config, result: TrainResult, steps: int) -> RunInfo:
    return {
        "device": result.device,
        "gradient": result.gradient,
        "distributed": result.world,
        "dtype": config.train.dtype,
        "seed": config.seed,
        "elapsed_s": result.elapsed_s,
        "steps_per_s": steps / result.elapsed_s if result.elapsed_s > 0 else None,
        "versions": _versions(),
    }
