"""Apply a run to data of any size: chunked reads, batched forward passes, streamed Parquet."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from numpy.typing import NDArray
from tqdm.auto import tqdm

from astroreg._allocator import keep_freed_memory
from astroreg._threads import machine_load_sample, other_cores_busy
from astroreg.data import Dataset, atomic_path, check_output_file
from astroreg.modalities import raw_targets
from astroreg.models._ensemble import split_members
from astroreg.models._registry import unwrap_single
from astroreg.pipeline._run import Run
from astroreg.preprocess._domain import DOMAIN_FILE, count_reasons
from astroreg.training._device import select_device
from astroreg.training._infer import forward_batches, prepare_inference

log = logging.getLogger(__name__)


def iter_predictions(run: Run, dataset: Dataset, rows: NDArray | None = None, **kw) -> Iterator[pd.DataFrame]:
    """Yield prediction tables chunk by chunk; memory stays bounded by ``chunk_size``.

    Parameters
    ----------
    run : Run
        A finished run.
    dataset : Dataset
        Data with the run's input modality (and shape).
    rows : array of int, optional
        Rows to predict (default: all, in file order).
    **kw
        ``chunk_size`` (objects read and preprocessed at a time, default the inputs' own),
        ``batch_size``, ``device``, ``with_truth``, ``backend``, ``fold``, ``progress``:
        see :func:`_iter_columns`.

    Yields
    ------
    pandas.DataFrame
        Columns ``id``, ``<target>_pred``, with truth ``<target>_true``, for an
        ensemble (``training.ensemble``) ``<target>_ensemble_std`` (the members' standard
        deviation around their mean ``<target>_pred``), and for transformed targets the
        prediction in the dataset's quantity (e.g. ``total_flux_pred`` in ADU beside
        ``log_total_flux_pred``); for a run with a
        training domain (``domain.json``), ``in_domain`` and ``domain_reason`` (see
        :func:`predict`).
    """
    for columns in _iter_columns(run, dataset, rows, **kw):
        yield pd.DataFrame(columns)


def _iter_columns(
    run: Run,
    dataset: Dataset,
    rows: NDArray | None = None,
    *,
    chunk_size: int | None = None,
    batch_size: int | None = None,
    device: str = "auto",
    with_truth: bool = True,
    backend: str = "auto",
    fold: bool = True,
    domain_flags: bool = True,
    progress: bool = True,
) -> Iterator[pd.DataFrame]:
    """Prediction columns chunk by chunk, as ``{name: numpy array}`` (:func:`iter_predictions`' tables).

    Parameters
    ----------
    run : Run
        A finished run.
    dataset : Dataset
        Data with the run's input modality (and shape).
    rows : array of int, optional
        Rows to predict (default: all, in file order).
    chunk_size : int, optional
        Objects read and preprocessed at a time; default the smallest of the inputs' own
        (:attr:`astroreg.modalities.Modality.chunk_size`: 2048 images, 4096 spectra or rows).
    batch_size : int, optional
        Objects per forward pass. Default: the inputs' own (256 for images), else the
        whole chunk (dense networks run fastest on large batches).
    device : {"auto", "cpu", "cuda"}
    with_truth : bool
        Add ``<target>_true`` columns when the dataset holds the targets.
    backend : {"auto", "compile", "jit", "eager"}
        Prediction path (see :func:`astroreg.models.optimize_for_inference`); ``auto``
        tries a frozen TorchScript trace, then inductor, then eager, keeping the first
        that matches eager float32 on a real batch.
    fold : bool
        For spectra prepared at ingest whose only remaining step is the per-spectrum
        standardisation, and a network whose input goes only into ``nn.Linear`` layers
        (``residual_mlp``, ``dnn_li2017``): fold the standardisation into those layers
        (:func:`astroreg.models._fast.fold_standardization`), so that the stored flux goes
        to the network as read. The same predictions to float32 rounding, without a
        write pass over every chunk (paper-001 MLP: ~3 us a spectrum of ~13).
    progress : bool
        Show a progress bar.

    Yields
    ------
    dict of str to numpy.ndarray
        ``id`` (strings), ``<target>_pred``, with truth ``<target>_true``, for an
        ensemble ``<target>_ensemble_std``, for transformed targets the prediction in the
        dataset's quantity, and with the run's training domain ``in_domain`` (bool) and ``domain_reason`` (str).
    """
    recipe, pre = run.recipe, run.load_preprocessor()
    domain = run.domain if domain_flags else None
    device = select_device(device)
    for m in pre.inputs.values():
        m.check_dataset(dataset)
    truth = with_truth and all(t.source in dataset.target_names for t in recipe.targets)
    n = len(dataset) if rows is None else len(rows)
    ids = dataset.ids
    kinds = list(pre.inputs.values())
    if chunk_size is None:
        chunk_size = min(m.chunk_size for m in kinds)
    if batch_size is None:
        batch_size = min([m.predict_batch for m in kinds if m.predict_batch] or [chunk_size])
    network = run.load_network()
    members = split_members(network)  # an ensemble: each member's prediction, for the spread
    single = unwrap_single(network)
    # Each input says how it is read: prepared spectra into reused buffers, with the
    # standardisation folded into a dense network's first layer, for instance.
    readers = {name: m.predict_reader(dataset, single[1] if single else None, chunk_size=chunk_size,
                                      n_objects=n, fold=fold)
               for name, m in pre.inputs.items()}
    inner = None if single is None else next((r.network for r in readers.values() if r.network is not None), None)
    distance_kw = next(iter(readers.values())).distance if single else {}
    light = all(r.light for r in readers.values())
    policies = {r.threads for r in readers.values()}
    policy = policies.pop() if len(policies) == 1 else "spare_one"
    compile_network = any(m.compile_network for m in kinds)
    y_true_all = raw_targets(recipe, dataset, rows) if truth else None  # one read of each column

    # Category columns (SDSS CLASS) are read once, not per chunk: a column read costs the whole dataset.
    unseen = {} if domain is None else domain.unseen_categories(dataset)
    # Inputs ingested with at least the run's minimum coverage need no second read (of ivar) to check it.
    need_coverage = domain is not None and domain.min_coverage is not None and \
        pre.guaranteed_coverage(dataset) < domain.min_coverage

    def load(k: int):
        start = k * chunk_size
        sel = slice(start, min(start + chunk_size, n)) if rows is None else rows[start:start + chunk_size]
        x = {name: r.read(sel, k) for name, r in readers.items()}
        if domain is None:
            return sel, x, None
        distance = domain.input_distance(pre.flatten(x), **distance_kw)
        coverage = None if not need_coverage else pre.coverage(dataset, sel)
        return sel, x, (distance, coverage)

    starts = list(range(0, n, chunk_size))
    bar = tqdm(total=n, desc="predicting", unit="obj", disable=not progress, leave=False)
    threads = torch.get_num_threads()
    tuner = None
    if device == "cpu" and policy != "all" and threads > 1 and len(starts) > 1:
        if policy == "tune":
            # Reading and standardising prepared spectra (~4 us a spectrum) is light next to
            # the forward pass (~13 us of core time): all cores for torch pay on a quiet
            # machine, one fewer where other work holds a core (a 2-thread team then waits at
            # every layer: 7x slower on the 2-core machines). Timed, not guessed.
            tuner = _ThreadTuner([threads, threads - 1])
        else:
            # Spectrum resampling (and table) preprocessing costs far more than the forward pass
            # of a dense network and keeps one core busy in the reading thread; an OpenMP team as
            # large as the machine then waits on that core at every layer (2 cores: 10x slower
            # forward passes). One core fewer for torch while the chunks stream.
            torch.set_num_threads(threads - 1)
    # Read and preprocess the next chunk in a thread while this one runs through the network;
    # light inputs (prepared spectra) are read in line instead: a reading thread beside
    # torch's team on a 2-core machine slows every layer more than the overlap gains (70k
    # against 64k spectra/s for the paper-001 MLP).
    with _restore_threads(threads), ThreadPoolExecutor(max_workers=1) as pool:
        submit = _completed if light and device == "cpu" else pool.submit
        pending = submit(load, 0) if starts else None
        net = None
        for k, start in enumerate(starts):
            sel, x, checks = pending.result()
            if net is None:
                net = prepare_inference(network, x, batch_size, device, backend, compile_network=compile_network,
                                        inner=inner)
            if k + 1 < len(starts):
                pending = submit(load, k + 1)
            if tuner is not None:
                out = tuner.forward(lambda xs: forward_batches(net, xs, batch_size, device), x, k)
            else:
                out = forward_batches(net, x, batch_size, device)
            if members:
                each = np.stack([pre.unscale_targets(part) for part in np.split(out, members, axis=1)])
                y, spread = each.mean(axis=0), each.std(axis=0, ddof=1)
            else:
                y = pre.unscale_targets(out)
            m = len(out)
            frame = {"id": ids[sel]}
            if truth:
                y_true = y_true_all[start:start + m]
            for j, t in enumerate(pre.target_names):
                if truth:
                    frame[f"{t}_true"] = y_true[:, j]
                frame[f"{t}_pred"] = y[:, j]
                if members:
                    frame[f"{t}_ensemble_std"] = spread[:, j]
            frame.update({col: values for col, (values, _) in pre.source_columns(y).items()})
            if checks is not None:
                frame["in_domain"], frame["domain_reason"] = domain.flag(
                    checks[0], y, checks[1], {c: hit[sel] for c, hit in unseen.items()})
            bar.update(m)
            yield frame
    bar.close()


def _completed(fn, *args) -> Future:
    """``fn(*args)`` run now, as a finished future (the in-line stand-in for ``pool.submit``)."""
    done: Future = Future()
    done.set_result(fn(*args))
    return done


class _ThreadTuner:
    """Torch's intra-op thread count for a stream of chunks, from the load other processes put on the machine.

    A 2-thread OpenMP team on a 2-core machine where another process holds a core runs the
    paper-001 MLP 5-7x slower than one thread (every layer waits at a barrier for the
    descheduled thread; small batches far worse), while on a quiet machine 2 threads are
    almost 2x faster. Timing probes of both settings costs too much on a busy machine
    (~0.15 s a probe), so the load is read instead: the CPU time of the whole machine
    (``/proc/stat``) less this process's own (:func:`os.times`), over windows of at least
    ``window`` seconds. With more than ``busy`` cores' worth of other work, torch gets
    ``candidates[-1]`` threads, else ``candidates[0]``. Where the machine's CPU time cannot be
    read (not Linux, or a container that sees more CPUs than it may use), it keeps
    ``candidates[0]``. The caller restores the thread count afterwards.
    """

    def __init__(self, candidates: list[int], *, window: float = 0.2, busy: float = 0.5) -> None:
        self.candidates = candidates
        self.window = window
        self.busy = busy
        self.best = candidates[0]
        self.others: float | None = None  # cores used by other processes in the last window
        self._last = machine_load_sample()

    def forward(self, fn, x: NDArray, k: int) -> NDArray:
        """``fn(x)``, with the thread count chosen from the load of the last window."""
        now = machine_load_sample()
        if now is not None and self._last is not None and now.wall - self._last.wall >= self.window:
            self.others = other_cores_busy(self._last, now)
            self.best = self.candidates[-1] if self.others > self.busy else self.candidates[0]
            self._last = now
        elif self._last is None:
            self._last = now
        _set_threads(self.best)
        return fn(x)


def _set_threads(n: int) -> None:
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)


@contextmanager
def _restore_threads(n: int) -> Iterator[None]:
    try:
        yield
    finally:
        if torch.get_num_threads() != n:
            torch.set_num_threads(n)


def _units_metadata(run: Run, columns: list[str]) -> dict[bytes, bytes]:
    """The ``astroreg`` schema metadata: each target column's unit (the spread of an ensemble's members where
    ``columns`` hold it), the run and the recipe."""
    pre = run.load_preprocessor()
    units = {}
    for t, u in zip(pre.target_names, pre.target_units):
        units[f"{t}_pred"] = units[f"{t}_true"] = u
        if f"{t}_ensemble_std" in columns:
            units[f"{t}_ensemble_std"] = u
    units.update({col: u for col, (_, u) in pre.source_columns(np.zeros((1, len(pre.target_names)))).items()})
    meta = {"units": units, "run": str(run.path.resolve()), "recipe": run.recipe.name}
    return {b"astroreg": json.dumps(meta).encode()}


def predict(
    run_dir: str | os.PathLike,
    data: str | os.PathLike,
    out: str | os.PathLike,
    *,
    split: str | None = None,
    chunk_size: int | None = None,
    batch_size: int | None = None,
    device: str = "auto",
    backend: str = "auto",
    fold: bool = True,
    domain_flags: bool = True,
    progress: bool = True,
    overwrite: bool = False,
) -> Path:
    """Predict every object of ``data`` (or one split) and stream the table to Parquet.

    Parameters
    ----------
    run_dir : path-like
        A finished run folder.
    data : path-like
        An astroreg dataset (``.h5``).
    out : path-like
        Output ``.parquet``; written atomically, chunk by chunk. It may not be an input,
        and an existing file is refused unless ``overwrite``.
    split : str, optional
        Predict only this stored split.
    chunk_size : int, optional
        Objects per read; default 4096 for spectra and tables, 2048 for images.
    batch_size : int, optional
        Objects per forward pass; default 256 for images, ``chunk_size`` otherwise.
    device : {"auto", "cpu", "cuda"}
    backend : {"auto", "compile", "jit", "eager"}
        Prediction path; see :func:`iter_predictions`.
    fold : bool
        Fold the per-spectrum standardisation of prepared spectra into the network's first
        layer where it can be (see :func:`_iter_columns`); False standardises every chunk
        before the forward pass (the same predictions to float32 rounding).
    domain_flags : bool
        Add the ``in_domain`` and ``domain_reason`` columns (below). False skips the
        checks, for the last factor of speed on data known to be like the training set
        (on prepared spectra the checks cost about as much as the forward pass).
    progress : bool
    overwrite : bool
        Replace an existing ``out`` if it is a previous predictions file (recognised by
        its Parquet schema); any other file is never replaced.

    Returns
    -------
    pathlib.Path
        The Parquet file, with target units in its ``astroreg`` schema metadata.

    Notes
    -----
    Out-of-domain marks. A run trained with a training domain (``domain.json``, see
    :class:`~astroreg.preprocess._domain.TrainingDomain`) adds two columns: ``in_domain``
    (bool) and ``domain_reason``, ``""`` or the reasons joined by ``";"``:
    ``input_distance`` (the preprocessed input is far from the training inputs),
    ``coverage`` (a spectrum with fewer good pixels on the grid than the minimum) and
    ``label_range:<target>`` (the prediction lies outside the training labels' range) and
    ``category:<column>`` (a category such as SDSS's ``CLASS`` that no training object
    had: a galaxy given to a run trained on stars).
    The count of flagged objects is printed (with ``progress``). A run trained before
    astroreg recorded its domain predicts as before, without these columns, and says so
    in a logged warning: nothing is known to flag with; train it again to get them.

    Examples
    --------
    >>> predict("runs/galaxy-flux-20261122-101500", "new.h5", "pred.parquet")  # doctest: +SKIP
    """
    # Before any work: a wrong, busy or foreign output is refused, never overwritten.
    out = check_output_file(out, kind="predictions", inputs=[data, run_dir], overwrite=overwrite)
    run = Run.open(run_dir)  # reads its recipe and preprocessor once, however often they are asked for
    keep_freed_memory()  # each chunk's arrays reuse freed memory, not fresh pages (astroreg._allocator)
    if domain_flags and run.domain is None:
        log.warning("run %s has no %s (trained before astroreg recorded the training domain): the predictions "
                    "carry no in_domain flags; train the recipe again to get them", run.path, DOMAIN_FILE)
    n_objects, flagged = 0, {}
    with Dataset(data) as ds:
        rows = ds.split(split) if split else None
        writer = None
        with atomic_path(out) as tmp:
            try:
                # Arrow tables straight from the numpy columns: through pandas costs ~2 us a row,
                # a third of the paper model's forward pass.
                for columns in _iter_columns(run, ds, rows, chunk_size=chunk_size, batch_size=batch_size,
                                             device=device, backend=backend, fold=fold,
                                             domain_flags=domain_flags, progress=progress):
                    n_objects += len(columns["id"])
                    if "domain_reason" in columns:
                        count_reasons(columns["domain_reason"], flagged)
                    table = pa.table({k: pa.array(v) for k, v in columns.items()})
                    if writer is None:
                        schema = table.schema.with_metadata(_units_metadata(run, table.column_names))
                        writer = pq.ParquetWriter(tmp, schema)
                    writer.write_table(table.replace_schema_metadata(writer.schema.metadata))
            finally:
                if writer is not None:
                    writer.close()
            if writer is None:
                raise ValueError(f"{data} has no objects to predict")
    if progress and "" in flagged:
        print(_domain_summary(n_objects, flagged))
    return out


def _domain_summary(n_objects: int, counts: dict[str, int]) -> str:
    """One line: how many objects lie outside the training domain, and why."""
    n_out = counts[""]
    if not n_out:
        return f"in the training domain: all {n_objects} objects"
    why = ", ".join(f"{r} {k}" for r, k in sorted(counts.items(), key=lambda kv: -kv[1]) if r)
    return (f"outside the training domain: {n_out} of {n_objects} objects ({why}); "
            "see the in_domain and domain_reason columns")


def predict_frame(run: Run, dataset: Dataset, rows: NDArray | None = None, **kw) -> pd.DataFrame:
    """All predictions in one table (for evaluation of a split that fits in memory)."""
    frames = list(iter_predictions(run, dataset, rows, **kw))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
