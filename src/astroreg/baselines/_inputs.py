"""Shared pieces of the baselines: the recipe's preprocessed inputs, model sizes and prediction speed."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sklearn.base import BaseEstimator
from sklearn.multioutput import MultiOutputRegressor
from sklearn.pipeline import Pipeline
from torch import nn

from astroreg.data import Dataset
from astroreg.preprocess import RecipePreprocessor

TIMING_REPEATS = 3
"""Timed prediction passes per model; the fastest counts."""


class ModelInputs:
    """The recipe's preprocessed network inputs of some rows, read once and shared.

    Classical baselines with ``inputs: model`` fit on these flattened to 2-D (e.g. the
    resampled, standardised spectra), and the prediction speed of every model is timed
    on them. Arrays are float32, read chunk by chunk with
    :func:`astroreg.training.preprocess_rows`, and cached per set of rows.

    Parameters
    ----------
    preprocessor : RecipePreprocessor
        Fitted on the training split.
    dataset : Dataset
        Open dataset.
    progress : bool
        Show a progress bar while reading.
    """

    def __init__(self, preprocessor: RecipePreprocessor, dataset: Dataset, *, progress: bool = False) -> None:
        self.preprocessor, self.dataset, self.progress = preprocessor, dataset, progress
        self._cache: dict[bytes, NDArray[np.float32]] = {}

    @property
    def n_features(self) -> int:
        """Values per object after flattening."""
        return int(np.prod(self.preprocessor.input_shape))

    def get(self, rows: NDArray) -> NDArray[np.float32]:
        """Inputs of ``rows``, shape ``(len(rows), *input_shape)``."""
        from astroreg.training import preprocess_rows  # training imports the models; keep this module light

        rows = np.asarray(rows, dtype=np.int64)
        key = rows.tobytes()
        if key not in self._cache:
            self._cache[key] = preprocess_rows(self.preprocessor, self.dataset, rows,
                                               desc="model inputs" if self.progress else None)
        return self._cache[key]

    def flat(self, rows: NDArray) -> NDArray[np.float32]:
        """Inputs of ``rows`` flattened to ``(len(rows), n_features)`` (a view, no copy)."""
        x = self.get(rows)
        return x.reshape(len(x), -1)

    def forget(self, rows: NDArray) -> None:
        """Drop the cached inputs of ``rows`` (e.g. the training split once no baseline needs it)."""
        self._cache.pop(np.asarray(rows, dtype=np.int64).tobytes(), None)

    def clear(self) -> None:
        """Drop the cached arrays."""
        self._cache.clear()


def count_parameters(model) -> int | None:
    """Size of a fitted model.

    Trainable parameters of a network (``sum(p.numel() for p in m.parameters() if
    p.requires_grad)``); fitted coefficients and intercepts of a linear model (a
    pipeline's last step, or every estimator of a :class:`MultiOutputRegressor`);
    ``None`` where the count is not meaningful (mean predictor, trees, LightGBM).
    """
    if isinstance(model, nn.Module):
        return int(sum(p.numel() for p in model.parameters() if p.requires_grad))
    if isinstance(model, Pipeline):
        return count_parameters(model.steps[-1][1])
    if isinstance(model, MultiOutputRegressor):
        counts = [count_parameters(e) for e in getattr(model, "estimators_", [])]
        return None if not counts or any(c is None for c in counts) else int(sum(counts))
    if isinstance(model, BaseEstimator) and hasattr(model, "coef_"):
        return int(np.size(model.coef_) + np.size(getattr(model, "intercept_", 0)))
    return None


def time_network(net: nn.Module, x: NDArray[np.float32], *, batch_size: int = 256, device: str = "auto",
                 backend: str = "auto") -> tuple[NDArray[np.float32], float | None]:
    """Outputs of a network for prepared inputs ``x`` and its speed in objects per second.

    The network goes through the prediction path of ``astroreg predict``
    (:func:`astroreg.models.optimize_for_inference`), two warm-up batches are run, then all
    of ``x`` is timed batch by batch (inference only: no reading or preprocessing), the
    fastest of :data:`TIMING_REPEATS` passes.

    Parameters
    ----------
    net : torch.nn.Module
        Trained network (eval mode).
    x : float32 array of shape (n, *input_shape)
    batch_size : int
    device : {"auto", "cpu", "cuda"}
    backend : {"auto", "compile", "jit", "eager"}

    Returns
    -------
    outputs : float32 array of shape (n, n_outputs)
        Scaled targets, as the network gives them.
    objects_per_s : float or None
        ``None`` for an empty ``x``.
    """
    from astroreg.pipeline._predict import _prepare, forward_batches  # the pipeline imports the baselines
    from astroreg.training import select_device

    if len(x) == 0:
        return np.empty((0, 0), dtype=np.float32), None
    device = select_device(device)
    fast = _prepare(net, x, batch_size, device, backend)
    for _ in range(2):  # warm-up: TorchScript optimises on the second call; copies to the CPU synchronise
        forward_batches(fast, x[:batch_size], batch_size, device)
    return timed(lambda: forward_batches(fast, x, batch_size, device), len(x))


def timed(predict: Callable[[], Any], n: int, *, repeats: int = TIMING_REPEATS) -> tuple[Any, float | None]:
    """Run ``predict`` ``repeats`` times; its first result and ``n`` / the fastest run, in objects per second.

    The fastest of a few runs (the :mod:`timeit` convention) is the least disturbed by
    other work on the machine.
    """
    out, best = None, math.inf
    for k in range(repeats):
        t0 = time.perf_counter()
        res = predict()
        best = min(best, time.perf_counter() - t0)
        if k == 0:
            out = res
    return out, (n / best if n and 0 < best < math.inf else None)
