"""Ingest Gaia XP (BP/RP) spectra, optionally joined to labels by source_id, into an astroreg dataset.

Paper 004 learns galaxy redshifts from 186 Gaia XP fluxes: 120 internally calibrated
samples per band (as Gaia's SMSgen samples them), less the first 34 and last 6 of BP and
the first 4 and last 10 of RP (:mod:`astroreg.preprocess._xp_layout`). This reader turns
what users download into that layout, chunk by chunk in bounded memory:

- continuous spectra (the archive's ``xp_continuous_mean_spectrum``) are sampled with
  GaiaXPy, offline: ``convert`` at the layout's pseudo-wavelengths (``flux="internal"``,
  electron/s, the paper's) or ``calibrate`` at the kept wavelengths (``flux="calibrated"``,
  absolute flux in W m^-2 nm^-1; GaiaXPy merges BP and RP there, so the BP and RP samples
  where the bands overlap, 628-631 nm, hold the same merged flux);
- sampled spectra: the archive's (or ``calibrate``'s) 343 samples 336-1020 nm are
  interpolated linearly (:func:`scipy.interpolate.interp1d`) onto the kept wavelengths,
  errors too (an approximation: neighbouring samples are correlated); SMSgen-like
  ``bp_flux``/``rp_flux`` and GaiaXPy ``convert`` output at the layout's sampling are only
  truncated.

The dataset is *prepared* (:func:`~astroreg.data.write_prepared_attrs`): its spectra lie
on :func:`~astroreg.preprocess._xp_layout.xp_grid`, which it records, so a recipe with
``inputs: {xp: {kind: spectra, grid: gaia-xp, resample: false}}`` reads the flux as
stored. ``/spectra`` also records the flux kind (``xp_flux_kind``), the truncation and the
source files.
"""

from __future__ import annotations

import os
import sys
import types
import warnings
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from astroreg.data._catalog import require_columns
from astroreg.data._dataset import DatasetWriter, SpectraSpec, _check_fractions
from astroreg.data._parallel import make_pool, run_task
from astroreg.data._prepared import write_prepared_attrs
from astroreg.ingest._batch import LazyWriter
from astroreg.ingest._catalog_read import read_table
from astroreg.ingest._gaiaxp_read import (
    ID_COLUMN,
    array_columns,
    detect_form,
    files_of,
    form_columns,
    iter_chunks,
    parse_id,
    read_columns,
)
from astroreg.ingest._gaiaxp_sample import (
    ChunkState,
    XpSampler,
    pivot_converted,
    process_chunk,
)
from astroreg.ingest._images import REPORT_SUFFIX, IngestReport, finish_ingest
from astroreg.ingest._labels import first_rows, target_values
from astroreg.preprocess._xp_layout import (
    PAPER_TRUNCATION,
    XpTruncation,
    xp_grid,
)

PAPER_SPLITS: Mapping[str, float] = types.MappingProxyType({"train": 0.63, "val": 0.27, "test": 0.10})
"""Paper 004's split: 10 % test, then 30 % of the remaining 90 % for validation."""

XP_FLUX_UNITS: Mapping[str, str] = types.MappingProxyType({"internal": "electron/s", "calibrated": "1e-17 W m-2 nm-1"})
"""Unit of each flux kind: GaiaXPy's ``convert`` documents electron/s, ``calibrate`` W m^-2 nm^-1."""

XP_FLUX_KIND = "xp_flux_kind"
"""``/spectra`` attribute: ``"internal"`` or ``"calibrated"``."""
XP_TRUNCATION = "xp_truncation"
"""``/spectra`` attribute: samples dropped, ``"BP_FIRST,BP_LAST,RP_FIRST,RP_LAST"``."""

DEFAULT_CHUNK_SIZE = 2_000
"""Sources read, sampled and written at a time: a continuous source takes ~0.2 MB in flight (its CSV text,
parsed arrays and GaiaXPy's covariance matrices), so ~0.5 GB a chunk."""
PARALLEL_MIN_BYTES = 50 * 1024 ** 2
"""Below this much XP input (~1,200 continuous sources as CSV), ``n_jobs=None`` works serially."""
_EXAMPLES = 20
_FORM_FLUX = {"calibrated": "calibrated", "smsgen": "internal", "converted": "internal"}
_FORM_NAMES = {"continuous": "continuous (GaiaXPy)", "calibrated": "sampled 336-1020 nm (archive / calibrate)",
               "smsgen": "SMSgen-like sampled bp_flux/rp_flux", "converted": "GaiaXPy convert output"}


@dataclass(frozen=True)
class GaiaXpIngestReport(IngestReport):
    """Outcome of :func:`ingest_gaia_xp`: an :class:`IngestReport` whose rows are sources.

    ``n_rows`` counts the sources read, ``skipped`` lists ``(source_id, reason)`` for each one
    left out for its spectrum or its id.

    Attributes
    ----------
    flux : {"internal", "calibrated"}
        The flux kind stored.
    flux_unit : str
        Its unit.
    truncation : str
        Samples dropped, ``"BP_FIRST,BP_LAST,RP_FIRST,RP_LAST"``.
    files : list of dict
        Per XP file: ``file``, ``form``, ``rows``.
    n_unlabelled : int
        Sources without a (finite) label, skipped when labels were given.
    unlabelled_examples : list of str
        Their first source_ids.
    n_labels : int
        Rows of the label table.
    n_labels_unmatched : int
        Label rows whose source has no ingested spectrum.
    n_nonpositive : int
        Ingested sources whose flux is nowhere positive (warned about, kept).
    nonpositive_examples : list of str
        Their first source_ids.
    """

    flux: str = "internal"
    flux_unit: str = ""
    truncation: str = ""
    files: list[dict] = field(default_factory=list)
    n_unlabelled: int = 0
    unlabelled_examples: list[str] = field(default_factory=list)
    n_labels: int = 0
    n_labels_unmatched: int = 0
    n_nonpositive: int = 0
    nonpositive_examples: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """JSON-ready summary; skipped sources as ``{"source_id", "reason"}``."""
        return {"out": str(self.out), "n_sources": self.n_rows, "n_ok": self.n_ok, "n_skipped": self.n_skipped,
                "flux": self.flux, "flux_unit": self.flux_unit, "truncation": self.truncation, "files": self.files,
                "n_unlabelled": self.n_unlabelled, "unlabelled_examples": self.unlabelled_examples,
                "n_labels": self.n_labels, "n_labels_unmatched": self.n_labels_unmatched,
                "n_nonpositive": self.n_nonpositive, "nonpositive_examples": self.nonpositive_examples,
                "skipped": [{"source_id": s, "reason": r} for s, r in self.skipped]}

    def _headline(self) -> str:
        if not self.n_ok:
            return f"ingested none of {self.n_rows} Gaia XP sources"
        return (f"ingested {self.n_ok} of {self.n_rows} Gaia XP sources into {self.out} ({self.flux} flux "
                f"[{self.flux_unit}], truncation {self.truncation})")

    def _extra_lines(self) -> list[str]:
        lines = []
        if self.n_labels:
            lines.append(f"labels: {self.n_labels} rows, {self.n_labels_unmatched} without an ingested spectrum; "
                         f"{self.n_unlabelled} sources without a label skipped"
                         + (f" (e.g. {', '.join(self.unlabelled_examples[:5])})" if self.unlabelled_examples else ""))
        if self.n_nonpositive:
            lines.append(f"warning: {self.n_nonpositive} sources have no positive flux sample (kept), e.g. "
                         + ", ".join(self.nonpositive_examples[:5]))
        return lines


def ingest_gaia_xp(
    xp_files: str | os.PathLike | Sequence[str | os.PathLike],
    out: str | os.PathLike,
    *,
    labels: str | os.PathLike | pd.DataFrame | None = None,
    id_column: str = ID_COLUMN,
    targets: Mapping[str, str] | None = None,
    truncation: XpTruncation | str = PAPER_TRUNCATION,
    flux: Literal["internal", "calibrated"] = "internal",
    split_fractions: Mapping[str, float] | None = PAPER_SPLITS,
    seed: int = 0,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    n_jobs: int | None = None,
    progress: bool = True,
) -> GaiaXpIngestReport:
    """Turn Gaia XP spectrum files (and optionally a label table) into a prepared spectra dataset.

    Parameters
    ----------
    xp_files : path-like or sequence of path-like
        CSV, ECSV or FITS files of XP spectra in one of the forms of
        :mod:`astroreg.ingest._gaiaxp_read` (continuous, or sampled); files may mix forms.
    out : path-like
        Dataset file to write (``.h5``); it appears only when complete, with
        ``<out>.ingest-report.json`` beside it.
    labels : path-like or pandas.DataFrame, optional
        Label table (any format :func:`~astroreg.ingest._catalog_read.read_table` reads:
        CSV, FITS, Parquet, HDF5), joined on ``id_column``. Without it the dataset holds
        spectra and ids only, for prediction.
    id_column : str
        The label table's column of Gaia DR3 source_ids.
    targets : mapping of str to str, optional
        Label columns stored as targets, with units, e.g. ``{"z": ""}``. Required with ``labels``.
    truncation : XpTruncation or str
        Samples dropped at each end of BP and RP; default the paper's ``"34,6,4,10"``.
    flux : {"internal", "calibrated"}
        ``"internal"``: internally calibrated flux in electron/s at the layout's 120
        samples per band (the paper's); ``"calibrated"``: absolute flux in W m^-2 nm^-1
        at the same wavelengths.
    split_fractions : mapping of str to float, optional
        Random splits stored in the dataset (default the paper's 63/27/10); ``None``: none.
    seed : int
        Seed of the random splits.
    chunk_size : int
        Sources read, converted and written at a time.
    n_jobs : int, optional
        Worker processes that parse and sample chunks (GaiaXPy works one source at a time
        in Python, so processes scale it with the cores). ``1``: serial; ``None``: serial
        for less than :data:`PARALLEL_MIN_BYTES` of input, else one per core. At most
        ``n_jobs + 1`` chunks are in flight.
    progress : bool
        Show a progress bar and print the summary.

    Returns
    -------
    GaiaXpIngestReport
        Counts and skipped sources; also written as JSON to ``<out>.ingest-report.json``.

    Raises
    ------
    FileNotFoundError
        If an XP file or the label table does not exist.
    ValueError
        A file that cannot be read or holds no XP form, a form that does not give the
        asked ``flux``, a missing label column, bad options;
        :class:`~astroreg.ingest.NothingIngestedError` when no source was ingested.

    Examples
    --------
    >>> report = ingest_gaia_xp("XP_CONTINUOUS_RAW.csv", "xp.h5", labels="sdss_z.fits",  # doctest: +SKIP
    ...                         targets={"z": ""})
    >>> report.n_ok  # doctest: +SKIP
    2
    """
    out = Path(out)
    paths = files_of(xp_files)
    trunc = truncation if isinstance(truncation, XpTruncation) else XpTruncation.parse(str(truncation))
    if flux not in XP_FLUX_UNITS:
        raise ValueError(f"flux is {flux!r}; use 'internal' (electron/s, the paper's) or 'calibrated' "
                         "(1e-17 W m-2 nm-1) (CLI: --flux)")
    if not isinstance(chunk_size, (int, np.integer)) or isinstance(chunk_size, bool) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    if n_jobs is not None and (not isinstance(n_jobs, (int, np.integer)) or isinstance(n_jobs, bool) or n_jobs < 1):
        raise ValueError(f"n_jobs must be a positive integer or None (automatic), got {n_jobs!r}")
    if split_fractions is not None:
        _check_fractions(split_fractions)
    targets = {str(k): str(v) for k, v in (targets or {}).items()}
    if labels is None and targets:
        raise ValueError(f"targets {list(targets)} need a label table (labels=, CLI: --labels TABLE)")
    if labels is not None and not targets:
        raise ValueError("a label table needs the targets to store (targets={'z': ''}, CLI: --target COLUMN[:UNIT])")

    forms = []
    for p in paths:
        form = detect_form(read_columns(p), str(p))
        if form in _FORM_FLUX and _FORM_FLUX[form] != flux:
            other = _FORM_FLUX[form]
            raise ValueError(f"{p} holds {_FORM_NAMES[form]} spectra, which are {other} flux, but flux={flux!r} "
                             f"was asked; use --flux {other} (flux={other!r}), or continuous spectra for either")
        forms.append(form)
    lookup = _Labels.build(labels, id_column, targets) if labels is not None else None

    grid = xp_grid(trunc)
    converter = XpSampler(trunc, flux)
    state = ChunkState()
    files_info = []
    workers = _n_workers(n_jobs, paths)
    pool = make_pool("processes", workers, name="gaia-xp")
    with LazyWriter(pool=pool) as batch:
        from tqdm.auto import tqdm

        with tqdm(unit="source", desc="Gaia XP", disable=not progress, file=sys.stderr) as bar:
            pending: deque = deque()  # (rows read, future or result) in file order

            def write(item) -> None:
                n, res = item
                ids, fl, err, rows, local = res.result() if hasattr(res, "result") else res
                state.skipped += local.skipped
                state.nonpositive += local.nonpositive
                if ids.size:
                    writer = batch.open(_open_writer, out, grid, flux, trunc, targets, paths, forms, err is not None,
                                        split_fractions, seed)
                    _append(writer, ids, fl, err, rows, lookup, state)
                bar.update(n)
                bar.set_postfix(ok=batch.n_objects, skipped=len(state.skipped), refresh=False)

            for path, form in zip(paths, forms):
                n_file = 0
                columns = list(dict.fromkeys(form_columns(form) + array_columns(form) + ["flux_error"]))
                chunks = iter_chunks(path, columns, chunk_size)
                row_form = form
                if form == "converted":
                    # a source's BP and RP rows may lie in different chunks: the whole file at once
                    chunks = [pivot_converted(pd.concat(list(chunks), ignore_index=True), state, path)]
                    row_form = "smsgen"
                for chunk in chunks:
                    n_file += len(chunk)
                    selected = _select(chunk, path, state, lookup, n_file - len(chunk))
                    if selected is None:
                        pending.append((len(chunk), (np.zeros(0, np.int64), None, None, [], ChunkState())))
                    elif pool is None:
                        pending.append((len(chunk), process_chunk(row_form, selected, converter)))
                    else:
                        pending.append((len(chunk), pool.submit(run_task, process_chunk, row_form, selected, converter)))
                    while len(pending) > max(workers, 1):
                        write(pending.popleft())
                files_info.append({"file": str(path), "form": form, "rows": n_file})
            while pending:
                write(pending.popleft())
        n_ok = batch.n_objects

    if state.nonpositive:
        warnings.warn(f"{len(state.nonpositive)} Gaia XP sources have no positive flux sample (kept), e.g. "
                      f"{', '.join(state.nonpositive[:5])}", UserWarning, stacklevel=2)
    report = GaiaXpIngestReport(
        out=out, report_path=out.with_name(out.name + REPORT_SUFFIX), n_rows=state.n_sources, n_ok=n_ok,
        skipped=state.skipped, flux=flux, flux_unit=XP_FLUX_UNITS[flux], truncation=str(trunc), files=files_info,
        n_unlabelled=state.n_unlabelled, unlabelled_examples=state.unlabelled[:_EXAMPLES],
        n_labels=0 if lookup is None else lookup.n_rows,
        n_labels_unmatched=0 if lookup is None else lookup.n_rows - len(state.labelled_rows),
        n_nonpositive=len(state.nonpositive), nonpositive_examples=state.nonpositive[:_EXAMPLES],
    )
    settings = {"xp_files": [str(p) for p in paths], "labels": None if labels is None else
                ("a DataFrame" if isinstance(labels, pd.DataFrame) else str(labels)),
                "id_column": id_column, "targets": targets, "truncation": str(trunc), "flux": flux,
                "split_fractions": None if split_fractions is None else dict(split_fractions), "seed": seed}
    no_labels = " or without a label" if lookup is not None else ""
    return finish_ingest(report, settings, progress=progress,
                         nothing=f"no usable Gaia XP source in {', '.join(p.name for p in paths)}: all "
                                 f"{state.n_sources} were skipped{no_labels}",
                         advice="check the files' spectra and that the label ids are Gaia DR3 source_ids")


# -- state, labels ----------------------------------------------------------------------------
@dataclass
class _Labels:
    rows: dict  # source_id -> label row
    repeats: dict  # source_id -> number of rows (more than one)
    values: dict  # target -> (n_rows,) float64, NaN missing
    n_rows: int
    source: str

    @classmethod
    def build(cls, labels, id_column: str, targets: Mapping[str, str]) -> _Labels:
        if isinstance(labels, pd.DataFrame):
            frame, source = labels.reset_index(drop=True), "the label DataFrame"
        else:
            frame, source = read_table(labels), str(labels)
        require_columns(frame, [id_column], source, "name the label table's source_id column (CLI: --id-column)")
        require_columns(frame, list(targets), source, "pass targets that are label columns (CLI: --target COLUMN)")
        ids = _label_ids(frame[id_column], id_column, source)
        values = target_values(frame, targets, source, "pick a numeric column or clean the table")
        rows, repeats = first_rows(ids.tolist())
        return cls(rows=rows, repeats=repeats, values=values, n_rows=len(frame), source=source)


def _n_workers(n_jobs: int | None, paths: Sequence[Path]) -> int:
    if n_jobs is not None:
        return int(n_jobs)
    size = sum(p.stat().st_size for p in paths if p.is_file())
    if size < PARALLEL_MIN_BYTES:
        return 1
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _label_ids(col: pd.Series, name: str, source: str) -> np.ndarray:
    """source_ids of a label column as Python ints (None where missing), exactly: never through float64."""
    if pd.api.types.is_integer_dtype(col):
        return np.asarray([None if pd.isna(v) else int(v) for v in col], dtype=object)
    if pd.api.types.is_float_dtype(col):
        v = col.to_numpy(dtype=np.float64, na_value=np.nan)
        finite = v[np.isfinite(v)]
        if finite.size and (np.abs(finite).max() >= 2.0 ** 53 or np.any(finite != np.round(finite))):
            raise ValueError(
                f"column {name!r} of {source} was read as floating point (it has empty cells or decimals), which "
                "cannot hold 19-digit Gaia source_ids exactly; drop the rows without a source_id, or store the ids "
                "as integers (FITS, Parquet) or text")
        return np.asarray([int(x) if np.isfinite(x) else None for x in v], dtype=object)
    return np.asarray([parse_id(v) if not (isinstance(v, float) and np.isnan(v)) else None for v in col],
                      dtype=object)


# -- one chunk ----------------------------------------------------------------------------------
def _select(chunk: pd.DataFrame, path: Path, state: ChunkState, lookup: _Labels | None, offset: int = 0) -> dict | None:
    """The chunk's rows with a new, labelled source_id, cells as read (``{column: list}``); the others go to ``state``.

    Ids are checked here, in the main process, since duplicates are found across chunks.
    """
    state.n_sources += len(chunk)
    keep_rows, ids, label_rows = [], [], []
    raw_ids = chunk[ID_COLUMN].tolist()
    for i, raw in enumerate(raw_ids):
        sid = parse_id(raw)
        if sid is None:
            state.skip(f"{path.name}:row {offset + i + 1}", f"source_id {raw!r} is not a whole number")
            continue
        name = str(sid)
        if sid in state.seen:
            state.skip(name, f"duplicate source_id (an earlier row of the XP files has it; this one, in {path.name}, "
                             "is skipped)")
            continue
        state.seen.add(sid)
        row = None
        if lookup is not None:
            row = lookup.rows.get(sid)
            if sid in lookup.repeats:
                state.skip(name, f"{lookup.repeats[sid]} rows of the label table {lookup.source} have this source_id; "
                                 "remove the duplicates")
                continue
            if row is None or any(not np.isfinite(v[row]) for v in lookup.values.values()):
                state.n_unlabelled += 1
                if len(state.unlabelled) < _EXAMPLES:
                    state.unlabelled.append(name)
                continue
        keep_rows.append(i)
        ids.append(sid)
        label_rows.append(row)
    if not keep_rows:
        return None
    cols = [c for c in chunk.columns if c != ID_COLUMN]
    return {ID_COLUMN: ids, "_row": label_rows, **{c: chunk[c].iloc[keep_rows].tolist() for c in cols}}


# -- writing -----------------------------------------------------------------------------------
def _open_writer(out: Path, grid, flux: str, trunc: XpTruncation, targets: Mapping[str, str], paths, forms,
                 with_error: bool, split_fractions, seed: int) -> DatasetWriter:
    attrs: dict = {}
    write_prepared_attrs(attrs, grid=grid, rest_frame=None, redshift_fallback=None, bad_pixels="interpolate",
                         bad_mask_bits=1, min_good_fraction=1.0,
                         prepared_by=f"astroreg.ingest.ingest_gaia_xp ({flux} flux, truncation {trunc})")
    attrs[XP_FLUX_KIND] = flux
    attrs[XP_TRUNCATION] = str(trunc)
    attrs["xp_forms"] = sorted(set(forms))
    attrs["xp_files"] = [str(p) for p in paths]
    spec = SpectraSpec(
        n_pixels=grid.n_pixels, wavelength=tuple(grid.wavelength()), flux_unit=XP_FLUX_UNITS[flux],
        with_ivar=with_error, with_mask=True, medium="vacuum", mask_dtype="uint8", mask_bad_bits=1,
        mask_bits="1: bad sample (never set: sources with a non-finite sample are skipped)", attrs=attrs)
    writer = DatasetWriter(out, targets=dict(targets), spectra=spec,
                           description=f"Gaia XP spectra ({flux} flux, {trunc.n_kept} samples, truncation {trunc}) "
                                       f"from {', '.join(p.name for p in paths)}")
    writer.open()
    if split_fractions is not None:
        writer.make_splits(split_fractions, seed=seed)
    return writer


def _append(writer: DatasetWriter, ids: np.ndarray, fl: np.ndarray, err: np.ndarray | None, rows: list,
            lookup: _Labels | None, state: ChunkState) -> None:
    spectra = {"flux": fl.astype(np.float32), "mask": np.zeros(fl.shape, np.uint8)}
    if writer.spectra.with_ivar:
        if err is None:
            raise ValueError("some XP files give flux errors and others do not; ingest them separately")
        spectra["ivar"] = (1.0 / err.astype(np.float64) ** 2).astype(np.float32)
    targets = {}
    if lookup is not None:
        r = np.asarray(rows, dtype=np.int64)
        state.labelled_rows.update(r.tolist())
        targets = {t: v[r] for t, v in lookup.values.items()}
    writer.append([str(s) for s in ids.tolist()], spectra=spectra, targets=targets)
