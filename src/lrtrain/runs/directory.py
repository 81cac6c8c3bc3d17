"""Run directories: the only module that reads or writes them.

Every file is written atomically (temporary file in the same directory, fsync, rename), so a
reader — or a crash — only ever sees a file absent or complete. Reading needs no torch: ``lrtrain
plot`` redraws from these files alone.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import yaml

from lrtrain.errors import RunDirError
from lrtrain.runs import tables
from lrtrain.runs.atomic import atomic_file, write_bytes, write_text
from lrtrain.runs.summaries import ARRAYS_FILE, FORMAT_VERSION

if TYPE_CHECKING:
    from lrtrain.config.schema import Config
    from lrtrain.runs.network_summaries import NetworkFitSummary
    from lrtrain.runs.records import Curve, FitRecord, SweepRecord
    from lrtrain.runs.summaries import BatchMapSummary, FindLrSummary, FitSummary, MapRow


# --------------------------------------------------------------------------- writing

REPLICAS_FILE = "replicas.csv"  # train.replicas > 1: the replicas' band
CHECKPOINT_FILE = "checkpoint.pt"  # the engine state a resume starts from (bytes, torch.save)
MODES_FILE = "modes.csv"  # the shown eigen-modes' predicted errors per logged step
BATCH_MAP_FILE = "batch_map.csv"  # sweep-lr --batch-sizes: (batch size, lr) → steps
FINDER_FILE = "finder.csv"  # find-lr: every range test's rate, loss and smoothed loss per step
FINDERS = ("fastai", "lightning", "torch-lr-finder")  # finder.csv's finders, as loaded: 0, 1, 2

TRAJECTORIES_FILE = "trajectories.npz"  # a sweep's table beyond output.csv_rows rows


def create_run_dir(
    root: str | Path, name: str, out: str | Path | None = None, overwrite: bool = False
) -> Path:
    """Create the run directory: exactly ``out``, or ``root/name-YYYYmmdd-HHMMSS[-N]``.

    ``os.mkdir`` either creates a directory or fails, so two processes starting at the same
    second never share one: the loser takes the next suffix.
    """
    try:
        if out is not None:
            path = Path(out)
            if path.exists() and not path.is_dir():
                raise RunDirError(f"--out {path}: exists and is not a directory")
            if path.is_dir() and any(path.iterdir()) and not overwrite:
                raise RunDirError(
                    f"--out {path}: directory is not empty; choose another, or pass "
                    "--overwrite to replace the run files in it"
                )
            path.mkdir(parents=True, exist_ok=True)
            (path / "plots").mkdir(exist_ok=True)
            return path
        base = Path(root)
        base.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        for attempt in range(1, 10_000):
            suffix = "" if attempt == 1 else f"-{attempt}"
            path = base / f"{name}-{stamp}{suffix}"
            try:
                path.mkdir()
            except FileExistsError:
                continue
            (path / "plots").mkdir()
            return path
    except OSError as exc:
        where = out if out is not None else root
        raise RunDirError(
            f"cannot create the run directory under '{where}': {exc.strerror or exc}; "
            "choose another location with output.root=DIR or --out DIR"
        ) from None
    raise RunDirError(f"{root}: too many runs named '{name}' in the same second")


def save_fit(run_dir: Path, record: FitRecord) -> RunData:
    """Write every file of a fit run from its record (built by ``workflows.fit``); returns the
    run as :func:`load_run` would read it back, from the numbers in memory."""
    config, summary = record.config, record.summary
    config_text = _config_header(config) + config.to_yaml()
    write_text(run_dir / "config.yaml", config_text)
    trajectory = summary["trajectory"]  # the parameters' file when too many for the CSV
    parameters = not trajectory and "model" not in summary  # a network's θ is in model.pt
    metrics = tables.metrics_columns(
        record.history, record.expected_loss, parameters, record.validation
    )
    write_text(run_dir / "metrics.csv", tables.columns_csv(metrics))
    run = _written(run_dir, "fit", summary, config, metrics)
    if record.band is not None:
        replicas = tables.replicas_columns(record.band, record.band_expected)
        write_text(run_dir / REPLICAS_FILE, tables.columns_csv(replicas))
        run.replicas = _as_read(replicas)
    if record.modes is not None:
        modes = tables.modes_columns(record.modes)
        write_text(run_dir / MODES_FILE, tables.columns_csv(modes))
        run.modes = _as_read(modes)
    if trajectory:
        _write_npy(run_dir / trajectory, record.history.theta)
        run.trajectory = np.asarray(record.history.theta, dtype=np.float64)
    if record.sample is not None:
        sample = tables.sample_columns(record.sample)
        write_text(run_dir / "data_sample.csv", tables.columns_csv(sample))
        run.sample = _as_read(sample)
    write_bytes(run_dir / "model.pt", record.model)
    write_bytes(run_dir / CHECKPOINT_FILE, record.checkpoint)
    run.arrays = _write_npz(run_dir / ARRAYS_FILE, record.arrays)
    write_text(run_dir / "summary.json", json.dumps(_with_files(run_dir, summary), indent=2) + "\n")
    return run


def _written(
    run_dir: Path, kind: str, summary: Any, config: Config, metrics: dict[str, np.ndarray]
) -> RunData:
    """A run as :func:`load_run` reads it, from what is being written: the summary as its
    JSON parses, the config as the mapping its YAML is dumped from, the tables' columns as
    float64."""
    return RunData(
        path=run_dir,
        kind=kind,
        summary=json.loads(json.dumps(summary)),
        config=config.to_dict(),
        metrics=_as_read(metrics),
    )


def _as_read(columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """A table's columns as :func:`load_run` reads them: every number a float64."""
    return {name: column.astype(np.float64) for name, column in columns.items()}


def _with_files(run_dir: Path, summary: FitSummary | NetworkFitSummary) -> dict[str, Any]:
    """summary.json's content: a wide run's coefficient table goes to its own file."""
    if "statistics" not in summary:  # a network's: no least-squares statistics
        return cast(dict[str, Any], summary)
    statistics = cast("FitSummary", summary).get("statistics")
    if statistics is None or not statistics["coefficients_file"]:
        return cast(dict[str, Any], summary)
    rows = statistics["coefficients"]
    columns = ["name", "feature", "estimate", "se", "t", "p", "ci_low", "ci_high"]
    body = ([cast(dict[str, Any], r)[c] for c in columns] for r in rows)
    write_text(run_dir / statistics["coefficients_file"], tables.table(columns, body))
    return {**summary, "statistics": {**statistics, "coefficients": []}}


def save_sweep(run_dir: Path, record: SweepRecord) -> RunData:
    """Write a sweep directory: config, sweep.csv, trajectories.csv (with each rate's expected
    loss), arrays, summary.json; returns the run as :func:`load_run` would read it back."""
    config, summary = record.config, record.summary
    config_text = _config_header(config).replace("lrtrain fit", "lrtrain sweep-lr")
    config_text += config.to_yaml()
    write_text(run_dir / "config.yaml", config_text)
    write_text(run_dir / "sweep.csv", tables.sweep_csv(summary["results"]))
    trajectory = summary["trajectory"]  # the parameters' file when too many for the CSV
    columns = tables.trajectory_columns(record.lrs, record.histories, record.expected_loss,
                                        not trajectory)  # fmt: skip
    text, binary = run_dir / "trajectories.csv", run_dir / TRAJECTORIES_FILE
    if len(columns["step"]) <= config.output.csv_rows:
        write_text(text, tables.columns_csv(columns))
        binary.unlink(missing_ok=True)  # an overwritten run's other table would mislead
    else:  # a long sweep's table in numpy's format: formatting it as text took longer than training
        _write_npz(binary, columns)
        text.unlink(missing_ok=True)
    run = _written(run_dir, "sweep", summary, config, columns)
    if trajectory:
        run.trajectory = np.concatenate([h.theta for h in record.histories]).astype(np.float64)
        _write_npy(run_dir / trajectory, run.trajectory)
    run.arrays = _write_npz(run_dir / ARRAYS_FILE, record.arrays)
    write_text(run_dir / "summary.json", json.dumps(summary, indent=2) + "\n")
    return run


def save_batch_map(
    run_dir: Path, config: Config, summary: BatchMapSummary, rows: list[MapRow]
) -> None:
    """Write a map's own files beside its sweeps: config, batch_map.csv, summary."""
    write_text(run_dir / "config.yaml", _config_header(config) + config.to_yaml())
    columns = ["batch_size", "lr", "predicted_steps", "observed_steps"]
    body = (["full" if r["batch_size"] is None else r["batch_size"], *(r[c] for c in columns[1:])]
            for r in cast(list[dict[str, Any]], rows))  # fmt: skip
    write_text(run_dir / BATCH_MAP_FILE, tables.table(columns, body))
    write_text(run_dir / "summary.json", json.dumps(summary, indent=2) + "\n")


def save_find_lr(
    run_dir: Path, config: Config, summary: FindLrSummary, curves: list[Curve]
) -> None:
    """Write a find-lr directory: config, finder.csv (every test's steps), summary."""
    write_text(run_dir / "config.yaml", _config_header(config) + config.to_yaml())
    body = (
        [curve.finder, curve.repeat, step, tables.fmt(lr), tables.fmt(loss),
         tables.fmt(curve.smoothed[step]) if step < len(curve.smoothed) else ""]
        for curve in curves
        for step, (lr, loss) in enumerate(zip(curve.lrs, curve.losses, strict=True))
    )  # fmt: skip
    columns = ["finder", "repeat", "step", "lr", "loss", "smoothed"]
    write_text(run_dir / FINDER_FILE, tables.table(columns, body))
    write_text(run_dir / "summary.json", json.dumps(summary, indent=2) + "\n")


def _write_npy(path: Path, array: np.ndarray) -> None:
    with atomic_file(path) as fh:  # straight to the file: no copy of a large array in memory
        np.save(fh, np.asarray(array, dtype=np.float64), allow_pickle=False)


def _write_npz(path: Path, arrays: dict[str, Any]) -> dict[str, np.ndarray]:
    """Numbers only (no pickles), each array in its own dtype (float32 where the writer chose
    it, integers as integers); anything else as float64. Returns the arrays as written."""
    named: dict[str, Any] = {
        k: v if isinstance(v, np.ndarray) and v.dtype.kind in "fiu" else np.asarray(v, np.float64)
        for k, v in arrays.items()
    }
    with atomic_file(path) as fh:
        np.savez(fh, **named)
    return named


def _config_header(config: Config) -> str:
    return (
        f"# Resolved config of run '{config.name}'. Rerun it with:\n"
        "#   lrtrain fit -c THIS_DIR/config.yaml\n"
    )


# --------------------------------------------------------------------------- reading


@dataclass
class RunData:
    """Everything a saved run holds, as plain Python and numpy (no torch)."""

    path: Path
    kind: str
    summary: dict[str, Any]
    config: dict[str, Any]
    metrics: dict[str, np.ndarray] = field(default_factory=dict)
    sample: dict[str, np.ndarray] | None = None
    trajectory: np.ndarray | None = None  # the parameters per row, when not in the CSV (wide)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)  # arrays.npz (format ≥ 2)
    replicas: dict[str, np.ndarray] | None = None  # replicas.csv (train.replicas > 1)
    modes: dict[str, np.ndarray] | None = None  # modes.csv: predicted mode errors

    @property
    def theta(self) -> np.ndarray:
        """Parameters per row, [T+1, d+1] (w_0 … w_{d-1}, b)."""
        if self.trajectory is not None:
            return self.trajectory
        cols = sorted((k for k in self.metrics if k.startswith("w_")), key=lambda k: int(k[2:]))
        return np.stack([self.metrics[c] for c in cols] + [self.metrics["b"]], axis=1)

    @property
    def hessian(self) -> np.ndarray:
        """H, [p, p]: V diag(λ) Vᵀ from the eigenvectors in arrays.npz and the eigenvalues in
        the summary (format 3), H itself from arrays.npz (format 2) or summary.json (1)."""
        if "hessian" in self.arrays:
            return self.arrays["hessian"]
        if "eigenvectors" in self.arrays:  # in their dtype: float32 where only figures read them
            vectors = self.arrays["eigenvectors"]
            values = np.asarray(self.summary["analysis"]["hessian_eigenvalues"], vectors.dtype)
            return (vectors * values) @ vectors.T
        return np.asarray(self.summary["analysis"]["hessian"], dtype=np.float64)

    @property
    def eigenvectors(self) -> np.ndarray | None:
        """H's eigenvectors (columns, ascending eigenvalues); None in a format-1 run."""
        return self.arrays.get("eigenvectors")


def load_run(path: str | Path) -> RunData:
    """Read a run directory; a missing, foreign or corrupt file is a clear RunDirError."""
    path = Path(path)
    if not path.is_dir():
        raise RunDirError(f"{path}: no such run directory")
    summary = _read_json(path / "summary.json")
    version = summary.get("format_version")
    if not isinstance(version, int):
        raise RunDirError(f"{path}/summary.json: not an lrtrain summary (no format_version)")
    if version > FORMAT_VERSION:
        raise RunDirError(
            f"{path}: written by a newer lrtrain (format {version}, this one reads up to "
            f"{FORMAT_VERSION}); upgrade lrtrain to read it"
        )
    config = _read_yaml(path / "config.yaml")
    kind = summary.get("kind", "fit")
    run = RunData(path=path, kind=kind, summary=summary, config=config)
    if kind == "batch-map":  # the map's own table
        run.metrics = _read_csv_columns(path / BATCH_MAP_FILE, {"full": math.inf, "": math.nan})
        return run
    if kind == "find-lr":  # finder.csv's finder column as numbers: its index in FINDERS
        words = {name: float(i) for i, name in enumerate(FINDERS)} | {"": math.nan}
        run.metrics = _read_csv_columns(path / FINDER_FILE, words)
        return run
    table = "trajectories" if kind == "sweep" else "metrics"
    binary = path / TRAJECTORIES_FILE
    if kind == "sweep" and binary.is_file():  # a long sweep's table (output.csv_rows)
        run.metrics = _as_read(_read_npz(binary))
    else:
        run.metrics = _read_csv_columns(path / f"{table}.csv")
    trajectory = summary.get("trajectory")  # format ≥ 2, wide runs: the parameters' file
    if trajectory:
        run.trajectory = _read_npy(path / trajectory, len(run.metrics["step"]))
    if version >= 2:
        run.arrays = _read_npz(path / ARRAYS_FILE)
    sample = path / "data_sample.csv"
    if sample.is_file():
        run.sample = _read_csv_columns(sample)
    if "replicas" in summary:
        run.replicas = _read_csv_columns(path / REPLICAS_FILE)
    if "modes" in summary:
        run.modes = _read_csv_columns(path / MODES_FILE)
    statistics = summary.get("statistics") or {}
    if statistics.get("coefficients_file"):
        statistics["coefficients"] = _read_coefficients(path / statistics["coefficients_file"])
    return run


def read_checkpoint(run_dir: str | Path) -> tuple[Path, bytes]:
    """A run's checkpoint.pt as bytes (the engine's serialisation), and its path for messages."""
    path = Path(run_dir) / CHECKPOINT_FILE
    with _reading(path, missing="not a resumable run"):  # absent or unreadable: one message
        return path, path.read_bytes()


def latest_run(root: str | Path = "runs") -> Path:
    """The most recently written run under ``root`` (for ``lrtrain plot`` with no argument)."""
    root = Path(root)
    runs = [p for p in root.glob("*/summary.json")] if root.is_dir() else []
    if not runs:
        raise RunDirError(
            f"no runs under '{root}/'; run `lrtrain fit` first or pass a run directory"
        )
    return max(runs, key=lambda p: p.stat().st_mtime).parent


@contextlib.contextmanager
def _reading(path: Path, missing: str = "incomplete run") -> Iterator[None]:
    """Read one file of a run: absent, or unparseable, is one clear RunDirError."""
    if not path.is_file():
        raise RunDirError(f"{path.parent}: {missing} (no {path.name})")
    try:
        yield
    except (OSError, UnicodeDecodeError, ValueError, IndexError, KeyError, yaml.YAMLError) as exc:
        # (json's and numpy's parse errors are ValueErrors)
        raise RunDirError(f"{path}: unreadable or corrupt ({exc})") from None


def _read_json(path: Path) -> dict[str, Any]:
    with _reading(path, missing="not an lrtrain run"):
        data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise RunDirError(f"{path}: corrupt (expected a JSON object)")
    return data


def _read_npy(path: Path, rows: int) -> np.ndarray:
    with _reading(path):
        array = np.load(path, allow_pickle=False)
    if array.ndim != 2 or array.shape[0] != rows:
        raise RunDirError(f"{path}: corrupt (expected {rows} rows of parameters)")
    return array


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    with _reading(path), np.load(path, allow_pickle=False) as data:
        return {name: data[name] for name in data.files}


def _read_yaml(path: Path) -> dict[str, Any]:
    with _reading(path):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise RunDirError(f"{path}: corrupt (expected a mapping)")
    return data


def _read_coefficients(path: Path) -> list[dict[str, Any]]:
    with _reading(path), path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    return [
        {k: (v or None) if k in ("name", "feature") else (float(v) if v else None)
         for k, v in row.items()}
        for row in rows
    ]  # fmt: skip


def _read_csv_columns(path: Path, words: dict[str, float] | None = None) -> dict[str, np.ndarray]:
    """A CSV of numbers by column; ``words``: cells that stand for numbers ("full": inf)."""
    with _reading(path), path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
        header, body = rows[0], rows[1:]
        if words:
            body = [[str(words.get(cell, cell)) for cell in row] for row in body]
        table = np.array(body, dtype=np.float64).reshape(len(body), len(header))
    return {name: table[:, i] for i, name in enumerate(header)}


def save_figures(run_dir: Path, figures: dict[str, Any], fmt: str = "png") -> list[Path]:
    """Render matplotlib figures into ``run_dir/plots/NAME.FMT`` atomically."""
    plots = _plots_dir(run_dir)
    return [save_figure(fig, plots / f"{name}.{fmt}") for name, fig in figures.items()]


def _plots_dir(run_dir: Path) -> Path:
    plots = Path(run_dir) / "plots"
    try:
        plots.mkdir(exist_ok=True)
    except OSError as exc:
        raise RunDirError(f"{plots}: cannot create: {exc.strerror or exc}") from None
    return plots


def save_figure(fig: Any, path: Path) -> Path:
    """Render one figure to ``path`` atomically, in the format its suffix names."""
    fmt = path.suffix.lstrip(".").lower()
    supported = fig.canvas.get_supported_filetypes()  # config.FIGURE_FORMATS and more
    if fmt not in supported:
        shown = ", ".join(f".{name}" for name in sorted(supported))
        raise RunDirError(f"{path}: the file name must end in one of {shown}")
    buffer = io.BytesIO()
    fig.savefig(buffer, format=fmt, dpi=120)
    write_bytes(path, buffer.getvalue())
    return path


def save_page(path: Path, text: str) -> Path:
    """Write an HTML page (``lrtrain explore``) atomically; a page already there is replaced
    (it is derived from a run or a config and can always be written again)."""
    if path.is_dir():
        raise RunDirError(f"{path}: is a directory; -o takes the page's file name (page.html)")
    if path.suffix.lower() not in (".html", ".htm"):
        raise RunDirError(f"{path}: the page's file name must end in .html")
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text(path, text)
    return path


def save_animation(frames: list[Any], run_dir: Path, fps: int = 12) -> Path:
    """Write RGB frames (arrays [h, w, 3]) as ``run_dir/plots/descent.gif``, a looping GIF,
    atomically (Pillow, which matplotlib itself depends on)."""
    from PIL import Image

    path = _plots_dir(run_dir) / "descent.gif"
    images = [Image.fromarray(frame) for frame in frames]
    buffer = io.BytesIO()
    images[0].save(
        buffer,
        format="GIF",
        save_all=True,
        append_images=images[1:],
        duration=round(1000 / fps),
        loop=0,
    )
    write_bytes(path, buffer.getvalue())
    return path
