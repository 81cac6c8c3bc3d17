"""lrtrain as a scikit-learn estimator (``lrtrain.GDRegressor``; needs the ``sklearn`` extra):
``fit(X, y)``, ``predict``, ``score`` and the parameters under the config's own names — and,
what no other regressor has, the exact answer beside the trained one: the critical learning
rate, the verdict (predicted and observed), the closed form, the optimality gap, the OLS table
and the loss at every step.

    >>> from sklearn.model_selection import GridSearchCV                       # doctest: +SKIP
    >>> search = GridSearchCV(lrtrain.GDRegressor(momentum=0.0), {"lr": [1e-3, 1e-2]})

A fit trains as ``lrtrain fit`` does, on the rows given (:mod:`lrtrain.data.arrays`, float64), in
memory; ``out`` writes a run directory as well.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

try:
    from sklearn.base import BaseEstimator, RegressorMixin
    from sklearn.utils.validation import check_is_fitted, validate_data
except ImportError as missing:  # the optional extra: say which and how to get it
    raise ImportError(
        "lrtrain.GDRegressor needs scikit-learn (1.6 or newer): pip install 'lrtrain[sklearn]'"
    ) from missing

from lrtrain.errors import LrtrainError

# estimator parameter → the config key it sets (what get_params/set_params and a grid use)
KEYS = {
    "lr": "optimizer.lr",
    "momentum": "optimizer.momentum",
    "nesterov": "optimizer.nesterov",
    "weight_decay": "optimizer.weight_decay",
    "optimizer": "optimizer.name",
    "schedule": "optimizer.schedule",
    "batch_size": "train.batch_size",
    "sampling": "train.sampling",
    "max_iter": "train.max_iter",
    "target_gap": "train.target_gap",
    "tol": "train.tol",
    "dtype": "train.dtype",
    "gradient": "train.gradient",
    "standardize": "data.standardize",
    "init": "model.init",
    "seed": "seed",
    "device": "device",
}
# keys only plain SGD has: left out for the adaptive optimizers while at their defaults
SGD_ONLY = {"momentum": "auto", "nesterov": False}


class GDRegressor(RegressorMixin, BaseEstimator):
    """Linear regression trained by gradient descent through ``torch.optim`` (lrtrain's engine),
    with the exact answer beside it.

    Parameters are the config's keys (docs/config.md): ``lr`` and ``momentum`` take ``"auto"``
    (η* and Polyak's heavy ball, from the data's Hessian), ``optimizer`` is ``sgd``, ``adam``,
    ``adamw``, ``rmsprop`` or ``adagrad`` (those need a numeric ``lr``: ``auto`` is gradient
    descent's rule), ``schedule`` a kind (``"cosine"``) or a section
    (``{"kind": "step", "step_size": 50}``), ``batch_size`` None for full batch. Training stops
    at ``max_iter`` or once the relative optimality gap is ``target_gap``. ``standardize``
    (default True) trains on features scaled to zero mean and unit variance — the conditioning
    gradient descent needs (the raw diabetes data has κ ≈ 5e7) — and on the centred target (an
    offset such as y ≈ 1e8 costs no digits), and reports ``coef_`` and ``intercept_`` in the
    original units; the theory's numbers (``critical_lr_``) are those of
    the problem trained. ``out``: a folder to write the run directory in as well (None: nothing
    is written).

    Fitted attributes: ``coef_``, ``intercept_``, ``n_features_in_``, ``feature_names_in_``
    (DataFrames), ``n_iter_``, and lrtrain's own: ``critical_lr_`` (2/λ_max),
    ``verdict_`` ({"predicted", "observed", "why"}), ``closed_form_`` ({"coef", "intercept",
    "loss"}), ``optimality_gap_`` (relative), ``statistics_`` (the OLS table: R², σ̂, each
    coefficient's se, t, p, 95% interval), ``history_`` (the loss at each logged step),
    ``summary_`` (everything ``summary.json`` holds), ``run_dir_`` (with ``out``).
    """

    def __init__(
        self,
        lr: float | str = "auto",
        momentum: float | str = "auto",
        nesterov: bool = False,
        weight_decay: float = 0.0,
        optimizer: str = "sgd",
        schedule: str | dict[str, Any] = "constant",
        batch_size: int | None = None,
        sampling: str = "epoch",
        max_iter: int = 1000,
        target_gap: float | None = 1e-9,
        tol: float | None = None,
        dtype: str = "float64",
        gradient: str = "auto",
        standardize: bool = True,
        init: str = "zeros",
        seed: int = 0,
        device: str = "cpu",
        out: str | Path | None = None,
    ) -> None:
        self.lr = lr
        self.momentum = momentum
        self.nesterov = nesterov
        self.weight_decay = weight_decay
        self.optimizer = optimizer
        self.schedule = schedule
        self.batch_size = batch_size
        self.sampling = sampling
        self.max_iter = max_iter
        self.target_gap = target_gap
        self.tol = tol
        self.dtype = dtype
        self.gradient = gradient
        self.standardize = standardize
        self.init = init
        self.seed = seed
        self.device = device
        self.out = out

    def fit(self, X: Any, y: Any) -> GDRegressor:
        """Train on the rows X [n, d] and targets y [n]; returns the estimator."""
        from lrtrain.workflows.fit import FitRun, fit, fit_in_memory

        # X's finiteness is checked by lrtrain's statistics pass, which reads every value anyway
        # (its message names the row and column): not a read of its own here
        X, y = validate_data(self, X, y, y_numeric=True, dtype=np.float64, ensure_min_samples=2,
                             ensure_all_finite=False)  # fmt: skip
        names = getattr(self, "feature_names_in_", None)
        features = [str(n) for n in names] if names is not None else None
        config = self.config(features)
        try:
            if self.out is None:
                fitted = fit_in_memory(config, data=(X, y))
                summary, analysis, result = fitted.summary, fitted.analysis, fitted.result
            else:
                run = fit(config, draw=False, data=(X, y))  # a new run under output.root
                assert isinstance(run, FitRun), "the estimator's model is the linear one"
                summary, analysis, result = run.summary, run.analysis, run.result
                self.run_dir_ = run.run_dir
        except LrtrainError as exc:  # scikit-learn's callers expect ValueError for bad input
            raise ValueError(str(exc)) from None
        trained: Any = summary.get("final_original") or summary["final"]
        exact: Any = summary.get("closed_form_original") or summary["closed_form"]
        self.coef_ = _finite(trained["w"])
        self.intercept_ = float(_finite([trained["b"]])[0])
        self.n_iter_ = int(summary["steps"])
        self.critical_lr_ = float(analysis.critical_lr)
        verdict = summary["verdict"]
        self.verdict_ = {"predicted": verdict["predicted"], "observed": verdict["observed"],
                         "why": verdict["why"]}  # fmt: skip
        self.closed_form_ = {"coef": np.asarray(exact["w"], dtype=np.float64),
                             "intercept": float(exact["b"]),
                             "loss": float(summary["closed_form"]["loss"])}  # fmt: skip
        self.optimality_gap_ = summary["optimality_gap"]["relative"]
        self.statistics_ = summary.get("statistics")
        self.history_ = result.replica_history(0)["loss"].numpy()
        self.summary_ = summary
        return self

    def predict(self, X: Any) -> np.ndarray:
        """X @ coef_ + intercept_, in float64."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        return np.asarray(X @ self.coef_ + self.intercept_, dtype=np.float64)

    def config(self, features: list[str] | None = None) -> Any:
        """The lrtrain config this estimator trains with (the lesson's defaults, these
        parameters set; ``features``: the columns' names)."""
        from lrtrain.config.schema import load_config

        params = self.get_params()
        settings: list[tuple[str, Any]] = [
            ("name", "gdregressor"), ("output.plots", []), ("output.loggers", []),
        ]  # fmt: skip
        if self.out is not None:
            settings.append(("output.root", str(self.out)))
        for name, key in KEYS.items():
            value = params[name]
            if self.optimizer != "sgd" and name in SGD_ONLY and value == SGD_ONLY[name]:
                continue  # the adaptive optimizers have no such key
            if name == "schedule" and isinstance(value, str):
                value = {"kind": value}
            settings.append((key, _plain(value)))
        if features is not None:
            settings.append(("data.features", features))
        try:  # Python values as they are: no YAML to parse (~0.17 ms a key, each fit)
            return load_config(None, settings=settings)
        except LrtrainError as exc:
            raise ValueError(str(exc)) from None


def _plain(value: Any) -> Any:
    """A parameter as plain Python: numpy scalars (a grid search's np.logspace) as numbers,
    tuples as lists, mappings and lists element by element."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _finite(values: list[Any]) -> np.ndarray:
    """Parameters from a summary (None where they were not finite: a diverged run) as NaN."""
    return np.asarray([np.nan if v is None else v for v in values], dtype=np.float64)
