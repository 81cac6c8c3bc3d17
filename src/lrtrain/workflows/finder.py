"""The learning-rate range tests people use, as published, on arrays: the rate ramps, the loss
smoothing and early stop, and the suggestions, on numpy arrays (Lightning's suggestion through
``torch.gradient``, as Lightning computes it): ``find_lr`` runs the ramps through lrtrain's
training loop and hands the recorded losses here. Checked against lightning 2.6.6's and
fastai 2.8.12's own ``lr_find`` on the lesson (docs/mathematics.md).

fastai (``fastai/callback/schedule.py``: ``LRFinder``, ``lr_find``, ``valley``, ``slide``,
``minimum``, ``steep``; the ``Recorder``'s ``AvgSmoothLoss``): ``start_lr=1e-7``, ``end_lr=10``,
``num_it=100``; batch i runs at start·(end/start)^(i/num_it); the recorded loss is the debiased
moving average (β = 0.98) ``val/(1 − β^count)``; the test stops after the batch whose smoothed
loss exceeds 4 × the best so far; suggestions read ``lrs[num_it//10:-5]``.

PyTorch Lightning (``lightning/pytorch/tuner/lr_finder.py``: ``_LRCallback``,
``_ExponentialLR``, ``_LRFinder.suggestion``): ``min_lr=1e-8``, ``max_lr=1``,
``num_training=100``; batch 0 runs at min_lr, batch i ≥ 1 at min·(max/min)^((i+1)/num_training);
the smoothed loss divides by 1 − β^(global_step + 1) with the step already counted (so batch i
by 1 − β^(i+2)); it stops after a batch (from the second on) whose smoothed loss exceeds 4 × the
best; the suggestion is the most negative ``torch.gradient`` of the finite losses from index 10
to the last but one with respect to the rates (spacing = the rates, since Lightning's #14248).

torch-lr-finder (``torch_lr_finder/lr_finder.py``: ``LRFinder.range_test``, ``ExponentialLR``,
``plot(suggest_lr=True)``), version 0.2.2: from the optimizer's rate (lrtrain starts it at 1e-7)
to ``end_lr=10`` in ``num_iter=100`` batches, batch i at start·(end/start)^(i/(num_iter − 1));
the first loss as it is, then smoothed ``0.05·loss + 0.95·previous``; it stops after the batch
whose smoothed loss exceeds 5 × the best; the suggestion is the most negative ``np.gradient``
(unit spacing) of the losses from index 10 to the sixth from last.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

BETA = 0.98  # fastai's and Lightning's smoothing
DIVERGE = 4.0  # both stop once the smoothed loss exceeds this × the best
SMOOTH_F, DIVERGE_TH = 0.05, 5.0  # torch-lr-finder's smoothing and stop


@dataclass(frozen=True)
class RangeTest:
    """One finder's published settings."""

    name: str  # "fastai", "lightning" or "torch-lr-finder"
    start: float
    end: float
    steps: int

    def rates(self) -> np.ndarray:
        """The rate of each batch of the ramp, computed as the libraries do (Python floats:
        their last bit is theirs)."""
        ratio, n = self.end / self.start, self.steps
        if self.name == "fastai":  # SchedExp: start · (end/start)^(i/num_it)
            return np.array([self.start * ratio ** (i / n) for i in range(n)])
        if self.name == TORCH_LR_FINDER_NAME:  # its ExponentialLR: i/(num_iter − 1)
            return np.array([self.start * ratio ** (i / (n - 1)) for i in range(n)])
        # _ExponentialLR: the base rate first, then base · (end/base)^((i + 1)/num_training)
        return np.array([self.start] + [self.start * ratio ** ((i + 1) / n) for i in range(1, n)])


TORCH_LR_FINDER_NAME = "torch-lr-finder"
FASTAI = RangeTest("fastai", 1e-7, 10.0, 100)
LIGHTNING = RangeTest("lightning", 1e-8, 1.0, 100)
TORCH_LR_FINDER = RangeTest(TORCH_LR_FINDER_NAME, 1e-7, 10.0, 100)
TESTS = (FASTAI, LIGHTNING, TORCH_LR_FINDER)  # in the order find-lr runs and files them


def recorded(test: RangeTest, losses: np.ndarray, dtype: str = "float32") -> np.ndarray:
    """The smoothed losses the finder records, up to and including the batch it stops after
    (``losses``: each batch's loss, in order, as trained in ``dtype``). fastai smooths in
    tensors of the loss's dtype (``torch.lerp``, its ``AvgSmoothLoss``), Lightning in Python
    floats: each is reproduced in its own arithmetic."""
    import torch

    if test.name == TORCH_LR_FINDER_NAME:
        return _torch_lr_finder_recorded(losses)
    out = []
    best = np.inf if test.name == "fastai" else 0.0
    average: Any = torch.tensor(0.0, dtype=getattr(torch, dtype)) if test.name == "fastai" else 0.0
    for i, loss in enumerate(np.asarray(losses, dtype=np.float64)):
        if test.name == "fastai":
            average = torch.lerp(torch.tensor(loss, dtype=average.dtype), average, BETA)
            smooth = float(average / (1 - BETA ** (i + 1)))
            out.append(smooth)
            best = min(best, smooth)
            if smooth > DIVERGE * best or not np.isfinite(smooth):
                break
        else:
            average = BETA * average + (1 - BETA) * loss
            smooth = average / (1 - BETA ** (i + 2))
            stop = i + 1 > 1 and smooth > DIVERGE * best
            if smooth < best or i == 0:
                best = smooth
            out.append(smooth)
            if stop or not np.isfinite(smooth):
                break
    return np.asarray(out)


def _torch_lr_finder_recorded(losses: np.ndarray) -> np.ndarray:
    """torch-lr-finder's history: the first loss as it is, then 0.05·loss + 0.95·previous (in
    Python floats, from ``loss.item()``), stopping after the batch above 5 × the best."""
    out: list[float] = []
    best = 0.0
    for i, loss in enumerate(float(v) for v in np.asarray(losses, dtype=np.float64)):
        if i == 0:
            best = loss
        else:
            loss = SMOOTH_F * loss + (1 - SMOOTH_F) * out[-1]
            best = min(best, loss)
        out.append(loss)
        if loss > DIVERGE_TH * best:
            break
    return np.asarray(out)


def torch_lr_finder_suggestion(lrs: np.ndarray, losses: np.ndarray) -> dict[str, float]:
    """torch-lr-finder's suggestion (``plot(suggest_lr=True)``): the steepest point of
    ``np.gradient`` at unit spacing over the losses from index 10 to the sixth from last (it
    needs 17 points; a NaN's gradient is where ``argmin`` stops, as in the library)."""
    skip_start, skip_end = 10, 5
    if len(losses) < skip_start + skip_end + 2:
        return {}
    window = np.asarray(losses, dtype=np.float64)[skip_start:-skip_end]
    rates = np.asarray(lrs)[skip_start:-skip_end]
    return {"torch_lr_finder": float(rates[int(np.gradient(window).argmin())])}


def fastai_suggestions(lrs: np.ndarray, losses: np.ndarray) -> dict[str, float]:
    """fastai's four suggestions on the recorded curve, trimmed as ``lr_find`` does
    (``[num_it//10:-5]``, then up to the first NaN) and in its arithmetic: float32, as its
    ``tensor()`` makes the rates and the losses are."""
    num_it = FASTAI.steps
    lrs = np.asarray(lrs, dtype=np.float32)[num_it // 10 : -5]
    losses = np.asarray(losses, dtype=np.float32)[num_it // 10 : -5]
    nan = np.flatnonzero(np.isnan(losses))
    if len(nan):
        lrs, losses = lrs[: nan[0]], losses[: nan[0]]
    if len(losses) < 2:
        return {}
    return {
        "fastai_valley": _valley(lrs, losses),
        "fastai_slide": _slide(lrs, losses),
        "fastai_minimum": float(lrs[int(np.argmin(losses))]) / 10,
        "fastai_steep": _steep(lrs, losses),
    }


def _valley(lrs: np.ndarray, losses: np.ndarray) -> float:
    """The longest decreasing run (a longest decreasing subsequence ending at each point),
    two thirds of the way… exactly as published: start + ⌊len/3⌋ + ⌊len/6⌋."""
    n = len(losses)
    max_start = max_end = 0
    lds = [1] * n
    for i in range(1, n):
        for j in range(i):
            if losses[i] < losses[j] and lds[i] < lds[j] + 1:
                lds[i] = lds[j] + 1
            if lds[max_end] < lds[i]:
                max_end = i
                max_start = max_end - lds[max_end]
    sections = (max_end - max_start) / 3
    return float(lrs[max_start + int(sections) + int(sections / 2)])


def _slide(lrs: np.ndarray, losses: np.ndarray, lr_diff: int = 15, thresh: float = 0.005) -> float:
    """From the end, slide a window of ``lr_diff`` until the loss gradients at its two ends
    differ by at most ``thresh``; the window's left rate."""
    grad = np.gradient(losses)
    r_idx, l_idx = -1, -1 - lr_diff
    local_min_lr = lrs[l_idx] if len(lrs) > lr_diff else lrs[0]
    while l_idx >= -len(losses) and abs(grad[r_idx] - grad[l_idx]) > thresh:
        local_min_lr = lrs[l_idx]
        r_idx -= 1
        l_idx -= 1
    return float(local_min_lr)


def _steep(lrs: np.ndarray, losses: np.ndarray) -> float:
    """Where the loss falls fastest against log lr (forward differences), with torch's float32
    logarithm as fastai takes it."""
    import torch

    rates, values = torch.from_numpy(lrs), torch.from_numpy(losses)
    grads = (values[1:] - values[:-1]) / (rates[1:].log() - rates[:-1].log())
    return float(rates[int(torch.argmin(grads))])


def lightning_suggestion(lrs: np.ndarray, losses: np.ndarray) -> dict[str, float]:
    """Lightning's one suggestion (``LRFinder.suggestion``, lightning 2.6): the rate where the
    recorded loss falls fastest *with respect to the rate itself* — ``torch.gradient`` with the
    rates as the coordinates (non-uniform central differences), over the finite losses from
    index 10 to the last but one, in float32 tensors as Lightning makes them from its lists.

    Lightning's versions before its PR #14248 took the gradient by index (unit spacing); on the
    lesson that rule suggests 0.00398 where lightning 2.6.6's own ``Tuner.lr_find`` suggests
    0.000209 (docs/mathematics.md)."""
    import torch  # as Lightning computes it: its float32 rounding decides near-ties alike

    skip_begin, skip_end = 10, 1
    window = torch.tensor([float(v) for v in np.asarray(losses)[skip_begin:-skip_end]])
    rates = torch.tensor([float(v) for v in np.asarray(lrs)[skip_begin:-skip_end]])
    finite = torch.isfinite(window)
    if int(finite.sum()) < 2:
        return {}
    slopes = torch.gradient(window[finite], spacing=[rates[finite]])[0]
    rows = torch.arange(len(losses))[skip_begin:-skip_end][finite]
    return {"lightning": float(np.asarray(lrs)[int(rows[int(torch.argmin(slopes))])])}
