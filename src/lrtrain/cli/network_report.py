"""The reports of a network's fit and sweep (``model.kind: mlp``), and the sharpness line of any
fit that measured it: what was measured where a linear model's report gives exact numbers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich import box
from rich.console import Console
from rich.table import Table

from lrtrain.cli.report import GRADIENT_WORDS, fmt, replica_line, say, verdict_text

if TYPE_CHECKING:
    from lrtrain.runs.summaries import NoiseScaleSummary, SharpnessSummary


def is_network(summary: Any) -> bool:
    """Whether a summary is a network's (it names its model; a linear run's does not)."""
    return isinstance(summary, dict) and "model" in summary


def _shape(summary: Any) -> str:
    model = summary["model"]
    widths = [len(summary["data"]["features"]), *model["hidden"], 1]
    return (f"{model['activation']} MLP {' → '.join(map(str, widths))} · "
            f"{model['parameters']} parameters · init {model['init']}")  # fmt: skip


def any_fit_report(run: Any, console: Console) -> None:
    """``fit``'s report: a network's, or the linear model's (with its sharpness if measured)."""
    from lrtrain.cli.report import fit_report

    if is_network(run.summary):
        network_fit_report(run, console)
        return
    fit_report(run, console)
    if "sharpness" in run.summary:
        sharpness_lines(run.summary["sharpness"], console)
    if "noise_scale" in run.summary:
        noise_lines(run.summary["noise_scale"], console)


def any_sweep_report(run: Any, console: Console) -> None:
    """``sweep-lr``'s report: a network's, or the linear model's."""
    from lrtrain.cli.report import sweep_report

    if is_network(run.summary):
        network_sweep_report(run, console)
    else:
        sweep_report(run, console)


def network_fit_report(run: Any, console: Console) -> None:
    """A network's fit: its shape, the loss against the best straight line, the sharpness
    against 2(1+β)/η, the local quadratic's prediction beside the regime observed, and why."""
    s = run.summary
    v = s["verdict"]
    console.print(f"[bold]lrtrain fit — {s['name']}[/]")
    say(console, "model", _shape(s))
    loss = f"{fmt(s['initial']['loss'])} → {fmt(s['final']['loss'])}"
    say(console, "loss", f"{loss} (the best straight line: {fmt(s['best_line']['loss'])})")
    rate = fmt(s["steps_per_s"], 4) if s["steps_per_s"] else "—"
    took = f"{rate} steps/s · {s['elapsed_s']:.3f} s on {s['device']}"
    say(console, "status", f"{s['status']} after {s['steps']} of {s['max_iter']} steps · {took}")
    say(console, "gradient", f"{s['gradient']}: {GRADIENT_WORDS.get(s['gradient'], '')}")
    sharpness_lines(s["sharpness"], console)
    noise_lines(s["noise_scale"], console)
    label = "predicted at θ₀" if v["full_batch_prediction"] else "full-batch prediction at θ₀"
    predicted = v["predicted"] if v["predicted"] is not None else "—"
    console.print(f"verdict   {verdict_text(v['observed'])} ({label}: {predicted})")
    say(console, "why", v["why"])
    say(console, "rule", v["rule"])
    held = s.get("validation")
    if held is not None:
        say(console, "held out", f"{held['rows']} rows ({100 * held['fraction']:.3g}%): "
            f"validation loss {fmt(held['initial_loss'])} → {fmt(held['final_loss'])} "
            f"(lowest {fmt(held['best_loss'])} at step {held['best_step']})")  # fmt: skip
    if "replicas" in s:
        replica_line(s["replicas"], console)
    say(console, "theory", "no closed form: the loss is not a quadratic (model.kind: mlp)")
    say(console, "run", str(run.run_dir))


def sharpness_lines(sharp: SharpnessSummary, console: Console, label: str = "sharpness") -> None:
    """λ_max at θ₀ and at the end against the threshold, and what measuring it cost."""
    first, last = sharp["initial"], sharp["final"]
    limit = sharp["thresholds"][0]
    ratios = sharp["ratios"]
    limit_text = f" · 2(1+β)/η {fmt(limit, 5)}" if limit is not None else ""
    peak = max((r for r in ratios if r is not None), default=None)
    peak_text = f" (peak {fmt(peak, 3)}×)" if peak is not None and limit_text else ""
    products = sharp["hessian_vector_products"]
    every = sharp["every"]
    when = f"every {every} steps" if every else "at θ₀ and at the end"
    say(console, label, f"λ_max {fmt(first, 5)} at θ₀ → {fmt(last, 5)} at the end"
        f"{limit_text}{peak_text}; measured {when}: {len(products)} times, {sum(products)} "
        f"Hessian-vector products ({sharp['full_batch_reads']} full-batch passes), "
        f"{sharp['seconds']:.3f} s")  # fmt: skip


def noise_lines(noise: NoiseScaleSummary, console: Console) -> None:
    """B_simple at θ₀ and at the end, the exact values beside it, the critical batch size."""
    values = noise["b_simple"]
    text = f"B_simple = tr(Σ)/|G|² {fmt(values[0], 4)} at θ₀ → {fmt(values[-1], 4)} at the end"
    exact = noise["exact_b_simple"]
    if exact is not None:
        text += f" (exact from the rows' moments: {fmt(exact[0], 4)} → {fmt(exact[-1], 4)})"
    if noise["critical_batch_size"] is not None:
        text += f"; the mini-batch theory's critical batch size {noise['critical_batch_size']}"
    say(console, "noise", text + " (McCandlish et al.: batches beyond it stop paying)")


def network_sweep_report(run: Any, console: Console) -> None:
    """A network's sweep: a row per rate with the prediction at θ₀, the regime observed and
    the sharpness at the start and the end against each rate's threshold."""
    s = run.summary
    label = "predicted" if s["full_batch_prediction"] else "full-batch pred."
    table = Table(title=f"lrtrain sweep-lr — {s['name']}", title_justify="left",
                  box=box.SIMPLE_HEAD)  # fmt: skip
    for column in ("lr", "observed", label, "final loss", "λ_max end", "2(1+β)/η"):
        table.add_column(column, justify="left" if column in ("observed", label) else "right")
    for row in s["results"]:
        table.add_row(
            f"{row['lr']:.4g}",
            verdict_text(row["verdict"]),
            verdict_text(row["predicted_verdict"]),
            fmt(row["final_loss"], 5),
            fmt(row["final_sharpness"], 4),
            fmt(row["threshold"], 4),
        )
    console.print(table)
    for i, row in enumerate(s["results"]):
        reason = row["rule"] + (f"; {row['differs']}" if row["differs"] else "")
        say(console, "why" if i == 0 else "", f"lr {row['lr']:.4g}: {reason}", 13)
    say(console, "model", _shape(s), 13)
    start = s["initial_sharpness"]
    stable = s["stable_lr_at_start"]
    at_start = (f"λ_max {fmt(start, 5)}: the local quadratic is stable below lr {fmt(stable, 5)}"
                " — training moves λ_max, so each rate is judged on what it did")  # fmt: skip
    say(console, "at θ₀", at_start, 13)
    best = fmt(s["best_line"]["loss"])
    say(console, "best line", f"loss {best} (least squares on the same rows)", 13)
    say(console, "theory", "no closed form: the loss is not a quadratic (model.kind: mlp)", 13)
    took = f"{s['elapsed_s']:.3f} s on {s['device']} ({s['gradient']}, one batched run)"
    say(console, "speed", f"{len(s['lrs'])} learning rates × {s['max_iter']} steps in {took}", 13)
    say(console, "run", str(run.run_dir), 13)
