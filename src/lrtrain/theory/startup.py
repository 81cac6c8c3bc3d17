"""Start-up costs lrtrain does not need to pay.

PyTorch imports ``torch._dynamo`` — 1.5 to 3 s on a small machine, more than the whole lesson
takes to train — the first time an optimizer is built or stepped, only to tell the compiler what
not to compile. lrtrain never compiles, so:

- a few ``torch.optim.Optimizer`` methods (``add_param_group``, ``state_dict``,
  ``load_state_dict``, ``zero_grad``) are wrapped in ``torch._compile._disable_dynamo``, which
  imports dynamo on the first call. While lrtrain trains, :func:`without_dynamo_import` fills the
  per-function cache that wrapper consults (``fn.__dynamo_disable``) with the function itself,
  and empties it afterwards, so code that compiles later in the same process gets PyTorch's
  behaviour unchanged;
- ``step`` is wrapped in ``_use_grad_for_differentiable``, which imports dynamo on every call to
  place graph breaks (no-ops when nothing compiles) around the real step run with gradients off.
  :func:`stepper` calls the real step under ``torch.no_grad()`` instead — the same arithmetic —
  unless someone registered optimizer step hooks, which only the wrapped step runs.

Both are guarded: where a PyTorch version wraps these methods differently (or ``torch._dynamo``
is already imported, so there is nothing to save), lrtrain calls them as usual and works as
before, only slower to start, without a word.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, ParamSpec, TypeVar

CACHE = "__dynamo_disable"  # the attribute _disable_dynamo's wrapper caches its result in

P = ParamSpec("P")
R = TypeVar("R")


def never_imports_dynamo(function: Callable[P, R]) -> Callable[P, R]:
    """Run ``function`` inside :func:`without_dynamo_import` (for the optimizer's classes)."""

    @functools.wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with without_dynamo_import():
            return function(*args, **kwargs)

    return wrapper


@contextmanager
def without_dynamo_import(*classes: type) -> Iterator[None]:
    """While inside, the ``_disable_dynamo``-wrapped methods of ``classes`` and their bases
    (default: ``torch.optim.Optimizer``) call straight through instead of importing
    ``torch._dynamo``."""
    if not classes:
        import torch

        classes = (torch.optim.Optimizer,)
    patched = _patch(classes)
    try:
        yield
    finally:
        for original in patched:
            if getattr(original, CACHE, None) is original:
                delattr(original, CACHE)


def _patch(classes: tuple[type, ...]) -> list[Any]:
    import sys

    if "torch._dynamo" in sys.modules:
        return []  # already imported: nothing to save
    wrapper_code = _wrapper_code()
    if wrapper_code is None:
        return []
    patched = []
    for owner in {base for cls in classes for base in cls.__mro__}:
        for value in vars(owner).values():
            function = getattr(value, "__func__", value)
            original = getattr(function, "__wrapped__", None)
            if getattr(function, "__code__", None) is not wrapper_code or original is None:
                continue
            if getattr(original, CACHE, None) is None:
                setattr(original, CACHE, original)
                patched.append(original)
    return patched


@functools.cache
def _wrapper_code() -> Any:
    """The code object of ``_disable_dynamo``'s wrapper, or None where PyTorch has none."""
    try:
        from torch import _compile

        probe = _compile._disable_dynamo(_probe)
    except (ImportError, AttributeError, TypeError):
        return None
    code = getattr(probe, "__code__", None)
    return code if code is not None and CACHE in code.co_names + code.co_consts else None


def _probe() -> None:
    """A function to wrap, to find the wrapper's code."""


def stepper(optimizer: Any) -> Callable[[], None]:
    """A function taking ``optimizer.step()`` without importing ``torch._dynamo``, decided
    once: a training loop calls it every step, and the step hooks the optimizer has when the
    loop starts are the ones it honours. Call it with gradients off (``torch.no_grad()``, as
    ``train``'s loop runs), where the real step runs."""
    direct = _direct_step(optimizer.__class__)
    if direct is None or _has_step_hooks(optimizer):
        return optimizer.step
    return functools.partial(direct, optimizer)


@functools.cache
def _direct_step(cls: type) -> Callable[[Any], Any] | None:
    """The optimizer class's own step function inside PyTorch's wrappers, or None."""
    try:
        from torch.optim import optimizer as optim_module

        use_grad = optim_module._use_grad_for_differentiable(_probe).__code__
    except (ImportError, AttributeError, TypeError):
        return None
    function: Any = getattr(cls, "step", None)
    for _ in range(4):  # profile_hook_step(_use_grad(step)) at most, in PyTorch 2.x
        if function is None:
            return None
        if getattr(function, "__code__", None) is use_grad:
            inner = getattr(function, "__wrapped__", None)
            return inner if callable(inner) else None
        function = getattr(function, "__wrapped__", None)
    return None


def _has_step_hooks(optimizer: Any) -> bool:
    from torch.optim import optimizer as optim_module

    hooks = (
        getattr(optimizer, "_optimizer_step_pre_hooks", None),
        getattr(optimizer, "_optimizer_step_post_hooks", None),
        getattr(optim_module, "_global_optimizer_pre_hooks", None),
        getattr(optim_module, "_global_optimizer_post_hooks", None),
    )
    return any(h is None or len(h) > 0 for h in hooks)
