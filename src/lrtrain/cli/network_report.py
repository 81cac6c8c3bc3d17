"""The reports of a network's fit and sweep (``model.kind: mlp``), and the sharpness line of any
fit that measured it: what was measured where a linear model's report gives exact numbers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich import box
from rich.console import Console
from rich.table import Table

from lrtrain.cli.report import GRADIENT_WORDS, fmt, verdict_text

if TYPE_CHECKING:
    from lrtrain.runs.summaries import SharpnessSummary


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
    console.print(f"model     {_shape(s)}")
    console.print(
        f"loss      {fmt(s['initial']['loss'])} → {fmt(s['final']['loss'])} "
        f"(the best straight line: {fmt(s['best_line']['loss'])})"
    )
    rate = s["steps_per_s"]
    console.print(
        f"status    {s['status']} after {s['steps']} of {s['max_iter']} steps · "
        f"{fmt(rate, 4) if rate else '—'} steps/s · {s['elapsed_s']:.3f} s on {s['device']}"
    )
    console.print(
        f"gradient  {s['gradient']}: {GRADIENT_WORDS.get(s['gradient'], '')}".rstrip(": ")
    )
    sharpness_lines(s["sharpness"], console)
    label = "predicted at θ₀" if v["full_batch_prediction"] else "full-batch prediction at θ₀"
    predicted = v["predicted"] if v["predicted"] is not None else "—"
    console.print(f"verdict   {verdict_text(v['observed'])} ({label}: {predicted}) — {v['why']}")
    console.print(f"rule      {v['rule']}")
    console.print("theory    no closed form: the loss is not a quadratic (model.kind: mlp)")
    console.print(f"run       {run.run_dir}")


def sharpness_lines(sharp: SharpnessSummary, console: Console, label: str = "sharpness") -> None:
    """λ_max at θ₀ and at the end against the threshold, and what measuring it cost."""
    first, last = sharp["initial"], sharp["final"]
    limit = sharp["thresholds"][0]
    ratios = sharp["ratios"]
    limit_text = f" · 2(1+β)/η {fmt(limit, 5)}" if limit != float("inf") else ""
    peak = max((r for r in ratios if r is not None), default=None)
    console.print(
        f"{label:<10}λ_max {fmt(first, 5)} at θ₀ → {fmt(last, 5)} at the end{limit_text}"
        + (f" · peak λ/threshold {fmt(peak, 3)}" if peak is not None and limit_text else "")
    )
    products = sharp["hessian_vector_products"]
    every = sharp["every"]
    when = f"every {every} steps" if every else "at θ₀ and at the end"
    console.print(
        f"          measured {when}: {len(products)} times, {sum(products)} Hessian-vector "
        f"products ({sharp['full_batch_reads']} full-batch passes), {sharp['seconds']:.3f} s"
    )


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
        head = "why" if i == 0 else ""
        console.print(f"{head:<13}lr {row['lr']:.4g}: {row['rule']}")
    console.print(f"model        {_shape(s)}")
    start = s["initial_sharpness"]
    stable = s["stable_lr_at_start"]
    console.print(
        f"at θ₀        λ_max {fmt(start, 5)}: the local quadratic is stable below lr "
        f"{fmt(stable, 5)} — training moves λ_max, so each rate is judged on what it did"
    )
    best = fmt(s["best_line"]["loss"])
    console.print(f"best line    loss {best} (least squares on the same rows)")
    console.print("theory       no closed form: the loss is not a quadratic (model.kind: mlp)")
    console.print(
        f"speed        {len(s['lrs'])} learning rates × {s['max_iter']} steps in "
        f"{s['elapsed_s']:.3f} s on {s['device']} ({s['gradient']}, one batched run)"
    )
    console.print(f"run          {run.run_dir}")
