"""Batches from an astroreg dataset for Lightning, in memory or streamed from HDF5."""

from __future__ import annotations

import os
from collections.abc import Sequence

import lightning as L
import numpy as np
import torch
from numpy.typing import NDArray
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, SequentialSampler
from tqdm.auto import tqdm

from astroreg.data import Dataset
from astroreg.preprocess import GaussianNoiseAugmenter, RecipePreprocessor

_LOAD_CHUNK = 512


def preprocess_rows(preprocessor: RecipePreprocessor, dataset: Dataset, rows: NDArray, *,
                    desc: str | None = None, chunk: int = _LOAD_CHUNK,
                    out: NDArray[np.float32] | None = None) -> NDArray[np.float32]:
    """Preprocessed inputs of ``rows`` into one float32 array, read chunk by chunk.

    ``out``, of shape ``(len(rows), *preprocessor.input_shape)``, is filled instead of a new array.
    """
    if out is None:
        out = np.empty((len(rows), *preprocessor.input_shape), dtype=np.float32)
    starts = range(0, len(rows), chunk)
    for s in tqdm(starts, desc=desc, unit="chunk", disable=desc is None or len(starts) < 4, leave=False):
        out[s:s + chunk] = preprocessor.inputs(dataset, rows[s:s + chunk])
    return out


def check_augment_modality(copies: int, modality: str) -> None:
    """Raise a clear error when noise augmentation is asked for a modality other than spectra."""
    if copies and modality != "spectra":
        raise ValueError(
            f"training.augment.copies is {copies} but the recipe's inputs.modality is {modality!r}: "
            "Gaussian-noise augmentation is for spectra only; set training.augment.copies: 0"
        )


def add_noisy_copies(x: NDArray[np.float32], n: int, copies: int, noise_fraction: tuple[float, float],
                     seed: int, *, chunk: int = _LOAD_CHUNK) -> NDArray[np.float32]:
    """Fill ``x[c * n:(c + 1) * n]`` (c = 1..copies) with noisy copies of the spectra ``x[:n]``, in place.

    The noise of each copy is Gaussian with std = f x std(spectrum), f drawn uniformly in
    ``noise_fraction`` (:class:`~astroreg.preprocess.GaussianNoiseAugmenter`), computed
    ``chunk`` spectra at a time so that memory stays at the output array.

    Parameters
    ----------
    x : float32 array of shape ((copies + 1) * n, n_pixels)
        Originals in the first ``n`` rows; the rest is overwritten.
    n : int
        Number of original spectra.
    copies : int
    noise_fraction : (float, float)
    seed : int
        Seed of the noise (one draw per chunk from it).

    Returns
    -------
    numpy.ndarray
        ``x``.
    """
    if x.shape[0] != (copies + 1) * n or x.ndim != 2:
        raise ValueError(f"add_noisy_copies: x must have shape ({(copies + 1) * n}, n_pixels), got {x.shape}")
    rng = np.random.default_rng(seed)
    for s in range(0, n, chunk):
        e = min(s + chunk, n)
        aug = GaussianNoiseAugmenter(copies=copies, level=tuple(noise_fraction),
                                     seed=int(rng.integers(2**63)), include_original=False)
        noisy, _ = aug.fit_transform(x[s:e])
        noisy = noisy.reshape(copies, e - s, x.shape[1])
        for c in range(copies):
            x[(c + 1) * n + s:(c + 1) * n + e] = noisy[c]
    return x


class BatchSource(torch.utils.data.Dataset):
    """Whole batches of (inputs, scaled targets, sample weights) for a set of rows.

    Indexed by an array of positions (a batch), so that one HDF5 read serves a
    whole batch. Inputs are held in memory when ``in_memory``, else read on demand
    (the file is opened lazily in each worker process).

    With ``copies = k > 0`` (training spectra only) the source serves ``(k + 1) * n``
    items: position ``p`` is row ``p % n``, unchanged for ``p < n`` and with Gaussian
    noise of std ``f x std(spectrum)``, ``f ~ U(noise_fraction)``, otherwise; targets
    and weights are repeated. In memory the noisy copies are drawn once, seeded by
    ``seed`` (as in the paper, a fixed enlarged training set). Streamed from HDF5 the
    noise is drawn per batch, fresh every epoch, from a generator seeded by ``seed``
    and the loader worker's number.

    Parameters
    ----------
    path : path-like
        The dataset file.
    rows : array of int, shape (n,)
        Dataset rows served by this source.
    preprocessor : RecipePreprocessor
        Fitted preprocessing.
    targets : array of shape (n, n_targets)
        Scaled targets of ``rows``.
    weights : array of shape (n,), optional
        Per-sample loss weights.
    in_memory : bool
        Load and preprocess all inputs up front.
    copies : int
        Extra noisy copies per spectrum (training split only; 0: none).
    noise_fraction : (float, float)
        Range of the noise std as a fraction of each spectrum's std.
    seed : int
        Seed of the noise.
    """

    def __init__(self, path: str | os.PathLike, rows: NDArray, preprocessor: RecipePreprocessor,
                 targets: NDArray, weights: NDArray | None = None, *, in_memory: bool = True,
                 desc: str | None = None, copies: int = 0, noise_fraction: tuple[float, float] = (0.01, 0.05),
                 seed: int = 0) -> None:
        check_augment_modality(copies, preprocessor.modality)
        self.path = str(path)
        self.rows = np.asarray(rows, dtype=np.int64)
        self.preprocessor = preprocessor
        self.copies, self.noise_fraction, self.seed = int(copies), tuple(noise_fraction), int(seed)
        n = len(self.rows)
        rep = np.tile(np.arange(n), self.copies + 1)
        self.targets = torch.from_numpy(np.asarray(targets, dtype=np.float32)[rep])
        self.weights = None if weights is None else torch.from_numpy(np.asarray(weights, dtype=np.float32)[rep])
        self._ds: Dataset | None = None
        self._rng: np.random.Generator | None = None
        self._x: torch.Tensor | None = None
        if in_memory:
            x = np.empty(((self.copies + 1) * n, *preprocessor.input_shape), dtype=np.float32)
            with Dataset(self.path) as ds:
                preprocess_rows(preprocessor, ds, self.rows, desc=desc, out=x[:n])
            if self.copies:
                add_noisy_copies(x, n, self.copies, self.noise_fraction, self.seed)
            self._x = torch.from_numpy(x)

    def __len__(self) -> int:
        return len(self.rows) * (self.copies + 1)

    def __getitem__(self, positions: Sequence[int]):
        pos = np.asarray(positions, dtype=np.int64)
        if self._x is not None:
            x = self._x[pos]
        else:
            if self._ds is None:
                self._ds = Dataset(self.path)
            n = len(self.rows)
            x = self.preprocessor.inputs(self._ds, self.rows[pos % n])
            noisy = pos >= n
            if noisy.any():
                aug = GaussianNoiseAugmenter(copies=1, level=self.noise_fraction, seed=self._next_seed(),
                                             include_original=False)
                x[noisy] = aug.fit_transform(x[noisy])[0]
            x = torch.from_numpy(x)
        w = None if self.weights is None else self.weights[pos]
        return x, self.targets[pos], w

    def _next_seed(self) -> int:
        """A fresh noise seed per streamed batch, from ``seed`` and the loader worker's number."""
        if self._rng is None:
            info = torch.utils.data.get_worker_info()
            self._rng = np.random.default_rng([self.seed, 0 if info is None else info.id + 1])
        return int(self._rng.integers(2**63))

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_ds"] = None
        state["_rng"] = None
        return state


def _collate_batch(batch):
    return batch


def batch_loader(source: BatchSource, batch_size: int, *, shuffle: bool, seed: int = 0,
                 num_workers: int = 0) -> DataLoader:
    """A DataLoader whose every item is a whole batch from ``source``."""
    if shuffle:
        sampler = RandomSampler(range(len(source)), generator=torch.Generator().manual_seed(seed))
    else:
        sampler = SequentialSampler(range(len(source)))
    return DataLoader(
        source, sampler=BatchSampler(sampler, batch_size, drop_last=False), batch_size=None,
        num_workers=num_workers, collate_fn=_collate_batch, persistent_workers=num_workers > 0,
    )


class RecipeDataModule(L.LightningDataModule):
    """Training and validation batches of one recipe.

    Parameters
    ----------
    train, val : BatchSource
        The two splits.
    batch_size : int
    seed : int
        Seed of the shuffling.
    num_workers : int
        Loader processes (0 reads in the training process).
    """

    def __init__(self, train: BatchSource, val: BatchSource, *, batch_size: int, seed: int = 0,
                 num_workers: int = 0) -> None:
        super().__init__()
        self.train, self.val = train, val
        self.batch_size, self.seed, self.num_workers = batch_size, seed, num_workers

    def train_dataloader(self) -> DataLoader:
        return batch_loader(self.train, self.batch_size, shuffle=True, seed=self.seed, num_workers=self.num_workers)

    def val_dataloader(self) -> DataLoader:
        return batch_loader(self.val, max(self.batch_size, 256), shuffle=False, num_workers=self.num_workers)
