"""The exact loss surface of linear least squares, from the quadratic form alone (numpy only).

For the mean-squared error, loss(θ) = loss* + ½ (θ − θ*)ᵀ H (θ − θ*) exactly, with θ* the
least-squares optimum and H the (constant) Hessian. Evaluating it on a grid costs O(d²) per point,
whatever the number of rows, and has no cancellation (both terms are ≥ 0). ``analysis`` (with
torch) and ``plots`` (without) share this one implementation.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

ArrayLike = Sequence[float] | np.ndarray


def plane_loss(
    s: np.ndarray,
    t: np.ndarray,
    origin: ArrayLike,
    e1: ArrayLike,
    e2: ArrayLike,
    theta_star: ArrayLike,
    loss_star: float,
    hessian: np.ndarray | Sequence[Sequence[float]],
) -> np.ndarray:
    """Loss at θ = origin + s·e1 + t·e2 for arrays ``s``, ``t`` of the same shape."""
    h = np.asarray(hessian, dtype=np.float64)
    e1 = np.asarray(e1, dtype=np.float64)
    e2 = np.asarray(e2, dtype=np.float64)
    delta0 = np.asarray(origin, dtype=np.float64) - np.asarray(theta_star, dtype=np.float64)
    s = np.asarray(s, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)
    q = (
        delta0 @ h @ delta0
        + 2 * s * (e1 @ h @ delta0)
        + 2 * t * (e2 @ h @ delta0)
        + s * s * (e1 @ h @ e1)
        + 2 * s * t * (e1 @ h @ e2)
        + t * t * (e2 @ h @ e2)
    )
    # q is ≥ 0 in exact arithmetic; clip the last-bit rounding so log-scale contours stay valid.
    return loss_star + 0.5 * np.maximum(q, 0.0)


def plane_axes(
    theta_star: ArrayLike,
    hessian: np.ndarray | Sequence[Sequence[float]],
    eigenvectors: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[str, str]]:
    """The plane the contour plot draws: (origin, e1, e2, axis labels).

    One feature: the (w, b) plane itself. Several: the slice through θ* spanned by H's top and
    bottom eigenvectors, the directions of fastest and slowest descent (``eigenvectors``: H's,
    as columns by ascending eigenvalue, when the run saved them: no eigendecomposition here).
    """
    theta_star = np.asarray(theta_star, dtype=np.float64)
    dim = theta_star.shape[0]
    if dim == 2:
        return np.zeros(2), np.array([1.0, 0.0]), np.array([0.0, 1.0]), ("w", "b")
    vectors = eigenvectors
    if vectors is None:
        _, vectors = np.linalg.eigh(np.asarray(hessian, dtype=np.float64))
    return (
        theta_star,
        vectors[:, -1],
        vectors[:, 0],
        ("u: along top eigenvector (λ_max)", "v: along bottom eigenvector (λ_min)"),
    )


def project(
    thetas: np.ndarray, origin: np.ndarray, e1: np.ndarray, e2: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates (s, t) of parameter vectors [T, d+1] in the plane (origin, e1, e2)."""
    delta = np.asarray(thetas, dtype=np.float64) - origin
    return delta @ e1, delta @ e2
