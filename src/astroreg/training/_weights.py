"""Per-sample loss weights for an imbalanced regression target.

Inverse frequency in bins of the label, and label-distribution smoothing (LDS) after
Yang et al. 2021 (ICML, "Delving into Deep Imbalanced Regression"): the empirical label
density (bin counts) is convolved with a symmetric kernel and each object is weighted by
the inverse of the smoothed density of its bin.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.ndimage import convolve1d

WeightKind = Literal["none", "inverse_frequency", "lds"]
Kernel = Literal["gaussian", "triangular", "laplace"]


def lds_kernel(kernel: Kernel = "gaussian", size: int = 5, sigma: float = 2.0) -> NDArray[np.float64]:
    """The symmetric LDS kernel window, scaled to a peak of 1 (as Yang et al.'s code).

    Bin offsets ``k = -(size // 2) ... size // 2``: gaussian ``exp(-k^2 / (2 sigma^2))``,
    triangular ``1 - |k| / (size // 2 + 1)`` (scipy's ``triang``), laplace ``exp(-|k| / sigma)``.

    Parameters
    ----------
    kernel : {"gaussian", "triangular", "laplace"}
    size : int
        Window length in bins (odd).
    sigma : float
        Width in bins (gaussian: standard deviation; laplace: scale); unused by triangular.

    Returns
    -------
    numpy.ndarray of shape (size,)
    """
    if size < 1 or size % 2 == 0:
        raise ValueError(f"kernel size must be a positive odd number of bins, got {size}")
    # Written out rather than filtering a delta as Yang et al.'s code does: scipy's reflecting
    # boundary on a 5-bin delta bends the Gaussian's tails.
    k = np.arange(-(size // 2), size // 2 + 1, dtype=np.float64)
    if kernel == "gaussian":
        window = np.exp(-0.5 * (k / sigma) ** 2)
    elif kernel == "triangular":
        window = 1.0 - np.abs(k) / (size // 2 + 1)
    elif kernel == "laplace":
        window = np.exp(-np.abs(k) / sigma)
    else:
        raise ValueError(f"unknown LDS kernel {kernel!r}; allowed: gaussian, triangular, laplace")
    return window / window.max()


def label_weights(
    y: ArrayLike,
    *,
    kind: WeightKind = "lds",
    bins: int = 50,
    kernel: Kernel = "gaussian",
    kernel_size: int = 5,
    sigma: float = 2.0,
    power: float = 1.0,
    clip: tuple[float, float] | None = None,
    apply_to: ArrayLike | None = None,
) -> NDArray[np.float64]:
    """Per-object weights that make rare label values count more in the loss.

    ``bins`` equal-width bins span the finite labels; ``n_b`` is the count of bin ``b``
    (``inverse_frequency``) or the count convolved with :func:`lds_kernel` (``lds``,
    zero-padded at the ends). Object ``i`` in bin ``b`` gets ``(1 / n_b) ** power``; the
    weights are then scaled to mean 1 over the objects with a label, and clipped to
    ``clip`` if given. Objects without a label (NaN) get weight 1 (they add nothing to the
    loss anyway).

    With ``apply_to`` (the validation labels, say), the weighting fitted on ``y`` (its
    bins, density and scale) is applied to those labels instead: a label outside ``y``'s
    range takes the end bin's weight, and one in a bin without labels of ``y`` (zero
    density) the weight of the rarest label of ``y``.

    Parameters
    ----------
    y : array-like of shape (n_objects,)
        Labels (any unit; an affine rescaling gives the same weights).
    kind : {"none", "inverse_frequency", "lds"}
    bins : int
        Number of equal-width label bins (>= 2).
    kernel, kernel_size, sigma : see :func:`lds_kernel`
        LDS only.
    power : float
        1: inverse density; 0.5: inverse square root.
    clip : (float, float), optional
        Bounds applied after scaling to mean 1.
    apply_to : array-like of shape (n_other,), optional
        Labels to weigh with the weighting fitted on ``y``.

    Returns
    -------
    numpy.ndarray of shape (n_objects,), or (n_other,) with ``apply_to``

    Examples
    --------
    >>> w = label_weights([0.0, 0.0, 0.0, 1.0], kind="inverse_frequency", bins=2)
    >>> (w / w[0]).tolist()
    [1.0, 1.0, 1.0, 3.0]
    """
    y = np.asarray(y, dtype=np.float64)
    target = y if apply_to is None else np.asarray(apply_to, dtype=np.float64)
    if y.ndim != 1 or target.ndim != 1:
        raise ValueError(f"labels must be 1-D, got shape {y.shape if y.ndim != 1 else target.shape}")
    w = np.ones(target.size)
    if kind == "none":
        return w
    if kind not in ("inverse_frequency", "lds"):
        raise ValueError(f"unknown sample weight kind {kind!r}; allowed: none, inverse_frequency, lds")
    if bins < 2:
        raise ValueError(f"bins must be >= 2, got {bins}")
    ok = np.isfinite(y)
    if not ok.any():
        raise ValueError("no finite label to compute sample weights from; every training label is missing")
    counts, edges = np.histogram(y[ok], bins=bins)
    density = counts.astype(np.float64)
    if kind == "lds":
        density = convolve1d(density, lds_kernel(kernel, kernel_size, sigma), mode="constant")

    def raw(labels: NDArray[np.float64]) -> NDArray[np.float64]:
        index = np.clip(np.searchsorted(edges, labels, side="right") - 1, 0, bins - 1)
        with np.errstate(divide="ignore"):  # 0 only in a bin that no label of y lies in
            return density[index] ** -power

    fitted = raw(y[ok])
    has = np.isfinite(target)
    # An applied label in a bin without training labels weighs as the rarest training label.
    applied = fitted if apply_to is None else np.minimum(raw(target[has]), fitted.max())
    w[has] = applied / fitted.mean()
    if clip is not None:
        w[has] = np.clip(w[has], clip[0], clip[1])
    return w


def weights_summary(w: ArrayLike) -> dict[str, float]:
    """``min, p01, median, p99, max, mean`` of the weights and the effective sample fraction.

    ``effective_fraction = (sum w)^2 / (n sum w^2)``: the Kish effective sample size over
    ``n`` (1 for equal weights; small when a few objects carry the loss).
    """
    w = np.asarray(w, dtype=np.float64)
    q = np.percentile(w, [0, 1, 50, 99, 100])
    return {"min": float(q[0]), "p01": float(q[1]), "median": float(q[2]), "p99": float(q[3]),
            "max": float(q[4]), "mean": float(w.mean()),
            "effective_fraction": float(w.sum() ** 2 / (w.size * np.sum(w**2)))}
