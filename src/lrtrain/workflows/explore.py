"""``lrtrain explore``: the numbers behind the interactive page, and the page itself.

The page (``workflows/page/``: explore.html, explore.js, explore.css) draws everything from the
quadratic the optimizer descends — H's eigen-decomposition, θ*, L*, the ridge target with weight
decay, the start θ₀ — and, for mini-batches, the rows' moments up to the fourth (F, G, Q of
:mod:`~.minibatch`). Its full-batch path is the exact iteration of PyTorch's SGD on that
quadratic (what training the model computes, to float64 rounding); its mini-batch curves are the
expected-loss recursion. The mean-square critical lr needs a 4p² eigenvalue problem per setting,
so it is computed here for a grid of momenta and the page's batch sizes, not in the browser.

From a config the analysis runs (torch; no training). From a run directory only its files are
read (no torch): the full-batch dynamics are exact from them, the mini-batch curves need the
rows' moments, which a run does not keep — the page says so. Nothing here prints or writes.
"""

from __future__ import annotations

import html
import json
import math
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

import numpy as np

from lrtrain.errors import ConfigError, RunDirError

if TYPE_CHECKING:
    from lrtrain.config.optimizer import OptimizerConfig
    from lrtrain.config.schema import Config
    from lrtrain.runs.directory import RunData
    from lrtrain.theory.minibatch import RowMoments

# The momentum slider's stops: the mean-square critical lr is tabulated at each (p ≤ 3)
MOMENTA = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99)
FULL_GRID_PARAMETERS = 3  # beyond, the config's own momentum alone (each map (2p)⁴ numbers)
MAX_BATCH_CHOICES = 12
MAX_STEPS = 10_000  # the steps slider's end: the page recomputes every step on each change
MAX_PARAMETERS = 200  # the page carries H's p × p eigenvectors and recomputes p modes a step
PLOTLY_MISSING = (
    "lrtrain explore inlines plotly.js from the plotly package, which is not installed: "
    "pip install 'lrtrain[explore]'"
)


class MinibatchData(TypedDict):
    """The rows' moments about ``reference`` (row-major flat lists) and the mean-square
    critical lr by ``"<batch>|<momentum>|<nesterov 0/1>"``."""

    fourth: list[float]  # F [p², p²]
    third: list[float]  # G [p², p]
    noise: list[float]  # vec Q [p²]
    hessian: list[list[float]]
    reference: list[float]
    critical: dict[str, float | None]


class PageData(TypedDict):
    """Everything the page computes from (the page's JSON)."""

    name: str
    source: str  # "config" or the run directory
    parameters: list[str]
    rows: int
    eigenvalues: list[float]  # ascending
    eigenvectors: list[list[float]]  # [p][p]: column i belongs to eigenvalue i
    theta_star: list[float]
    loss_star: float
    target_theta: list[float]
    weight_decay: float
    theta0: list[float]
    defaults: dict[str, Any]  # lr, momentum, nesterov, steps, batch (null: full)
    batches: list[int | None]
    max_steps: int
    minibatch: MinibatchData | None
    notes: list[str]


@dataclass
class ExplorePage:
    """A written page: where, and its data (``_repr_html_`` shows it inline in Jupyter)."""

    path: Path
    data: PageData

    def _repr_html_(self) -> str:
        page = self.path.read_text(encoding="utf-8")
        return (
            f'<iframe srcdoc="{html.escape(page, quote=True)}" '
            'style="width:100%;height:860px;border:0"></iframe>'
        )


def batch_choices(rows: int, own: int | None) -> list[int | None]:
    """1, 2, 4, … below the row count (at most 12), the config's own size, then full."""
    sizes = [2**k for k in range(MAX_BATCH_CHOICES) if 2**k < rows]
    if own is not None and own < rows and own not in sizes:
        sizes = sorted([*sizes, own])
    return [*sizes, None]


def _notes(config: dict[str, Any]) -> list[str]:
    """What the page does not model of this config, said on the page."""
    opt = config.get("optimizer", {})
    notes = []
    if opt.get("name", "sgd") != "sgd":
        notes.append(
            f"The config trains with {opt['name']}; the page shows SGD (plain, heavy ball or "
            "Nesterov), whose dynamics are exact on the quadratic, opening at η* = "
            "2/(λ_min + λ_max)."
        )
    schedule = (opt.get("schedule") or {}).get("kind", "constant")
    if schedule != "constant":
        notes.append(
            f"The config's {schedule} schedule is not applied: the page's rate is constant."
        )
    return notes


def from_config(config: Config, data: Any = None) -> PageData:
    """Analyse the config's data (no training) and tabulate the mini-batch theory."""
    from lrtrain.engine.model import normal_start
    from lrtrain.workflows.fit import prepare
    from lrtrain.workflows.prediction import minibatch_moments

    if config.data.stream:
        raise ConfigError(
            "explore: data.stream: the page's mini-batch theory reads the rows' fourth "
            "moments; explore a smaller in-memory sample of the problem"
        )
    config, dataset, analysis, _ = prepare(config, data=data)
    _check_size(len(analysis.theta_star), f"{len(dataset.feature_names)} features and b")
    opt, optimal = config.optimizer, analysis.asymptotically_optimal_lr
    theta0 = [0.0] * len(analysis.theta_star)
    if config.model.init == "normal":
        theta0 = normal_start(len(dataset.feature_names), config.seed).tolist()
    own = config.train.batch_size if not config.train.full_batch(dataset.n) else None
    batches = batch_choices(dataset.n, own)
    moments, why = minibatch_moments(config, dataset, analysis, False)
    notes = _notes(config.to_dict())
    minibatch = None
    if moments is None:
        notes.append(f"Mini-batch curves are not drawn: {why}.")
        batches = [None]
    else:
        minibatch = _minibatch_data(moments, batches, opt)
        if config.train.sampling == "epoch" and own is not None:
            notes.append(
                "The config draws its batches as shuffled epochs; the page's expected losses are "
                "those of batches drawn with replacement (train.sampling: replacement), which "
                "the epochs approach when N/B is large (docs/mathematics.md)."
            )
    return {
        "name": config.name,
        "source": "config",
        "parameters": _parameter_names(dataset.feature_names),
        "rows": dataset.n,
        "eigenvalues": list(analysis.eigenvalues),
        "eigenvectors": np.asarray(analysis.eigenvectors).tolist(),
        "theta_star": list(analysis.theta_star),
        "loss_star": analysis.loss_star,
        "target_theta": list(analysis.target_theta),
        "weight_decay": analysis.weight_decay,
        "theta0": theta0,
        "defaults": _defaults(config.to_dict(), float(opt.lr), optimal, own),
        "batches": batches,
        "max_steps": MAX_STEPS,
        "minibatch": minibatch,
        "notes": notes,
    }


def _check_size(p: int, where: str) -> None:
    if p > MAX_PARAMETERS:
        raise ConfigError(
            f"explore: {p} parameters ({where}): the page draws problems of up to "
            f"{MAX_PARAMETERS} (it carries H's p × p eigenvectors and steps every mode in the "
            "browser); lrtrain fit draws the modes of any size"
        )


def _minibatch_data(
    moments: RowMoments, batches: list[int | None], opt: OptimizerConfig
) -> MinibatchData:
    from lrtrain.theory import minibatch as mb

    own = (opt.momentum_value, opt.nesterov)
    grid = [(m, n) for m in MOMENTA for n in (False, True) if not (n and m == 0)]
    settings = grid if moments.p <= FULL_GRID_PARAMETERS else [own]
    if own not in settings:
        settings.append(own)
    sizes: list[int | None] = [b for b in batches if b is not None]  # full: the exact limits
    table = mb.critical_lrs(moments, sizes, settings, opt.weight_decay, tol=1e-5)
    critical = {_key(*key): (lr if math.isfinite(lr) else None) for key, lr in table.items()}
    return {
        "fourth": moments.fourth.reshape(-1).tolist(),
        "third": moments.third.reshape(-1).tolist(),
        "noise": moments.noise.reshape(-1).tolist(),
        "hessian": moments.hessian.tolist(),
        "reference": moments.reference.tolist(),
        "critical": critical,
    }


def _key(batch: int | None, momentum: float, nesterov: bool) -> str:
    return f"{batch}|{momentum:g}|{int(nesterov)}"


def _defaults(
    config: dict[str, Any], lr: float, optimal_lr: float, batch: int | None
) -> dict[str, Any]:
    """The view a page opens on: the config's own SGD settings — or, when the config trains
    with another optimizer (whose rate means something else to SGD), SGD at η*."""
    opt = config["optimizer"]
    sgd = opt.get("name", "sgd") == "sgd"
    momentum = opt.get("momentum", 0.0) if sgd else 0.0
    return {
        "lr": lr if sgd else optimal_lr,
        "momentum": float(momentum) if momentum != "auto" else 0.0,
        "nesterov": bool(opt.get("nesterov", False)) and sgd,
        "steps": min(int(config["train"]["max_iter"]), MAX_STEPS),
        "batch": batch,
    }


def _parameter_names(features: list[str]) -> list[str]:
    return ["w", "b"] if len(features) == 1 else [*(f"w_{i}" for i in range(len(features))), "b"]


def from_run(run: RunData) -> PageData:
    """The page of a saved fit, from its files alone."""
    if run.kind != "fit":
        raise RunDirError(f"{run.path}: explore reads a fit run; this is a {run.kind}")
    analysis, lr = run.summary["analysis"], float(run.summary["optimizer"]["lr"])
    _check_size(len(analysis["theta_star"]), f"{run.path}")
    vectors = run.eigenvectors
    if vectors is None:
        raise RunDirError(f"{run.path}: written by lrtrain 0.1 (no arrays.npz): refit it")
    rows = int(run.summary["data"]["n_samples"])
    notes = [
        *_notes(run.config),
        "Full batch only: mini-batch curves need the rows' fourth moments, which a run "
        f"directory does not keep (lrtrain explore -c {run.path}/config.yaml draws them).",
    ]
    return {
        "name": str(run.summary.get("name", run.path.name)),
        "source": str(run.path),
        "parameters": _parameter_names(list(run.summary["data"]["features"])),
        "rows": rows,
        "eigenvalues": list(analysis["hessian_eigenvalues"]),
        "eigenvectors": np.asarray(vectors).tolist(),
        "theta_star": list(analysis["theta_star"]),
        "loss_star": float(analysis["loss_star"]),
        "target_theta": list(analysis["target_theta"]),
        "weight_decay": float(analysis["weight_decay"]),
        "theta0": run.theta[0].tolist(),
        "defaults": _defaults(run.config, lr, float(analysis["asymptotically_optimal_lr"]), None),
        "batches": [None],
        "max_steps": MAX_STEPS,
        "minibatch": None,
        "notes": notes,
    }


def _asset(name: str) -> str:
    return (resources.files("lrtrain.workflows") / "page" / name).read_text(encoding="utf-8")


def plotly_js() -> str:
    """plotly.js as the plotly package ships it (its minified bundle)."""
    try:
        bundle = resources.files("plotly") / "package_data" / "plotly.min.js"
        return bundle.read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError) as exc:
        raise ConfigError(PLOTLY_MISSING) from exc


def page_html(data: PageData) -> str:
    """One self-contained HTML page: plotly.js, the page's script and style and the data
    inline, nothing fetched (it opens from file://, offline)."""
    parts = {
        "STYLE": _asset("explore.css"),
        "PLOTLY": plotly_js().replace("</script", "<\\/script"),
        "DATA": json.dumps(data, allow_nan=False).replace("</", "<\\/"),
        "SCRIPT": _asset("explore.js"),
        "TITLE": html.escape(f"lrtrain explore — {data['name']}"),
    }
    # one pass over the template: an inserted part is never searched for placeholders
    return re.sub(r"/\*@(\w+)@\*/", lambda m: parts[m.group(1)], _asset("explore.html"))


# why the page is the linear model's alone
NETWORK_PAGE = (
    "the explore page iterates the quadratic exactly, which a network's loss is not — "
    "run lrtrain fit or sweep-lr on it (they measure its sharpness), or explore "
    "model.kind: linear"
)


def explore(
    source: Config | str | Path | None = None, out: str | Path | None = None, data: Any = None
) -> ExplorePage:
    """Write the interactive page (one self-contained HTML file) and return it; in Jupyter the
    returned object shows the page inline. ``source``: a fit run directory (its files only, no
    torch), a :class:`Config`, or a config name/path (None: the lesson); for a config the
    analysis runs (not the training). The page goes to ``out``, else ``RUN_DIR/explore.html``,
    else ``<output.root>/<name>-explore.html``.
    ``data``: rows handed over from Python for a config (``(X, y)`` or a DataFrame;
    numpy, pandas or torch, :mod:`lrtrain.data.arrays`)."""
    from lrtrain.config.schema import Config, load_config
    from lrtrain.runs import directory as runs

    if isinstance(source, (str, Path)) and Path(source).is_dir():
        run = runs.load_run(source)
        if "model" in run.summary:
            raise RunDirError(f"{run.path}: {NETWORK_PAGE}")
        page, default = from_run(run), run.path / "explore.html"
    else:
        spec = None if source is None else str(source)
        config = source if isinstance(source, Config) else load_config(spec)
        if config.model.kind != "linear":
            raise ConfigError(f"model.kind: {config.model.kind}: {NETWORK_PAGE}")
        page = from_config(config, data)
        default = Path(config.output.root) / f"{config.name}-explore.html"
    return ExplorePage(runs.save_page(Path(out) if out else default, page_html(page)), page)
