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
from astroreg.modalities import Modality, RecipePreprocessor

_LOAD_CHUNK = 512


def preprocess_rows(modality: Modality, dataset: Dataset, rows: NDArray, *,
                    desc: str | None = None, chunk: int = _LOAD_CHUNK,
                    out: NDArray[np.float32] | None = None) -> NDArray[np.float32]:
    """Preprocessed values of one input for ``rows`` into one float32 array, read chunk by chunk.

    ``out``, of shape ``(len(rows), *modality.shape)``, is filled instead of a new array.
    """
    if out is None:
        out = np.empty((len(rows), *modality.shape), dtype=np.float32)
    starts = range(0, len(rows), chunk)
    for s in tqdm(starts, desc=desc, unit="chunk", disable=desc is None or len(starts) < 4, leave=False):
        out[s:s + chunk] = modality.transform(dataset, rows[s:s + chunk])
    return out


def check_augment(copies: int, preprocessor: RecipePreprocessor) -> None:
    """Raise a clear error when augmentation is asked for and no input of the recipe has any."""
    if copies and not any(m.augments for m in preprocessor.inputs.values()):
        first = next(iter(preprocessor.inputs.values()))
        first.augment(np.zeros((2, *first.shape), np.float32), 1, copies, (0.0, 0.0), 0)  # raises, naming it


class BatchSource(torch.utils.data.Dataset):
    """Whole batches of ({input name: inputs}, scaled targets, sample weights) for a set of rows.

    Indexed by an array of positions (a batch), so that one HDF5 read serves a
    whole batch. Inputs are held in memory when ``in_memory``, else read on demand
    (the file is opened lazily in each worker process).

    With ``copies = k > 0`` (training split only) the source serves ``(k + 1) * n``
    items: position ``p`` is row ``p % n``, unchanged for ``p < n`` and augmented by
    each input's own augmentation otherwise (spectra: Gaussian noise of std
    ``f x std(spectrum)``, ``f ~ U(noise_fraction)``; inputs without augmentation are
    repeated as they are); targets and weights are repeated. In memory the copies are
    drawn once, seeded by ``seed`` (as in paper 001, a fixed enlarged training set).
    Streamed from HDF5 they are drawn per batch, fresh every epoch, from a generator
    seeded by ``seed`` and the loader worker's number.

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
        Extra augmented copies per object (training split only; 0: none).
    noise_fraction : (float, float)
        Range of the noise std as a fraction of each spectrum's std.
    seed : int
        Seed of the noise.
    """

    def __init__(self, path: str | os.PathLike, rows: NDArray, preprocessor: RecipePreprocessor,
                 targets: NDArray, weights: NDArray | None = None, *, in_memory: bool = True,
                 desc: str | None = None, copies: int = 0, noise_fraction: tuple[float, float] = (0.01, 0.05),
                 seed: int = 0) -> None:
        check_augment(copies, preprocessor)
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
        self._x: dict[str, torch.Tensor] | None = None
        if in_memory:
            self._x = {}
            with Dataset(self.path) as ds:
                for name, m in preprocessor.inputs.items():
                    x = np.empty(((self.copies + 1) * n, *m.shape), dtype=np.float32)
                    preprocess_rows(m, ds, self.rows, desc=desc, out=x[:n])
                    if self.copies and m.augments:
                        m.augment(x, n, self.copies, self.noise_fraction, self.seed)
                    elif self.copies:
                        x[n:] = np.tile(x[:n], (self.copies,) + (1,) * (x.ndim - 1))
                    self._x[name] = torch.from_numpy(x)

    def __len__(self) -> int:
        return len(self.rows) * (self.copies + 1)

    def __getitem__(self, positions: Sequence[int]):
        pos = np.asarray(positions, dtype=np.int64)
        if self._x is not None:
            x = {name: v[pos] for name, v in self._x.items()}
        else:
            if self._ds is None:
                self._ds = Dataset(self.path)
            n = len(self.rows)
            x = self.preprocessor.transform(self._ds, self.rows[pos % n])
            noisy = pos >= n
            if noisy.any():
                seed = self._next_seed()
                for name, m in self.preprocessor.inputs.items():
                    if m.augments:
                        x[name][noisy] = m.augment_batch(x[name][noisy], self.noise_fraction, seed)
            x = {name: torch.from_numpy(v) for name, v in x.items()}
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
                 num_workers: int = 0, skip_epochs: int = 0) -> DataLoader:
    """A DataLoader whose every item is a whole batch from ``source``.

    Shuffled, epoch k draws the k-th permutation of a generator seeded with ``seed``;
    ``skip_epochs`` draws the first ones first, so that a resumed fit shuffles its next
    epoch as the uninterrupted fit would have.
    """
    if shuffle:
        sampler = RandomSampler(range(len(source)), generator=torch.Generator().manual_seed(seed))
        for _ in range(skip_epochs):
            for _ in sampler:  # draws from the generator exactly what an epoch draws
                pass
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
    start_epoch : int
        The epoch a resumed fit starts from: the shuffling goes on as it would have.
    """

    def __init__(self, train: BatchSource, val: BatchSource, *, batch_size: int, seed: int = 0,
                 num_workers: int = 0, start_epoch: int = 0) -> None:
        super().__init__()
        self.train, self.val = train, val
        self.batch_size, self.seed, self.num_workers = batch_size, seed, num_workers
        self.start_epoch = start_epoch

    def train_dataloader(self) -> DataLoader:
        return batch_loader(self.train, self.batch_size, shuffle=True, seed=self.seed, num_workers=self.num_workers,
                            skip_epochs=self.start_epoch)

    def val_dataloader(self) -> DataLoader:
        return batch_loader(self.val, max(self.batch_size, 256), shuffle=False, num_workers=self.num_workers)
