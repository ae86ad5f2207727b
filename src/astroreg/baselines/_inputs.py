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
from astroreg.modalities import RecipePreprocessor

TIMING_REPEATS = 3
"""Timed prediction passes per model; the fastest counts."""


class ModelInputs:
    """The recipe's preprocessed network inputs of some rows, read once and shared.

    Classical baselines with ``inputs: model`` fit on these flattened to 2-D and side by
    side (e.g. the resampled, standardised spectra), and the prediction speed of every
    model is timed on them. Arrays are float32 per named input, read chunk by chunk with
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
        self._cache: dict[bytes, dict[str, NDArray[np.float32]]] = {}

    @property
    def n_features(self) -> int:
        """Values per object after flattening every input."""
        return self.preprocessor.n_features

    def get(self, rows: NDArray) -> dict[str, NDArray[np.float32]]:
        """Inputs of ``rows``: ``{name: array of shape (len(rows), *shape)}``."""
        from astroreg.training import preprocess_rows  # training imports the models; keep this module light

        rows = np.asarray(rows, dtype=np.int64)
        key = rows.tobytes()
        if key not in self._cache:
            self._cache[key] = {name: preprocess_rows(m, self.dataset, rows,
                                                      desc="model inputs" if self.progress else None)
                                for name, m in self.preprocessor.inputs.items()}
        return self._cache[key]

    def flat(self, rows: NDArray) -> NDArray[np.float32]:
        """Inputs of ``rows`` flattened to ``(len(rows), n_features)`` (a view of a single input, no copy)."""
        return self.preprocessor.flatten(self.get(rows))

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


def time_network(net: nn.Module, x: dict[str, NDArray[np.float32]], *, batch_size: int = 256,
                 device: str = "auto", backend: str = "auto",
                 compile_network: bool = True) -> tuple[NDArray[np.float32], float | None]:
    """Outputs of a network for prepared inputs ``x`` and its speed in objects per second.

    The network goes through the prediction path of ``astroreg predict``
    (:func:`astroreg.models.optimize_for_inference`), two warm-up batches are run, then all
    of ``x`` is timed batch by batch (inference only: no reading or preprocessing), the
    fastest of :data:`TIMING_REPEATS` passes.

    Parameters
    ----------
    net : torch.nn.Module
        Trained network (eval mode).
    x : dict of str to float32 array of shape (n, *shape)
        The inputs by name.
    batch_size : int
    device : {"auto", "cpu", "cuda"}
    backend : {"auto", "compile", "jit", "eager"}
    compile_network : bool
        Whether the inputs' kinds gain from a traced or compiled network (images).

    Returns
    -------
    outputs : float32 array of shape (n, n_outputs)
        Scaled targets, as the network gives them.
    objects_per_s : float or None
        ``None`` for an empty ``x``.
    """
    from astroreg.training import select_device
    from astroreg.training._infer import forward_batches, n_objects, prepare_inference

    n = n_objects(x)
    if n == 0:
        return np.empty((0, 0), dtype=np.float32), None
    device = select_device(device)
    fast = prepare_inference(net, x, batch_size, device, backend, compile_network=compile_network)
    head = {k: v[:batch_size] for k, v in x.items()}
    for _ in range(2):  # warm-up: TorchScript optimises on the second call; copies to the CPU synchronise
        forward_batches(fast, head, batch_size, device)
    return timed(lambda: forward_batches(fast, x, batch_size, device), n)


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
