"""Start-up: lrtrain trains without importing torch._dynamo, with results unchanged, and falls
back to PyTorch's own calls wherever the mechanism does not apply."""

from __future__ import annotations

import os
import subprocess
import sys
from contextlib import nullcontext
from pathlib import Path

import pytest
import torch

from lrtrain.config.schema import load_config
from lrtrain.data.load import load_dataset
from lrtrain.engine.train import train
from lrtrain.theory import startup

ROOT = Path(__file__).parents[1]


def _python(code: str) -> str:
    path = os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": path, "MPLBACKEND": "Agg"},
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_fit_sweep_and_resume_never_import_dynamo(tmp_path: Path) -> None:
    out = _python(
        "import sys\n"
        "from lrtrain.cli.app import app  # main() would end the process\n"
        "from lrtrain.api import sweep_lr\n"
        "from lrtrain.config.schema import load_config\n"
        f"sys.argv = ['lrtrain', 'fit', '--quiet', '--device', 'cpu', '--out', r'{tmp_path}/f',"
        " 'optimizer.momentum=0.5', 'train.max_iter=20', 'output.plots=[]']\n"
        "try:\n    app()\nexcept SystemExit as stop:\n    assert not stop.code, stop.code\n"
        f"sweep_lr(load_config(None, ['device=cpu', 'output.plots=[]']), out=r'{tmp_path}/s')\n"
        "cfg = load_config(None, ['device=cpu', 'output.plots=[]', 'optimizer.name=adam',\n"
        "                         'optimizer.schedule={kind: cosine}'])\n"
        f"sweep_lr(cfg, out=r'{tmp_path}/a')  # an adaptive optimizer under a schedule\n"
        "print('torch._dynamo' in sys.modules)\n"
    )
    assert out.strip() == "False"


SETTINGS = [
    [],
    ["optimizer.momentum=0.9"],
    ["optimizer.momentum=0.5", "optimizer.nesterov=true", "optimizer.weight_decay=0.1"],
    ["train.batch_size=16", "optimizer.momentum=0.5", "train.dtype=float64"],
]


@pytest.mark.parametrize("extra", SETTINGS)
def test_results_are_those_of_plain_optimizer_steps(monkeypatch, extra: list[str]) -> None:
    cfg = load_config(None, ["device=cpu", "train.max_iter=60", "optimizer.lr=0.02", *extra])
    dataset = load_dataset(cfg)
    ours = train(dataset, cfg, lrs=[0.005, 0.02])
    monkeypatch.setattr(startup, "stepper", lambda optimizer: optimizer.step)
    monkeypatch.setattr(startup, "without_dynamo_import", lambda *classes: nullcontext())
    plain = train(dataset, cfg, lrs=[0.005, 0.02])
    assert torch.equal(ours.theta, plain.theta) and torch.equal(ours.loss, plain.loss)
    assert torch.equal(ours.final_theta, plain.final_theta)


def test_the_cache_is_emptied_after_training() -> None:
    cfg = load_config(None, ["device=cpu", "train.max_iter=3"])
    train(load_dataset(cfg), cfg)
    for name in ("add_param_group", "state_dict", "load_state_dict", "zero_grad"):
        original = getattr(torch.optim.Optimizer, name).__wrapped__
        # ours (the function itself) is gone; PyTorch's own (once dynamo is loaded) may be there
        assert getattr(original, startup.CACHE, None) is not original, name


def test_step_hooks_are_honoured(monkeypatch) -> None:
    called = []
    model = torch.nn.Linear(1, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    optimizer.register_step_post_hook(lambda *args: called.append(True))
    model(torch.ones(1, 1)).sum().backward()
    startup.stepper(optimizer)()
    assert called == [True]  # with a hook, the wrapped step runs (and runs the hook)


def test_where_the_mechanism_does_not_apply_training_still_works(monkeypatch) -> None:
    from torch.optim import optimizer as optim_module

    monkeypatch.delattr(optim_module, "_use_grad_for_differentiable")
    monkeypatch.setattr(startup, "_wrapper_code", lambda: None)
    startup._direct_step.cache_clear()
    try:
        assert startup._direct_step(torch.optim.SGD) is None
        cfg = load_config(None, ["device=cpu", "train.max_iter=30", "train.dtype=float64"])
        result = train(load_dataset(cfg), cfg)
        assert result.statuses == ["completed"]
        assert float(result.final_loss[0]) < float(result.loss[0, 0])
    finally:
        monkeypatch.undo()
        startup._direct_step.cache_clear()
