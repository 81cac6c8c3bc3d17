"""The lecture's MLP (engine.network) against torch's own modules: nn.Linear's initialisation,
nn.Sequential's forward pass, and training by a hand-written torch.optim loop per rate."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from lrtrain.config.schema import load_config
from lrtrain.data.distributed import SINGLE
from lrtrain.data.load import load_dataset
from lrtrain.engine.batches import Rows
from lrtrain.engine.family import build_model
from lrtrain.engine.network import MLP, parameter_count
from lrtrain.engine.train import train

MODULES = {"relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU, "sigmoid": nn.Sigmoid}


def reference(d: int, hidden: list[int], activation: str, seed: int, dtype=torch.float32):
    """The network a user writes: nn.Linear layers and activations, after manual_seed."""
    torch.manual_seed(seed)
    widths = [d, *hidden, 1]
    layers: list[nn.Module] = []
    for i in range(len(widths) - 1):
        layers.append(nn.Linear(widths[i], widths[i + 1], dtype=dtype))
        if i + 2 < len(widths):
            layers.append(MODULES[activation]())
    return nn.Sequential(*layers)


@pytest.mark.parametrize("activation", list(MODULES))
def test_init_and_forward_equal_nn_sequential(activation: str) -> None:
    net = MLP(2, [3, 4, 2], activation, replicas=3)
    net.init_torch_(7)
    ref = reference(2, [3, 4, 2], activation, 7)
    start = torch.cat([p.detach().reshape(-1) for p in ref.parameters()])
    for k in range(3):  # every replica starts where the seeded nn.Linear layers do, exactly
        assert torch.equal(net.flat[k], start)
    x = torch.randn(11, 2)
    out = net(x)
    assert out.shape == (11, 3)
    for k in range(3):  # one batched product a layer: nn.Linear's sums, rounded otherwise
        assert torch.allclose(out[:, k], ref(x)[:, 0], rtol=1e-6, atol=1e-7)
    assert torch.equal(net.sequential(1)(x), ref(x))
    assert net.n_params == parameter_count(2, [3, 4, 2]) == sum(p.numel() for p in ref.parameters())
    # the seed does not touch the caller's global generator
    torch.manual_seed(0)
    before = torch.rand(1)
    torch.manual_seed(0)
    net.init_torch_(123)
    assert torch.equal(torch.rand(1), before)


def test_own_batches_per_replica() -> None:
    net = MLP(1, [5], "tanh", replicas=2)
    net.init_normal_(0, std=0.5)
    x = torch.randn(2, 6, 1)  # replica k reads x[k]
    out = net(x)
    for k in range(2):
        assert torch.allclose(out[:, k], net.sequential(k)(x[k])[:, 0])


def hand_loop(config_overrides: list[str], lrs: list[float], optimizer: str, scheduler=None,
              **keys):  # fmt: skip
    """Each rate trained alone: nn.Sequential, MSE, loss.backward(), torch.optim's step (and
    the scheduler's, when given)."""
    config = load_config("lecture", ["model.kind=mlp", "data.function=sine", *config_overrides])
    dataset = load_dataset(config, SINGLE)
    losses = []
    for lr in lrs:
        net = reference(1, list(config.model.hidden), config.model.activation, config.seed)
        opt = getattr(torch.optim, optimizer)(net.parameters(), lr=lr, **keys)
        schedule = scheduler(opt) if scheduler is not None else None
        history = []
        for _ in range(config.train.max_iter):
            loss = torch.mean((net(dataset.x) - dataset.y) ** 2)
            history.append(loss.item())
            opt.zero_grad()
            loss.backward()
            opt.step()
            if schedule is not None:
                schedule.step()
        losses.append(history)
    return config, dataset, losses


@pytest.mark.parametrize(
    ("optimizer", "overrides", "keys", "scheduler"),
    [
        ("SGD", [], {}, None),
        ("SGD", ["optimizer.momentum=0.9"], {"momentum": 0.9}, None),
        ("SGD", ["optimizer.momentum=0.8", "optimizer.nesterov=true",
                 "optimizer.weight_decay=0.01"],
         {"momentum": 0.8, "nesterov": True, "weight_decay": 0.01}, None),
        ("Adam", ["optimizer.name=adam"], {}, None),
        ("AdamW", ["optimizer.name=adamw", "optimizer.weight_decay=0.1"],
         {"weight_decay": 0.1}, None),
        ("RMSprop", ["optimizer.name=rmsprop"], {}, None),
        ("Adagrad", ["optimizer.name=adagrad"], {}, None),
        ("SGD", ["optimizer.schedule={kind: step, step_size: 7, gamma: 0.5}"], {},
         lambda o: torch.optim.lr_scheduler.StepLR(o, 7, 0.5)),
        ("Adam", ["optimizer.name=adam", "optimizer.schedule={kind: exponential, gamma: 0.97}"],
         {}, lambda o: torch.optim.lr_scheduler.ExponentialLR(o, 0.97)),
    ],
)  # fmt: skip
def test_training_equals_a_hand_written_loop_per_rate(optimizer, overrides, keys, scheduler):
    lrs = [0.001, 0.01, 0.05]
    config, dataset, expected = hand_loop(["train.max_iter=40", *overrides], lrs, optimizer,
                                          scheduler, **keys)  # fmt: skip
    result = train(dataset, config, lrs=lrs)  # all rates at once, one batched pass a step
    for k in range(len(lrs)):
        got = result.replica_history(k)["loss"][:-1]
        assert torch.allclose(got, torch.tensor(expected[k], dtype=got.dtype), rtol=2e-5), k


def test_minibatch_steps_read_the_same_batches_as_the_linear_model() -> None:
    config = load_config(
        "lecture", ["model.kind=mlp", "train.batch_size=10", "train.max_iter=30", "seed=3"]
    )
    dataset = load_dataset(config, SINGLE)
    result = train(dataset, config)
    # the same batches by hand: lrtrain's own Batches (tested against the theory elsewhere)
    from lrtrain.engine.batches import Batches

    batches = Batches(dataset.n, 10, config.seed, torch.device("cpu"))
    net = reference(1, [3, 4, 2], "relu", config.seed)
    opt = torch.optim.SGD(net.parameters(), lr=config.optimizer.lr_value)
    for t in range(config.train.max_iter):
        batch = batches.batch(t, dataset.x, dataset.y)
        loss = torch.mean((net(batch.x) - batch.y) ** 2)
        assert abs(loss.item() - float(result.loss[t, 0])) <= 1e-5 * max(1.0, loss.item())
        opt.zero_grad()
        loss.backward()
        opt.step()


def test_loss_at_any_theta_and_the_family_builder() -> None:
    config = load_config("lecture", ["model.kind=mlp", "model.activation=gelu"])
    model = build_model(config, 1, 4, torch.float64, torch.device("cpu"))
    assert isinstance(model, MLP) and model.replicas == 4
    x = torch.linspace(0, 1, 9, dtype=torch.float64).unsqueeze(1)
    y = torch.sin(x)
    theta = torch.randn(5, model.n_params, dtype=torch.float64)
    losses = model.loss_at(theta, Rows(x, y, 9))
    for k in range(5):
        single = MLP(1, [3, 4, 2], "gelu", dtype=torch.float64)
        with torch.no_grad():
            single.flat.copy_(theta[k : k + 1])
        want = torch.mean((single.sequential()(x) - y) ** 2)
        assert torch.allclose(losses[k], want, rtol=1e-12)


@pytest.mark.parametrize(
    "extra",
    [
        ["train.sharpness_every=10"],
        ["optimizer.momentum=0.9", "train.batch_size=16", "train.log_every=3"],
        ["optimizer.name=adam", "train.sharpness_every=7"],
    ],
)
def test_interrupted_then_resumed_equals_uninterrupted_bit_for_bit(extra: list[str]) -> None:
    config = load_config("mlp", ["train.max_iter=150", *extra])
    dataset = load_dataset(config, SINGLE)
    whole = train(dataset, config)
    calls = iter(range(10**6))
    half = train(dataset, config, should_stop=lambda: next(calls) >= 61)
    assert half.statuses == ["interrupted"] and half.stop_steps == [61]
    resumed = train(dataset, config, resume=half.engine_state())
    assert resumed.stop_steps == whole.stop_steps
    assert torch.equal(resumed.final_theta, whole.final_theta)
    assert torch.equal(resumed.loss, whole.loss) and torch.equal(resumed.grad_norm, whole.grad_norm)
    assert resumed.sharpness_steps == whole.sharpness_steps
    assert resumed.sharpness is not None and whole.sharpness is not None
    assert np.array_equal(resumed.sharpness, whole.sharpness, equal_nan=True)
    assert resumed.top_projection is not None and whole.top_projection is not None
    assert np.array_equal(resumed.top_projection, whole.top_projection, equal_nan=True)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_equals_cpu_with_its_sharpness() -> None:
    """A network's sweep and its measurements on the GPU end where the CPU's do."""
    lrs = [0.01, 0.1]
    runs = {}
    for device in ("cpu", "cuda"):
        extra = ["train.max_iter=100", "train.dtype=float64", "train.sharpness_every=10"]
        config = load_config("mlp", [f"device={device}", *extra])
        runs[device] = train(load_dataset(config, SINGLE), config, lrs=lrs)
    cpu, gpu = runs["cpu"], runs["cuda"]
    assert torch.allclose(gpu.final_theta, cpu.final_theta, rtol=1e-9, atol=1e-12)
    assert gpu.sharpness is not None and cpu.sharpness is not None
    assert np.allclose(gpu.sharpness[:, :, 0], cpu.sharpness[:, :, 0], rtol=1e-8)
