"""The classic lesson, step by step, with lrtrain's Python API (what a notebook would do).

    python examples/lesson.py [OUTPUT_DIR]

1. fit the lesson's model (100 points, y = 3x + noise, lr 1e-3, 100 steps) and compare it with
   the closed form; 2. ask the analysis why lr 0.03 diverges; 3. run the lesson's learning-rate
   study (six rates in one vectorised run); 4. let lrtrain choose the step size and momentum;
   5. draw the figures into matplotlib axes of our own, as a notebook cell would.
Runs headless (lrtrain draws on matplotlib Figure objects, no GUI); the test suite runs it.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from lrtrain import fit, load_config, load_run, plots, sweep_lr


def main(out: Path) -> None:
    # 1. The lesson itself: the embedded default config.
    lesson = fit(load_config("lecture", ["device=cpu"]), out=out / "lesson", overwrite=True)
    s = lesson.summary
    print(f"learned      w = {s['final']['w'][0]:.5f}, b = {s['final']['b']:.5f}")
    print(f"closed form  w = {s['closed_form']['w'][0]:.5f}, b = {s['closed_form']['b']:.5f}")
    print(f"status {s['status']} after {s['steps']} steps; loss {s['final']['loss']:.4f}")

    # 2. Why learning rates fail: the Hessian's largest eigenvalue sets the critical lr.
    a = lesson.analysis
    print(f"λ_max = {a.eigenvalues[-1]:.4f} → critical lr 2/λ_max = {a.critical_lr:.5f}")
    print(f"asymptotically optimal lr η* = 2/(λ_min+λ_max) = {a.asymptotically_optimal_lr:.5f}")

    # 3. The lesson's learning-rate study, all six rates in one run.
    study = sweep_lr(
        load_config("lecture", ["device=cpu"]),
        lrs=[0.0005, 0.001, 0.005, 0.025, 0.028, 0.03],
        out=out / "study",
        overwrite=True,
    )
    for row in study.summary["results"]:
        print(f"  lr {row['lr']:<7g} {row['verdict']:<12} (predicted {row['predicted_verdict']})")
    print(study.summary["recommendation"])

    # 4. Let the theory choose: Polyak's heavy ball, to a relative optimality gap of 1e-6.
    settings = ["device=cpu", "optimizer.lr=auto", "optimizer.momentum=auto",
                "train.target_gap=1e-6", "train.max_iter=1000", "train.dtype=float64"]  # fmt: skip
    auto = fit(load_config("lecture", settings), out=out / "auto", overwrite=True)
    opt, theory = auto.summary["optimizer"], auto.summary["theory"]
    print(
        f"auto: lr {opt['lr']:.5f}, momentum {opt['momentum']:.4f}: converged in "
        f"{auto.summary['steps']} steps (theory: {theory['predicted_steps']})"
    )

    # 5. Figures into our own axes (in a notebook they show inline).
    from matplotlib.figure import Figure

    run = load_run(lesson.run_dir)
    fig = Figure(figsize=(10, 4), layout="constrained")
    left, right = fig.subplots(1, 2)
    plots.loss_figure(run.metrics["step"], run.metrics["loss"], s["closed_form"]["loss"], ax=left)
    plots.contour_figure(
        run.theta, a.theta_star, a.loss_star, a.hessian, [3.0, 0.0], title="lr 1e-3", ax=right
    )
    fig.savefig(out / "lesson.png")
    print(f"figures in {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="lesson-")))
