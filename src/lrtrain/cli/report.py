"""The reports ``fit`` and ``sweep-lr`` print, rendered with rich from a run's summary."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, cast

from rich import box
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from lrtrain.api import BatchMapRun, FindLrRun, FitRun, SweepRun
    from lrtrain.runs.summaries import FitStatistics, MinibatchTheory, ReplicaSummary, SweepRow


def say(console: Console, label: str, text: str, indent: int = 10) -> None:
    """``label`` then ``text``, wrapped to the terminal with a hanging indent (a rich console
    wraps at the edge without one, which reads badly in 80 columns)."""
    width = max(40, min(console.width, 100))
    head = label.ljust(indent)
    lines = textwrap.wrap(text, width - indent, break_on_hyphens=False) or [""]
    for i, line in enumerate(lines):
        console.print((head if i == 0 else " " * indent) + line, soft_wrap=True)


def fmt(value: Any, digits: int = 6) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def _fit_table(run: FitRun) -> Table:
    s = run.summary
    true = s.get("true")
    standardized = "final_original" in s
    table = Table(title=f"lrtrain fit — {s['name']}", title_justify="left")
    table.add_column("parameter")
    columns: list[tuple[str, Mapping[str, Any]]] = [
        ("learned", s["final"]),
        ("closed form", s["closed_form"]),
    ]
    if standardized:
        # Trained on standardised features; the original units are what the data speak.
        columns = [
            ("learned (standardised)", s["final"]),
            ("learned", s["final_original"]),
            ("closed form", s["closed_form_original"]),
        ]
    half = _half_widths(s)
    if half is not None:
        columns.append((f"± ({100 * s['statistics']['level']:.0f}%)", half))
    if true:
        columns.append(("true", true))
    for title, _ in columns:
        table.add_column(title, justify="right")
    features = s.get("data", {}).get("features") or []
    names = [
        f"w_{i}" if i >= len(features) or features[i] == f"x_{i}" else f"w ({features[i]})"
        for i in range(len(s["final"]["w"]))
    ]
    shown = _shown_weights(columns[0][1]["w"])
    for i in shown:
        table.add_row(names[i], *(fmt(values["w"][i], _digits(t)) for t, values in columns))
    table.add_row("b", *(fmt(values["b"], _digits(t)) for t, values in columns))
    hidden = len(names) - len(shown)
    if hidden:
        table.caption = f"… {hidden} more weights in summary.json"  # the largest are shown
        table.caption_justify = "left"
    return table


def _statistics_line(s: Mapping[str, Any]) -> str:
    """R², σ̂ and whether the true parameters lie in their intervals."""
    st = s["statistics"]
    r2 = f"R² {fmt(st['r2'], 4)}" if st["r2"] is not None else "R² —"
    sigma = f"σ̂ {fmt(st['sigma'], 4)} on {st['dof']} dof" if st["sigma"] is not None else ""
    parts = [r2, sigma] if sigma else [r2]
    true = s.get("true")
    if true and len(true["w"]) + 1 == len(st["coefficients"]):
        inside = truth_inside(st, [*true["w"], true["b"]])
        if all(v is not None for v in inside):
            out = [c["name"] for c, v in zip(st["coefficients"], inside, strict=True) if not v]
            level = f"{100 * st['level']:.0f}%"
            parts.append(
                f"every true parameter inside its {level} interval"
                if not out
                else f"true {', '.join(out)} outside {'its' if len(out) == 1 else 'their'} "
                f"{level} interval{'s' if len(out) > 1 else ''}"
            )
    if st["note"]:
        parts.append(st["note"])
    return " · ".join(parts)


def _half_widths(s: Mapping[str, Any]) -> dict[str, Any] | None:
    """The closed form's confidence half-widths as a table column {w: [...], b: ...}."""
    statistics = s.get("statistics")
    if statistics is None:
        return None
    half = [
        None if c["ci_low"] is None else (c["ci_high"] - c["ci_low"]) / 2
        for c in statistics["coefficients"]
    ]
    return None if all(h is None for h in half) else {"w": half[:-1], "b": half[-1]}


def _digits(title: str) -> int:
    return 3 if title.startswith("±") else 6


GRADIENT_WORDS = {
    "autograd": "the lesson's loop (forward, MSE, backward) over the rows",
    "gram": "from the float64 statistics of one read of the data, O(p²) a step",
    "network autograd": "forward through the layers, MSE, backward, over the rows",
}
MAX_TABLE_ROWS = 20  # parameters a report shows; wide data keeps the rest in summary.json


def _shown_weights(learned: list[float | None]) -> list[int]:
    """Which weights the table shows, in order: all of them, or the largest by magnitude."""
    if len(learned) < MAX_TABLE_ROWS:
        return list(range(len(learned)))

    def size(i: int) -> float:
        value = learned[i]
        return abs(value) if value is not None else float("inf")  # non-finite: worth seeing

    return sorted(sorted(range(len(learned)), key=size, reverse=True)[: MAX_TABLE_ROWS - 1])


def fit_report(run: FitRun, console: Console) -> None:
    """The report of a fit: learned vs closed form, loss, status, analysis, verdict, warnings."""
    from lrtrain.config.optimizer import describe_schedule  # pydantic: not for --help

    s = run.summary
    a, v = s["analysis"], s["verdict"]
    console.print(_fit_table(run))
    gap = s["optimality_gap"]["relative"]
    gap_text = f", gap {gap:.3g} relative" if gap is not None else ""
    if gap is not None and gap < 0:  # no loss is below the optimum: its evaluation rounded
        gap_text += f": the {s.get('dtype', 'float32')} loss rounds below the optimum"
    console.print(
        f"loss      {fmt(s['initial']['loss'])} → {fmt(s['final']['loss'])} "
        f"(optimum {fmt(s['closed_form']['loss'])}{gap_text})"
    )
    if "statistics" in s:
        console.print(f"fit       {_statistics_line(s)}")
    held = s.get("validation")
    if held is not None:
        console.print(
            f"held out  {held['rows']} rows ({100 * held['fraction']:.3g}%): validation loss "
            f"{fmt(held['initial_loss'])} → {fmt(held['final_loss'])} (lowest "
            f"{fmt(held['best_loss'])} at step {held['best_step']})"
        )
    rate = s["steps_per_s"]
    console.print(
        f"status    {s['status']} after {s['steps']} of {s['max_iter']} steps · "
        f"{fmt(rate, 4) if rate else '—'} steps/s · {s['elapsed_s']:.3f} s on {s['device']}"
    )
    console.print(
        f"gradient  {s['gradient']}: {GRADIENT_WORDS.get(s['gradient'], '')}".rstrip(": ")
    )
    opt = s["optimizer"]
    if opt["name"] != "sgd" or opt["schedule"]["kind"] != "constant":
        console.print(f"optimizer {opt['name']} · schedule {describe_schedule(opt['schedule'])}")
    kappa = a["condition_number"]
    before = ""
    if "standardization" in s:
        raw = s["standardization"]["condition_number_before"]
        before = f" (standardised; {fmt(raw, 4) if raw is not None else '∞'} before)"
    console.print(
        f"analysis  critical lr {fmt(a['critical_lr'], 5)} · monotone below "
        f"{fmt(a['monotone_lr_limit'], 5)} · "
        f"κ {fmt(kappa, 5) if kappa is not None else '∞ (singular)'}{before}"
    )
    console.print(f"          {_eta_star(a['asymptotically_optimal_lr'])}")
    auto, theory = s["optimizer"]["auto"], s["theory"]
    if auto is not None:
        opt = s["optimizer"]
        momentum = f", momentum {fmt(opt['momentum'], 5)}" if opt["momentum"] else ""
        console.print(
            f"auto      lr {fmt(opt['lr'], 5)}{momentum} — {auto['rule']}; the slowest "
            f"direction keeps {fmt(auto['rate'], 5)} of its error per step"
        )
        if auto["note"]:
            console.print(f"note      {auto['note']}")
    if theory["target_gap"] is not None:
        observed = theory["observed_steps"]
        reached = f"reached at step {observed}" if observed is not None else "not reached"
        predicted = theory["predicted_steps"]
        console.print(
            f"target    relative gap ≤ {theory['target_gap']:g}: {reached} · theory "
            f"{'predicts ' + str(predicted) if predicted is not None else 'predicts more than'}"
            f"{'' if predicted is not None else ' ' + str(s['max_iter'])} steps"
            f"{'' if theory['full_batch_prediction'] else ' (for full batch)'}"
        )
    minibatch = theory.get("minibatch")
    if minibatch is not None:
        _minibatch_lines(minibatch, s["lr"], v["observed"], console)
    elif v["predicted"] is None:
        console.print(f"verdict   {v['observed']} (observed only) — {v['why']}")
    else:
        label = "predicted" if v["full_batch_prediction"] else "full-batch prediction"
        console.print(f"verdict   {v['observed']} ({label}: {v['predicted']}) — {v['why']}")
    if "replicas" in s:
        replica_line(s["replicas"], console)
    for warning in s["warnings"]:
        console.print(f"[bold yellow]warning[/]   {warning}")
    console.print(f"run       {run.run_dir}")


def replica_line(replicas: ReplicaSummary, console: Console) -> None:
    """K batch streams: their mean against the theory, and the verdict from the mean."""
    low, high = replicas["final_band"]
    band = f"99% band {fmt(low)} … {fmt(high)}" if low is not None else "not finite"
    inside = replicas["inside_band"]
    theory = (
        f"; expected {fmt(replicas['expected_final_loss'])}, inside the band at "
        f"{100 * inside:.0f}% of logged steps"
        if inside is not None
        else ""
    )
    stopped = f", {replicas['diverged']} stopped diverging" if replicas["diverged"] else ""
    console.print(
        f"replicas  {replicas['count']} batch streams{stopped}: mean final loss "
        f"{fmt(replicas['final_mean_loss'])} ({band}){theory} — {replicas['verdict']} in mean "
        "square"
    )


def _minibatch_lines(theory: MinibatchTheory, lr: float, observed: str, console: Console) -> None:
    """The mean-square prediction of a mini-batch fit, and the verdict it gives."""
    if not theory["available"]:
        console.print(f"theory    mini-batch: not predicted — {theory['why']}")
        console.print(f"verdict   {observed} (observed; the full-batch theory does not apply)")
        return
    sampled = (
        "shuffled epochs, predicted as drawn with replacement"
        if theory["approximation"]
        else "drawn with replacement"
    )
    critical = theory["critical_lr"]
    assert critical is not None
    console.print(
        f"theory    batches of {theory['batch_size']} ({sampled}): mean-square critical lr "
        f"{fmt(critical, 5)} (full batch {fmt(theory['full_batch_critical_lr'], 5)}) · expected "
        f"final loss {fmt(theory['expected_final_loss'])}, observed "
        f"{fmt(theory['observed_final_loss'])}"
    )
    if theory["schedule"] is not None:
        ends = "ends below" if theory["verdict"] == "converges" else "ends above"
        why = (
            f"under the {theory['schedule']} schedule the expected loss {ends} where it "
            f"began; at the last step's rate its noise floor is {fmt(theory['noise_floor'], 3)} "
            "above the optimum"
        )
    elif theory["verdict"] == "converges":
        why = (
            f"lr {fmt(lr, 5)} is {fmt(lr / critical, 3)}× the mean-square critical lr: the "
            f"expected loss settles at a noise floor {fmt(theory['noise_floor'], 3)} above the "
            "optimum"
        )
    else:
        why = (
            f"lr {fmt(lr, 5)} is {fmt(lr / critical, 3)}× the mean-square critical lr: the "
            "gradient noise of these batches makes the expected loss grow without bound"
        )
    console.print(f"verdict   {observed} (predicted for mini-batches: {theory['verdict']}) — {why}")
    console.print(f"speed     {_speed(theory)}")


def _speed(theory: MinibatchTheory) -> str:
    """The fastest constant rate to the target gap, and the critical batch size."""
    gap, lr, batch = theory["target_gap"], theory["fastest_lr"], theory["critical_batch_size"]
    head = f"to a relative gap of {gap:g}: "
    if lr is None:
        head += f"no constant lr reaches it with batches of {theory['batch_size']}"
    else:
        head += (
            f"the fastest constant lr is {fmt(lr, 4)} ({theory['fastest_steps']} expected steps "
            f"with batches of {theory['batch_size']})"
        )
    if batch is None:
        return head + "; no batch size up to the data's comes within 2× the full batch's steps"
    return (
        head + f"; critical batch size {batch} (from there, within 2× the full batch's fewest "
        "steps: bigger batches save little)"
    )


_VERDICT_STYLE = {"monotone": "green", "oscillating": "yellow", "diverged": "bold red",
                  "edge of stability": "magenta", "catapult": "cyan"}  # fmt: skip


def verdict_text(text: str | None) -> str:
    if text is None:
        return "— (no theory)"
    return f"[{_VERDICT_STYLE.get(text, 'white')}]{text}[/]"


def _eta_star(lr: float) -> str:
    """η* named for what it is: the best rate in the long run, not the fewest steps."""
    return (
        f"η* {fmt(lr, 5)} = 2/(λ_min+λ_max): asymptotically optimal (not the fewest steps to a gap)"
    )


def _diverged_at(row: SweepRow) -> str:
    """The step divergence set in, and where the guard stopped the rate if it did."""
    if row["diverged_at"] is None:
        return "—"
    stopped = row["stopped_at"]
    return f"{row['diverged_at']}" + (f" (stopped {stopped})" if stopped is not None else "")


def sweep_report(run: SweepRun, console: Console) -> None:
    """The report of a sweep: a row per learning rate, the analysis and the recommendation."""
    s = run.summary
    assert s is not None, "rank 0 reports a sweep"
    if s.get("minibatch_critical_lr") is not None:
        label = "predicted (mean square)"
    else:
        label = "predicted" if s["full_batch_prediction"] else "full-batch prediction"
    table = Table(title=f"lrtrain sweep-lr — {s['name']}", title_justify="left")
    for col in ("lr", "observed", label, "final loss", "gap", "diverged at", "steps to target"):
        table.add_column(col, justify="right" if col not in ("observed", label) else "left")
    for row in s["results"]:
        mark = " ◀" if row["lr"] == s["recommended_lr"] else ""
        table.add_row(
            f"{row['lr']:.4g}{mark}",
            verdict_text(row["verdict"]),
            verdict_text(row["predicted_verdict"]),
            fmt(row["final_loss"]),
            fmt(row["gap"], 3),
            _diverged_at(row),
            fmt(row["steps_to_target"]),
        )
    console.print(table)
    kappa = s["condition_number"]
    console.print(
        f"analysis     critical lr {fmt(s['critical_lr'], 5)} · monotone below "
        f"{fmt(s['monotone_lr_limit'], 5)} · "
        f"κ {fmt(kappa, 5) if kappa is not None else '∞ (singular)'}"
    )
    console.print(f"             {_eta_star(s['asymptotically_optimal_lr'])}")
    if s.get("minibatch_critical_lr") is not None:
        console.print(
            f"             mini-batches: mean-square critical lr "
            f"{fmt(s['minibatch_critical_lr'], 5)} (the predicted column; full batch above)"
        )
    recommended = s["recommended_lr"]
    head = f"{recommended:.4g}" if recommended is not None else "none"
    console.print(f"recommended  {head} — {s['recommendation']}")
    console.print(
        f"speed        {len(s['lrs'])} learning rates × {s['max_iter']} steps in "
        f"{s['elapsed_s']:.3f} s on {s['device']} ({s['gradient']})"
    )
    console.print(f"run          {run.run_dir}")


def batch_map_report(run: BatchMapRun, console: Console) -> None:
    """The report of an lr × batch-size map: per batch size its limit and fastest rate,
    expected beside observed; the critical batch size and the linear-scaling rule."""
    s = run.summary
    table = Table(
        title=f"lrtrain sweep-lr --batch-sizes — {s['name']} (steps to a relative gap of "
        f"{s['target_gap']:g}; observed: the mean of {s['paths']} batch streams)",
        title_justify="left",
    )
    for col in ("batch", "mean-square critical lr", "fastest lr", "expected steps",
                "best lr (grid)", "observed steps"):  # fmt: skip
        table.add_column(col, justify="right")
    for size in s["sizes"]:
        table.add_row(
            "full" if size["batch_size"] is None else str(size["batch_size"]),
            fmt(size["critical_lr"], 5),
            fmt(size["predicted_fastest_lr"], 4),
            fmt(size["predicted_fastest_steps"]),
            fmt(size["observed_best_lr"], 4),
            fmt(size["observed_best_steps"]),
        )
    console.print(table)
    up_to = s["linear_scaling_up_to"]
    critical = s["critical_batch_size"]
    console.print(
        "scaling   "
        + (
            f"the fastest lr grows in proportion to the batch up to {up_to} (linear scaling), "
            "then less"
            if up_to is not None
            else "the fastest lr does not grow in proportion to the batch here"
        )
        + (
            f"; critical batch size {critical}: from there at most 2× the full batch's fewest steps"
            if critical is not None
            else "; no batch size up to the data's comes within 2× the full batch's steps"
        )
    )
    console.print(f"run       {run.run_dir}")


def find_lr_report(run: FindLrRun, console: Console) -> None:
    """Every suggestion of the range tests beside the exact thresholds, as ratios — only the
    columns that say something (the spread with repeats, the mean-square critical lr with
    mini-batches, the fastest rate when a sweep found one), so that it fits 80 columns."""
    s = run.summary
    repeats = s["repeats"] > 1

    def ratio(key: str) -> Callable[[str, float], str]:
        return lambda name, lr: fmt(cast(dict[str, Any], s["ratios"][name])[key], 2)

    exact = s["optimal_lr"] is not None  # a network's thresholds are measured, not exact
    columns: list[tuple[str, Callable[[str, float], str]]] = [
        ("lr", lambda name, lr: fmt(lr, 2)),
        ("×2/λmax", ratio("critical")),
    ]
    if exact:
        columns.append(("×η*", ratio("optimal")))
    if s["minibatch_critical_lr"]:
        columns.append(("×ms", ratio("minibatch_critical")))
    if s["fastest_lr"] is not None:
        columns.append(("×fastest", ratio("fastest")))
    if repeats:
        columns.append(("min–max", lambda name, lr: _span(s["spread"][name])))
    repeat = f"{s['repeats']} repeats" if repeats else "1 run"
    ms = "; ms: mean-square critical" if s["minibatch_critical_lr"] else ""
    each = "each exact rate" if exact else "each measured rate"
    table = Table(title=f"lrtrain find-lr — {s['name']} · {repeat} · ×: ratio to {each}"
                  f"{ms}", title_justify="left", box=box.SIMPLE_HEAD,
                  pad_edge=False, collapse_padding=True)  # fmt: skip
    table.add_column("suggestion", justify="left", no_wrap=True)
    for header, _ in columns:
        table.add_column(header, justify="right", no_wrap=True)
    for name, lr in sorted(s["suggestions"].items()):
        table.add_row(name.replace("_", " "), *(cell(name, lr) for _, cell in columns))
    console.print(table)
    goal = (f"a relative gap of {s['target_gap']:g}" if exact else
            f"{s['target_gap']:g} of the way to the lowest loss of the sweep")  # fmt: skip
    fastest = (
        f"{fmt(s['fastest_lr'], 4)} ({s['fastest_steps']} steps to {goal})"
        if s["fastest_lr"] is not None
        else f"— (no rate of the sweep reached {goal})"
    )
    if not exact and s["batch_size"] is not None and s["fastest_lr"] is None:
        fastest = "— (not swept for a network's mini-batches: a batch's loss is not the loss)"
    mean_square = s["minibatch_critical_lr"]
    if not exact:
        say(console, "measured", f"critical lr at θ₀ {fmt(s['critical_lr'], 5)} "
            f"(2(1+β)/λ_max(θ₀); a network has no closed form) · fastest constant rate of a "
            f"sweep {fastest}")  # fmt: skip
        say(console, "run", str(run.run_dir))
        return
    console.print(
        f"exact     critical lr {fmt(s['critical_lr'], 5)} · η* {fmt(s['optimal_lr'], 5)}"
        + (f" · mean-square critical {fmt(mean_square, 5)}" if mean_square else "")
        + f" · fastest constant rate of a sweep {fastest}"
    )
    console.print(f"run       {run.run_dir}")


def truth_inside(statistics: FitStatistics, true: list[float]) -> list[bool | None]:
    """Whether each true parameter lies in its interval (None: no interval)."""
    out: list[bool | None] = []
    for c, value in zip(statistics["coefficients"], true, strict=True):
        lo, hi = c["ci_low"], c["ci_high"]
        out.append(None if lo is None or hi is None else lo <= value <= hi)
    return out


def _span(spread: Any) -> str:
    """A suggestion's range over the repeats, compactly: ``2.1e-04–2.7e-04``."""
    return f"{spread['min']:.2g}–{spread['max']:.2g}"
