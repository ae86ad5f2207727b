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
from astroreg.preprocess import RecipePreprocessor

_LOAD_CHUNK = 512


def preprocess_rows(preprocessor: RecipePreprocessor, dataset: Dataset, rows: NDArray, *,
                    desc: str | None = None, chunk: int = _LOAD_CHUNK) -> NDArray[np.float32]:
    """Preprocessed inputs of ``rows`` into one float32 array, read chunk by chunk."""
    out = np.empty((len(rows), *preprocessor.input_shape), dtype=np.float32)
    starts = range(0, len(rows), chunk)
    for s in tqdm(starts, desc=desc, unit="chunk", disable=desc is None or len(starts) < 4, leave=False):
        out[s:s + chunk] = preprocessor.inputs(dataset, rows[s:s + chunk])
    return out


class BatchSource(torch.utils.data.Dataset):
    """Whole batches of (inputs, scaled targets, sample weights) for a set of rows.

    Indexed by an array of positions (a batch), so that one HDF5 read serves a
    whole batch. Inputs are held in memory when ``in_memory``, else read on demand
    (the file is opened lazily in each worker process).

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
    """

    def __init__(self, path: str | os.PathLike, rows: NDArray, preprocessor: RecipePreprocessor,
                 targets: NDArray, weights: NDArray | None = None, *, in_memory: bool = True,
                 desc: str | None = None) -> None:
        self.path = str(path)
        self.rows = np.asarray(rows, dtype=np.int64)
        self.preprocessor = preprocessor
        self.targets = torch.from_numpy(np.asarray(targets, dtype=np.float32))
        self.weights = None if weights is None else torch.from_numpy(np.asarray(weights, dtype=np.float32))
        self._ds: Dataset | None = None
        self._x: torch.Tensor | None = None
        if in_memory:
            with Dataset(self.path) as ds:
                self._x = torch.from_numpy(preprocess_rows(preprocessor, ds, self.rows, desc=desc))

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, positions: Sequence[int]):
        pos = np.asarray(positions, dtype=np.int64)
        if self._x is not None:
            x = self._x[pos]
        else:
            if self._ds is None:
                self._ds = Dataset(self.path)
            x = torch.from_numpy(self.preprocessor.inputs(self._ds, self.rows[pos]))
        w = None if self.weights is None else self.weights[pos]
        return x, self.targets[pos], w

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_ds"] = None
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
