"""Networks (issue 32): a vectorised 16-rate MLP sweep against 16 separate training loops, and
what measuring the sharpness every 10 steps adds to a fit."""

from __future__ import annotations

from benchmarks.baselines import mlp_sweep
from benchmarks.common import CaseResult, faster, time_one, time_pair
from lrtrain.config.schema import load_config
from lrtrain.data.load import load_dataset
from lrtrain.engine.train import train

RATES = [0.003 * (0.6 / 0.003) ** (i / 15) for i in range(16)]


def mlp_sweep_case(quick: bool, repeats: int) -> CaseResult:
    """The lecture's (3, 4, 2) ReLU network: 16 rates in one batched run (lrtrain, which also
    measures λ_max at θ₀ and at the end) against 16 nn.Sequential + torch.optim.SGD loops."""
    steps = 50 if quick else 1000
    cfg = load_config("mlp", ["device=cpu", f"train.max_iter={steps}", "train.sharpness_every=0"])
    ds = load_dataset(cfg)
    hidden = list(cfg.model.hidden)
    base, ours = time_pair(
        lambda: mlp_sweep(ds.x, ds.y, hidden, RATES, steps),
        lambda: train(ds, cfg, lrs=RATES),
        repeats,
        warmup=not quick,
    )
    return faster(f"MLP sweep: 16 lrs × {steps} steps, the lecture's (3, 4, 2) network",
                  "16 nn.Sequential + torch.optim.SGD loops", base, ours, at_least=5)  # fmt: skip


def sharpness_overhead(quick: bool, repeats: int) -> CaseResult:
    """A fit of the ``mlp`` config with ``train.sharpness_every: 10`` against the same fit
    measured only at θ₀ and at the end: the overhead, stated (no target)."""
    steps = 50 if quick else 2000
    runs = {}
    for every in (0, 10):
        cfg = load_config("mlp", ["device=cpu", f"train.max_iter={steps}",
                                  f"train.sharpness_every={every}"])  # fmt: skip
        ds = load_dataset(cfg)
        runs[every] = (cfg, ds)
    plain = time_one(lambda: train(runs[0][1], runs[0][0]), repeats, warmup=not quick)
    measured = time_one(lambda: train(runs[10][1], runs[10][0]), repeats, warmup=not quick)
    result = train(runs[10][1], runs[10][0])
    products = sum(result.sharpness_products)
    estimates = len(result.sharpness_steps)
    return CaseResult(
        name=f"sharpness every 10 steps: `mlp` fit, {steps} steps",
        baseline="the same fit measured at θ₀ and the end only",
        target="stated (issue 32)",
        met=None,
        ratio=measured.median / plain.median,
        baseline_time=plain,
        lrtrain_time=measured,
        notes=[f"{estimates} estimates, {products} Hessian-vector products "
               f"({products / estimates:.1f} an estimate)"],
    )  # fmt: skip
