"""The device a config asks for, and a clear error when it is absent."""

from __future__ import annotations

import pytest
import torch

from lrtrain.data.devices import resolve_device
from lrtrain.errors import DeviceError


def test_cuda_asked_for_but_absent() -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    for spec in ("cuda", "cuda:0", "cuda:7"):
        with pytest.raises(DeviceError, match="CUDA is not available"):
            resolve_device(spec)
    assert resolve_device("auto").type == "cpu"
