"""Several processes through torch.distributed (gloo on 127.0.0.1) against one process: the
same data, optimum and parameters for full batch, mini-batch, momentum and unequal shards;
sweeps dealt out over processes; streamed data against in-memory data; and failures.

Data sets are lesson-sized (101 rows, so two processes hold 50 and 51 rows: unequal shards, split
inside a generation block) and runs short, so the whole file takes well under a minute."""

from __future__ import annotations

import itertools
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from events import PROGRESS_ENV, STEP, Output
from typer.testing import CliRunner

from lrtrain import api
from lrtrain.api import prepare
from lrtrain.cli.app import app
from lrtrain.config.schema import load_config
from lrtrain.data import distributed, stats
from lrtrain.data.distributed import World, check_world_size, deal, shard, undeal
from lrtrain.data.load import load_dataset
from lrtrain.engine.batches import Batches
from lrtrain.engine.train import train
from lrtrain.errors import ConfigError
from lrtrain.theory.analysis import analyse_dataset
from lrtrain.workflows.export import write_synthetic_csv

PROBLEM = [
    "device=cpu",
    "data.n_samples=101",
    "data.x={kind: normal, mean: 1.0, std: 2.0}",
    "data.true_w=[2.0, -1.0]",
    "data.true_b=0.5",
    "train.max_iter=40",
]
CASES = {
    "full batch, float64": ["train.dtype=float64", "optimizer.lr=0.1"],
    "momentum, float64": ["train.dtype=float64", "optimizer.lr=auto", "optimizer.momentum=auto"],
    "nesterov, weight decay": [
        "train.dtype=float64", "optimizer.lr=0.05", "optimizer.momentum=0.8",
        "optimizer.nesterov=true", "optimizer.weight_decay=0.01",
    ],
    "mini-batch, float64": [
        "train.dtype=float64", "optimizer.lr=0.05", "train.batch_size=16",
        "optimizer.momentum=0.5",
    ],
    "full batch, float32": ["optimizer.lr=auto"],
    "mini-batch, float32": ["optimizer.lr=0.02", "train.batch_size=8"],
    "streamed, float64": ["train.dtype=float64", "optimizer.lr=auto", "data.stream=true"],
    # a network: DDP through autograd, the sharpness's Hessian-vector products and the
    # per-example gradients summed over the processes
    "network, full batch, float64": [
        "model.kind=mlp", "model.activation=tanh", "train.dtype=float64", "optimizer.lr=0.05",
        "train.sharpness_every=10",
    ],
    "network, mini-batch, float64": [
        "model.kind=mlp", "train.dtype=float64", "optimizer.lr=0.05", "train.batch_size=16",
        "optimizer.momentum=0.5",
    ],
    "standardised, target gap": [
        "train.dtype=float64", "data.x={kind: normal, mean: 100.0, std: 2.0}",
        "data.standardize=true", "optimizer.lr=auto", "train.target_gap=1e-8",
        "train.max_iter=200",
    ],
}  # fmt: skip
# float32: ~30 units of its rounding. One process takes the lesson's autograd steps over these
# 101 rows, two take Gram steps, and each path rounds differently at every step: after 40 steps
# at lr auto, measured 1.1e-6 apart in loss and 4e-7 in θ, while each path's loss is within
# 2.4e-7 of the exact loss at its own θ (the Gram path's gradient is rounded once, the
# autograd path's at every operation).
TOLERANCE = {torch.float64: 1e-10, torch.float32: 2e-6}
runner = CliRunner()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _config(extra: list[str]):
    return load_config(None, [*PROBLEM, *extra])


def _single(extra: list[str]) -> dict[str, object]:
    config, dataset, analysis, _ = prepare(_config(extra))
    result = train(dataset, config, loss_ref=analysis.target_loss)
    return {"result": result, "theta_star": analysis.theta_star, "lr": config.optimizer.lr}


def _worker(rank: int, size: int, port: int, out: str, cases: dict[str, list[str]]) -> None:
    os.environ.update(
        RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(size),
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port),
    )  # fmt: skip
    world = distributed.setup("cpu", timeout_s=60)
    found = {}
    for name, extra in cases.items():
        config, dataset, analysis, _ = prepare(_config(extra), world)
        result = train(dataset, config, loss_ref=analysis.target_loss, world=world)
        found[name] = {
            "result": result,
            "theta_star": analysis.theta_star,
            "lr": config.optimizer.lr,
            "rows": (dataset.offset, dataset.local_rows),
        }
    torch.save(found, f"{out}.{rank}")
    distributed.teardown()


CSV_CASE = "csv, standardised"


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory) -> tuple[list[dict[str, dict[str, object]]], dict]:
    """Every case trained by two gloo processes (torch.multiprocessing.spawn), and the cases
    (with a CSV of the problem's rows, which every process parses and shards)."""
    folder = tmp_path_factory.mktemp("dist")
    csv = folder / "rows.csv"
    write_synthetic_csv(_config([]).data, 0, csv)
    cases = {
        **CASES,
        CSV_CASE: [
            "data.source=csv", f"data.path={csv}", "data.standardize=true",
            "train.dtype=float64", "optimizer.lr=auto",
        ],
    }  # fmt: skip
    out = str(folder / "found")
    mp.spawn(_worker, args=(2, _free_port(), out, cases), nprocs=2, join=True)
    return [torch.load(f"{out}.{rank}", weights_only=False) for rank in range(2)], cases


@pytest.mark.slow
@pytest.mark.parametrize("name", [*CASES, CSV_CASE])
def test_two_processes_equal_one(two_processes, name: str) -> None:
    found_by_rank, cases = two_processes
    single = _single(cases[name])
    expected = single["result"]
    dtype = torch.float64 if "float64" in " ".join(cases[name]) else torch.float32
    tol = TOLERANCE[dtype]
    assert found_by_rank[0][name]["rows"] == (0, 50)  # unequal shards: rows, not ranks
    assert found_by_rank[1][name]["rows"] == (50, 51)
    for rank in range(2):
        found = found_by_rank[rank][name]
        got = found["result"]
        assert found["lr"] == pytest.approx(single["lr"], rel=1e-12)
        assert found["theta_star"] == pytest.approx(single["theta_star"], rel=1e-10, abs=1e-12)
        assert got.stop_steps == expected.stop_steps and got.statuses == expected.statuses
        assert torch.allclose(got.final_theta, expected.final_theta, rtol=tol, atol=tol)
        assert torch.allclose(got.loss, expected.loss, rtol=tol, atol=0)
        assert torch.allclose(got.theta, expected.theta, rtol=tol, atol=tol)
        assert got.world == {"world_size": 2, "backend": "gloo"}
        if expected.sharpness is not None:  # a network: measured over every process's rows
            assert got.sharpness_steps == expected.sharpness_steps
            assert torch.allclose(
                torch.from_numpy(got.sharpness[:, :, 0]),
                torch.from_numpy(expected.sharpness[:, :, 0]),
                rtol=1e-8,
            )
            assert torch.allclose(torch.from_numpy(got.noise), torch.from_numpy(expected.noise),
                                  rtol=1e-8)  # fmt: skip


def test_shards_are_even_row_ranges_covering_every_row_once() -> None:
    for n in (1, 2, 3, 100, 101, 20000, 8192 * 7 + 1):
        for size in range(1, min(n, 9) + 1):
            parts = [shard(n, World(rank, size)) for rank in range(size)]
            assert parts[0][0] == 0 and parts[-1][1] == n
            assert all(a[1] == b[0] for a, b in itertools.pairwise(parts))
            sizes = [hi - lo for lo, hi in parts]
            assert min(sizes) >= 1 and max(sizes) - min(sizes) <= 1


def test_more_processes_than_rows_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"4 processes for 3 rows.*use at most 3"):
        check_world_size(3, 4)
    result = runner.invoke(app, ["fit", "--nproc", "3", "--quiet", "data.n_samples=2"])
    assert result.exit_code == 2
    assert "3 processes for 2 rows" in result.output and "use at most 2" in result.output
    result = runner.invoke(app, ["sweep-lr", "--nproc", "3", "--lrs", "0.01,0.02"])
    assert result.exit_code == 2 and "3 processes for 2 learning rates" in result.output


def test_deal_and_undeal_are_inverse() -> None:
    items = list(range(11))
    parts = [deal(items, World(rank, 3)) for rank in range(3)]
    assert parts == [[0, 3, 6, 9], [1, 4, 7, 10], [2, 5, 8]]
    assert undeal(parts) == items


def test_sharded_batches_together_are_the_single_process_batch() -> None:
    n, size = 20000, 3000
    whole = Batches(n, size, seed=5, device=torch.device("cpu"))
    x = torch.arange(n, dtype=torch.float64).reshape(-1, 1)
    for step in (0, 3, 6, 7, 13):  # step 6 is an epoch's short last batch
        expected = whole.batch(step, x, x)
        parts = []
        for first, stop in (shard(n, World(0, 2)), shard(n, World(1, 2))):
            held = stop - first
            mine = Batches(n, size, 5, torch.device("cpu"), first, held)
            rows = mine.batch(step, x[first : first + held], x[first : first + held])
            assert rows.total == expected.total
            parts.append(rows.x)
        assert sorted(torch.cat(parts)[:, 0].tolist()) == sorted(expected.x[:, 0].tolist())


def test_statistics_combined_across_shards_equal_those_of_all_rows() -> None:
    gen = torch.Generator().manual_seed(0)
    x = 1e6 + torch.rand(30000, 3, generator=gen, dtype=torch.float64)  # large offsets
    y = x @ torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64) + 3.0
    y = y.unsqueeze(1) + 0.01 * torch.randn(30000, 1, generator=gen, dtype=torch.float64)
    whole = stats.chunk_stats([(x, y)])
    cuts = [0, 7000, 8000, 30000]
    parts = [stats.flat(stats.chunk_stats([(x[a:b], y[a:b])])) for a, b in itertools.pairwise(cuts)]
    combined = stats.combine(parts, whole.theta_ref)
    assert combined.n == whole.n
    assert torch.allclose(combined.cov, whole.cov, rtol=1e-9)
    assert torch.allclose(combined.cxy, whole.cxy, rtol=1e-9)
    assert torch.allclose(combined.x_mean, whole.x_mean, rtol=1e-15)
    assert combined.cyy == pytest.approx(whole.cyy, rel=1e-9)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_streamed_data_equals_in_memory_data(dtype: str) -> None:
    extra = [f"train.dtype={dtype}", "optimizer.lr=auto", "data.standardize=true",
             "data.n_samples=300000", "train.max_iter=15"]  # fmt: skip
    memory = _config(extra)
    streamed = _config([*extra, "data.stream=true"])
    in_memory, held = load_dataset(memory), load_dataset(streamed)
    assert held.stream is not None and held.x.numel() == 0  # nothing held but the handle
    chunks = list(held.chunks())
    # Standardised from the same float64 rows and moments, then rounded: the same numbers.
    assert torch.equal(torch.cat([c[0] for c in chunks]), in_memory.x)
    assert torch.equal(torch.cat([c[1] for c in chunks]), in_memory.y)
    a = analyse_dataset(in_memory, memory.optimizer)
    b = analyse_dataset(held, streamed.optimizer)
    assert b.theta_star == pytest.approx(a.theta_star, rel=1e-12)
    assert b.eigenvalues == pytest.approx(a.eigenvalues, rel=1e-12)
    assert held.exact is not None and held.exact.stats.n == 300000
    config = memory.model_copy(
        update={
            "optimizer": memory.optimizer.model_copy(update={"lr": a.asymptotically_optimal_lr})
        }
    )
    expected = train(in_memory, config)
    got = train(held, config)
    tol = TOLERANCE[torch.float64 if dtype == "float64" else torch.float32]
    assert torch.allclose(got.final_theta, expected.final_theta, rtol=tol, atol=tol)
    assert torch.allclose(got.loss, expected.loss, rtol=tol, atol=0)


def _cli(*args: str, env: dict[str, str] | None = None, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})},
        **kw,
    )


@pytest.mark.slow
@pytest.mark.parametrize("model", [[], ["model.kind=mlp", "train.sharpness_every=10"]])
def test_sweep_under_torchrun_equals_the_single_process_sweep(tmp_path: Path, model) -> None:
    """`torchrun --nproc-per-node 2 -m lrtrain sweep-lr`: rates dealt out, gathered on rank 0
    (a network's measurements merged with its rates)."""
    extra = [*PROBLEM, "train.dtype=float64", *model]
    api.sweep_lr(load_config(None, ["device=cpu", *extra]), out=tmp_path / "one", draw=False)
    two = _cli(
        "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
        "-m", "lrtrain", "sweep-lr", "--quiet", "--out", str(tmp_path / "two"), *extra,
    )  # fmt: skip
    assert two.returncode == 0, two.stderr
    a = json.loads((tmp_path / "one" / "summary.json").read_text())
    b = json.loads((tmp_path / "two" / "summary.json").read_text())
    assert b["lrs"] == a["lrs"] and b.get("recommended_lr") == a.get("recommended_lr")
    assert [r["verdict"] for r in b["results"]] == [r["verdict"] for r in a["results"]]
    for ra, rb in zip(a["results"], b["results"], strict=True):
        if ra["final_loss"] is not None:
            assert rb["final_loss"] == pytest.approx(ra["final_loss"], rel=1e-10)
        for key in ("initial_sharpness", "final_sharpness"):  # a network's, measured
            if ra.get(key) is not None:
                assert rb[key] == pytest.approx(ra[key], rel=1e-8)
    assert b["distributed"]["world_size"] == 2
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == sorted(
        p.name for p in (tmp_path / "one").iterdir()
    )


@pytest.mark.slow
def test_a_process_that_dies_stops_the_others_with_a_clear_message(tmp_path: Path) -> None:
    """Two processes started by hand (no launcher to clean up): kill -9 one mid-training; the
    other must stop within the timeout, exit 1 and say what happened, not hang."""
    port = str(_free_port())
    args = [
        "-m", "lrtrain", "fit", "--out", str(tmp_path / "run"), "--dist-timeout",
        "30", *PROBLEM, "train.max_iter=1000000", "optimizer.lr=0.01",
    ]  # fmt: skip
    procs = []
    for rank in range(2):
        env = {**os.environ, "OMP_NUM_THREADS": "1", "RANK": str(rank),
               "LOCAL_RANK": str(rank), "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1",
               "MASTER_PORT": port, **PROGRESS_ENV}  # fmt: skip
        procs.append(
            subprocess.Popen(
                [sys.executable, *args],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    try:
        output = Output(procs[0])
        output.wait_for(STEP, timeout=90)  # rank 0's progress bar: both are training
        procs[1].kill()
        start = time.monotonic()
        procs[0].wait(timeout=45)
        waited = time.monotonic() - start
        err = output.text()
    finally:
        for p in procs:
            p.kill()
    assert procs[0].returncode == 1
    assert "lost the other processes" in err and "Traceback" not in err
    assert waited < 35


@pytest.mark.slow
def test_only_rank_zero_writes_and_speaks_on_a_user_error(tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "file").write_text("mine")
    result = _cli("-m", "lrtrain", "fit", "--nproc", "2", "--out", str(tmp_path / "taken"),
                  *PROBLEM)  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.count("directory is not empty") == 1
    assert "Traceback" not in result.stderr
    assert (tmp_path / "taken" / "file").read_text() == "mine"


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_streamed_data_on_cuda_equals_in_memory_data() -> None:
    """Chunks regenerated on the CPU and moved to the GPU, against the data held on the GPU."""
    extra = ["device=cuda", "train.dtype=float64", "optimizer.lr=0.1", "data.n_samples=300000"]
    memory = _config(extra)
    streamed = _config([*extra, "data.stream=true"])
    expected = train(load_dataset(memory), memory)
    got = train(load_dataset(streamed), streamed)
    assert got.device.startswith("cuda")
    assert torch.allclose(got.final_theta, expected.final_theta, rtol=1e-10, atol=1e-10)
    assert torch.allclose(got.loss, expected.loss, rtol=1e-10, atol=0)


@pytest.mark.cuda
@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs 2 CUDA GPUs (NCCL)")
def test_two_gpus_with_nccl_equal_one(tmp_path: Path) -> None:
    extra = [*PROBLEM, "device=cuda", "train.dtype=float64", "optimizer.lr=0.1"]
    one = _cli("-m", "lrtrain", "fit", "--quiet", "--out", str(tmp_path / "one"), *extra)
    two = _cli("-m", "lrtrain", "fit", "--nproc", "2", "--out", str(tmp_path / "two"), *extra)
    assert one.returncode == 0 and two.returncode == 0, two.stderr
    a = json.loads((tmp_path / "one" / "summary.json").read_text())
    b = json.loads((tmp_path / "two" / "summary.json").read_text())
    assert b["distributed"] == {"world_size": 2, "backend": "nccl"}
    for key in ("w", "b"):
        assert b["final"][key] == pytest.approx(a["final"][key], rel=1e-10, abs=1e-12)


@pytest.mark.slow
def test_ctrl_c_under_nproc_saves_and_resume_writes_what_one_process_writes(
    tmp_path: Path,
) -> None:
    """`lrtrain fit --nproc 2` (torch.distributed.run's API, loopback rendezvous). One Ctrl-C
    reaches the launcher and every process (the terminal signals the whole process group): the
    processes stop together at a step, rank 0 saves, exit 130; then `--resume --nproc 2` ends
    where one uninterrupted process ends, and writes what it writes."""
    import signal

    run = tmp_path / "run"
    extra = [*PROBLEM, "train.dtype=float64", "optimizer.lr=auto", "optimizer.momentum=auto",
             "output.plots=[loss]"]  # fmt: skip
    launcher = subprocess.Popen(
        [sys.executable, "-m", "lrtrain", "fit", "--nproc", "2", "--out", str(run),
         *extra, "train.max_iter=1000000"],
        env={**os.environ, "OMP_NUM_THREADS": "1", **PROGRESS_ENV}, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        output = Output(launcher)
        output.wait_for(STEP, timeout=90)  # rank 0's progress bar: training is under way
        os.killpg(launcher.pid, signal.SIGINT)
        launcher.wait(timeout=60)
        err = output.text()
    finally:
        if launcher.poll() is None:
            os.killpg(launcher.pid, signal.SIGKILL)
    assert launcher.returncode == 130, err
    assert "continue with: lrtrain fit --resume" in err and "Traceback" not in err
    stopped = json.loads((run / "summary.json").read_text())
    assert stopped["status"] == "interrupted" and stopped["steps"] > 0
    total = f"train.max_iter={stopped['steps'] + 50}"
    resumed = _cli("-m", "lrtrain", "fit", "--resume", str(run), "--nproc", "2", total)
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.count("lrtrain fit") == 1  # rank 0 alone reports
    # the reference in this process (torch is imported already): one process, no figures
    api.fit(load_config(None, ["device=cpu", *extra, total]), out=tmp_path / "one", draw=False)
    a = json.loads((tmp_path / "one" / "summary.json").read_text())
    b = json.loads((run / "summary.json").read_text())
    assert b["distributed"] == {"world_size": 2, "backend": "gloo"}
    assert a["distributed"] == {"world_size": 1, "backend": None}
    assert b["steps"] == a["steps"] and b["status"] == "completed"
    for key in ("w", "b"):
        assert b["final"][key] == pytest.approx(a["final"][key], rel=1e-10, abs=1e-12)
    assert (run / "plots" / "loss.png").is_file()


def test_more_processes_than_gpus_is_refused(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(ConfigError, match=r"2 processes on CUDA need 2 GPUs .* use --nproc 1"):
        distributed.check_gpus(2)
    distributed.check_gpus(1)


def test_launcher_exit_code_is_the_one_a_process_chose() -> None:
    from types import SimpleNamespace as Failure

    from lrtrain.cli.launcher import exit_code

    # rank 1 ended first (2: rank 0 failed and said why); the launcher then SIGTERMed rank 0
    assert exit_code({0: Failure(exitcode=-15), 1: Failure(exitcode=2)}) == (2, None)
    assert exit_code({0: Failure(exitcode=3), 1: Failure(exitcode=-15)}) == (3, None)
    only_signals = exit_code({1: Failure(exitcode=-9)})  # an internal failure
    assert only_signals == (1, "a process was killed by signal 9")


def test_gloo_reduces_tensors_where_they_are() -> None:
    cpu = torch.ones(3)
    assert World(0, 2, 0, "gloo").on_wire(cpu) is cpu
    on_gpu = torch.empty(0, device="meta")  # not a CPU tensor: NCCL takes it as it is
    assert World(0, 2, 0, "nccl").on_wire(on_gpu) is on_gpu


@pytest.mark.cuda
@pytest.mark.skipif(
    not torch.cuda.is_available() or not torch.distributed.is_nccl_available(),
    reason="needs a CUDA GPU and NCCL",
)
def test_nccl_reduces_cpu_tensors_through_the_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """The range check's peaks and the float64 statistics are CPU tensors, which NCCL refuses:
    they travel through the process's GPU and come back into the caller's tensor."""
    import torch.distributed as dist

    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", str(_free_port()))
    dist.init_process_group("nccl", rank=0, world_size=1)
    try:
        world = World(0, 2, 0, "nccl")  # a group of one: the reductions leave values as they are
        peaks = torch.tensor([3.0, 5.0], dtype=torch.float64)
        assert world.on_wire(peaks).device.type == "cuda"
        assert world.all_max(peaks) is peaks and peaks.tolist() == [3.0, 5.0]
        total = torch.zeros(1, dtype=torch.float64) + 7
        assert world.all_sum(total).tolist() == [7.0]
    finally:
        dist.destroy_process_group()
