"""Where and in what precision training runs: the config's ``device`` and ``train.dtype`` as
torch objects, with a user error when CUDA is asked for but absent."""

from __future__ import annotations

import torch

from lrtrain.data.distributed import World
from lrtrain.errors import DeviceError


def resolve_device(spec: str) -> torch.device:
    """``auto`` → CUDA when available, else CPU; CUDA asked for but absent is a user error."""
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise DeviceError(
            f"device: '{spec}' was asked for but CUDA is not available on this machine "
            "(no GPU, or a CPU-only PyTorch); use device=cpu or device=auto"
        )
    device = torch.device(spec)
    count = torch.cuda.device_count()
    if device.index is not None and device.index >= count:
        raise DeviceError(
            f"device: '{spec}' does not exist; this machine has {count} CUDA device(s) "
            f"(cuda:0 … cuda:{count - 1})"
        )
    return device


def torch_dtype(name: str) -> torch.dtype:
    return torch.float64 if name == "float64" else torch.float32


def process_device(spec: str, world: World) -> torch.device:
    """The config's device; in a distributed run on CUDA, this process's GPU (LOCAL_RANK)."""
    device = resolve_device(spec)
    if world.distributed and device.type == "cuda":
        return torch.device("cuda", world.local_rank)
    return device
