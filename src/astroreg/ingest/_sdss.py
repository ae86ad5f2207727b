"""Ingest SDSS ``spec-PLATE-MJD-FIBER.fits`` files plus a label catalogue into an astroreg dataset.

Storage decision. SDSS (and BOSS) co-added spectra are sampled on one global grid,
``loglam = log10(wavelength / Angstrom) = i * 1e-4`` for integer ``i``; each file holds a
contiguous stretch of it, so every spectrum is an integer offset into a common grid. By
default the spectra are stored natively on that common grid, from the smallest to the
largest loglam over the ingested files: no interpolation, no loss, and
``/spectra/wavelength`` is one (L,) array of vacuum wavelengths in Angstrom. Pixels
outside a spectrum's coverage have flux 0, ivar 0 and the mask bits :data:`PADDING_MASK`.
The SDSS ``and_mask`` is stored as the 32-bit ``/spectra/mask``, with the bits that mark
bad pixels (:data:`SDSS_BAD_PIXEL_BITS`) in its ``bad_bits`` attribute. Resampling onto
an analysis grid (the paper's 4000 points) is a fitted preprocessing step
(:class:`~astroreg.preprocess.SpectrumResampler`); ``grid=`` does it at ingest time instead,
and ``rest_frame=`` (e.g. ``"RV_ADOP"``) also shifts every spectrum to its rest frame there.

Prepared datasets. A survey of millions of spectra is best resampled and shifted once, at
ingest, rather than at every prediction: ``grid=`` plus ``rest_frame=`` run the same
:class:`~astroreg.preprocess.SpectrumResampler` code (same numbers) that a recipe runs on
native data, and record what was done in the generic ``/spectra`` attributes of
:mod:`astroreg.data._prepared` (:func:`~astroreg.data.write_prepared_attrs`): the grid, the
rest-frame column, the redshift fallback, the bad-pixel handling and bits. A recipe's
spectra input reads them (:func:`~astroreg.data.prepared_spectra_info`) and, when they
match its settings, only standardises (reading the flux alone).

The files are read twice, in bounded memory and in parallel: a scan reads the headers,
the ids and the loglam range (so the common grid is known before anything is written and
unmatched files are never read in full); then the spectra are read chunk by chunk and
appended. Unreadable, truncated, off-grid, duplicate or unmatched files are skipped and
reported, never fatal, unless none is usable. Reading one file is
:mod:`astroreg.ingest._sdss_fits`'s part; this module joins, chunks, parallelises and reports.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import types
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from astroreg.data._catalog import read_catalog, require_columns
from astroreg.data._dataset import DatasetWriter, SpectraSpec, _check_fractions
from astroreg.data._parallel import make_pool, map_chunks
from astroreg.data._prepared import DEFAULT_MIN_GOOD_FRACTION, write_prepared_attrs
from astroreg.ingest._batch import LazyWriter
from astroreg.ingest._images import (
    DEFAULT_SPLITS,
    REPORT_SUFFIX,
    IngestReport,
    _stem,
    finish_ingest,
)
from astroreg.ingest._labels import MISSING_LABEL, first_rows, target_values
from astroreg.ingest._sdss_fits import (
    EXTRA_COLUMNS,
    OFF_GRID_HINT,
    PADDING_MASK,
    SDSS_BAD_PIXEL_BITS,
    SDSS_LOGLAM_STEP,
    SpecFile,
    read_spectra_resampled,
    read_spectrum_file,
    scan_spectrum_file,
)
from astroreg.preprocess._spectra import WavelengthGrid, parse_grid, redshift_velocity

SSPP_TARGETS: Mapping[str, str] = types.MappingProxyType(
    {"TEFF_ADOP": "K", "FEH_ADOP": "dex", "LOGG_ADOP": "dex", "RV_ADOP": "km/s"})
"""Default targets: the SEGUE Stellar Parameter Pipeline's adopted values and their units."""

SDSS_ID_COLUMNS: tuple[str, str, str] = ("PLATE", "MJD", "FIBERID")
"""Default catalogue columns joined with each file's plate, MJD and fiber."""

REDSHIFT_COLUMN = "Z"
"""HDU 2 column whose redshift gives the velocity of objects without ``rest_frame`` (as the recipe default)."""
_SUFFIXES = (".fits", ".fit")
_PREPARED_BAD_PIXELS = "interpolate"  # the spectra input's default bad_pixels
_MIN_FILES_FOR_POOL = 64


@dataclass(frozen=True)
class SpectraIngestReport(IngestReport):
    """Outcome of :func:`ingest_sdss_spectra`: an :class:`IngestReport` for spectrum files.

    ``n_rows`` counts the spectrum files found and ``skipped`` lists ``(file, reason)`` for
    each file left out, in file order.

    Attributes
    ----------
    n_pixels : int, optional
        Pixels per stored spectrum (L).
    wavelength_range : (float, float), optional
        First and last wavelength of the stored grid, Angstrom (vacuum).
    resampled : bool
        Whether the spectra were resampled (``grid=``) rather than stored natively.
    rest_frame : str, optional
        Radial-velocity column of the rest-frame shift at ingest (``rest_frame=``).
    n_rv_from_redshift : int
        Ingested spectra whose velocity came from the HDU 2 redshift ``Z`` (no ``rest_frame`` value).
    n_catalog_rows : int
        Rows in the label catalogue.
    n_catalog_unmatched : int
        Catalogue rows that no ingested file matched.
    min_good_fraction : float
        Least fraction of good pixels a spectrum needed (see :func:`ingest_sdss_spectra`).
    n_low_coverage : int
        Files skipped because fewer of their pixels were good (also in ``skipped``).
    """

    n_pixels: int | None = None
    wavelength_range: tuple[float, float] | None = None
    resampled: bool = False
    rest_frame: str | None = None
    n_rv_from_redshift: int = 0
    n_catalog_rows: int = 0
    n_catalog_unmatched: int = 0
    min_good_fraction: float = DEFAULT_MIN_GOOD_FRACTION
    n_low_coverage: int = 0

    def to_dict(self) -> dict:
        """JSON-ready summary (paths as strings, skipped files as ``{"file", "reason"}``)."""
        d = {k: v for k, v in super().to_dict().items() if k not in ("image_shape", "pixel_scale_arcsec")}
        return {**d, "n_files": self.n_rows, "n_pixels": self.n_pixels,
                "wavelength_range_angstrom": list(self.wavelength_range) if self.wavelength_range else None,
                "resampled": self.resampled, "rest_frame": self.rest_frame,
                "n_rv_from_redshift": self.n_rv_from_redshift, "n_catalog_rows": self.n_catalog_rows,
                "n_catalog_unmatched": self.n_catalog_unmatched, "min_good_fraction": self.min_good_fraction,
                "n_low_coverage": self.n_low_coverage}

    def _headline(self) -> str:
        if not self.n_ok:
            return f"ingested none of {self.n_rows} spectrum files"
        lo, hi = self.wavelength_range
        how = "resampled onto a common" if self.resampled else "native pixels on a common log-wavelength"
        frame = f", rest frame of {self.rest_frame}" if self.rest_frame else ""
        return (f"ingested {self.n_ok} of {self.n_rows} spectrum files into {self.out} ({how} "
                f"{self.n_pixels}-pixel grid, {lo:.1f}-{hi:.1f} Angstrom{frame})")

    def _extra_lines(self) -> list[str]:
        lines = [f"catalogue: {self.n_catalog_rows} rows, {self.n_catalog_unmatched} without an ingested spectrum"]
        if self.n_low_coverage:
            lines.append(f"coverage: {self.n_low_coverage} spectra skipped with fewer than "
                         f"{self.min_good_fraction:.0%} good pixels on the grid")
        if self.rest_frame:
            lines.append(f"rest frame: {self.n_rv_from_redshift} velocities from the redshift {REDSHIFT_COLUMN} "
                         f"(no {self.rest_frame})")
        return lines


def ingest_sdss_spectra(
    spectra_dir: str | os.PathLike,
    catalog: str | os.PathLike | pd.DataFrame,
    out: str | os.PathLike,
    *,
    id_columns: Sequence[str] = SDSS_ID_COLUMNS,
    id_column: str | None = None,
    targets: Mapping[str, str] = SSPP_TARGETS,
    grid: WavelengthGrid | tuple[float, float, int] | Mapping | Sequence[Mapping] | None = None,
    rest_frame: str | None = None,
    min_good_fraction: float = DEFAULT_MIN_GOOD_FRACTION,
    split_fractions: Mapping[str, float] | None = DEFAULT_SPLITS,
    seed: int = 0,
    n_jobs: int | None = None,
    parallel: Literal["processes", "threads"] = "processes",
    chunk_size: int = 256,
    progress: bool = True,
) -> SpectraIngestReport:
    """Turn a folder of SDSS spectrum files and a label catalogue into an astroreg dataset.

    Every ``.fits``/``.fit`` file under ``spectra_dir`` (sub-folders included, e.g. SDSS's
    ``PLATE/spec-PLATE-MJD-FIBER.fits`` layout) is read: HDU 1 (COADD: ``loglam``,
    ``flux``, ``ivar``, ``and_mask``) and HDU 2 (SPECOBJ or SPALL: ``PLATE``, ``MJD``,
    ``FIBERID``, ``Z``, ``CLASS``, ``SUBCLASS``, ``SN_MEDIAN_ALL``). The plate, MJD and
    fiber come from HDU 2, else from the primary header (``PLATEID``, ``MJD``,
    ``FIBERID``), else from the file name. Each file is joined with the catalogue row
    with the same plate, MJD and fiber (or, with ``id_column``, the same file name).

    Stored (see the module notes for the layout): ``/spectra`` flux (1e-17
    erg/s/cm^2/Angstrom), ivar, the 32-bit ``and_mask`` as mask, and the wavelength grid
    in Angstrom (vacuum); ``/targets/<column>`` with -9999 and NaN stored as NaN (kept,
    as missing); ``/tabular`` ``Z``, ``CLASS``, ``SUBCLASS``, ``SN_MEDIAN_ALL`` where the
    files have them; ids ``"PPPP-MMMMM-FFFF"`` (the file name's stem with ``id_column``).
    Beware: a star's ``Z`` is its radial velocity over c, so it gives ``RV_ADOP`` away.

    Skipped and reported, never fatal: files that are unreadable, truncated or corrupt,
    lack the COADD columns, are off SDSS's loglam grid (native storage only), have no
    plate/MJD/fiber (or match several catalogue rows, or repeat an earlier file's id),
    match no catalogue row, or have too few good pixels (``min_good_fraction``).

    Parameters
    ----------
    spectra_dir : path-like
        Folder with the spectrum files (searched recursively; compressed files are not read).
    catalog : path-like or pandas.DataFrame
        Labels: a FITS table (e.g. SSPP's ``sppParams``), CSV or Parquet file (see
        :func:`read_catalog`), or a DataFrame.
    out : path-like
        Dataset file to write (``.h5``); it appears only when complete.
    id_columns : (str, str, str)
        Catalogue columns with plate, MJD and fiber, e.g. ``("PLATE", "MJD", "FIBER")``.
    id_column : str, optional
        Join on this catalogue column instead, matched against the file name without
        ``.fits`` (``"spec-0411-51817-0119"``, or a value with the suffix).
    targets : mapping of str to str
        Catalogue columns stored as targets, with units. Default :data:`SSPP_TARGETS`.
        ``{}`` stores none (spectra to predict on).
    grid : WavelengthGrid or any value of :func:`~astroreg.preprocess.parse_grid`, optional
        Resample at ingest time onto this grid (cubic spline, clamped ends, as
        :class:`~astroreg.preprocess.SpectrumResampler`) instead of storing native pixels;
        the mask holds the nearest native pixel's bits. E.g. the paper's
        ``(3.5754, 3.9670, 4000)`` (``loglam_min, loglam_max, n_pixels``, log10 Angstrom),
        or ``{"scale": "linear", "start": 3800, "stop": 9200, "n": 2701}``. The resampling
        is the recipe's (bad pixels interpolated, the same numbers as resampling a native
        dataset at training time) and is recorded in the ``/spectra`` attributes
        (:func:`~astroreg.data.write_prepared_attrs`, read by
        :func:`~astroreg.data.prepared_spectra_info`).
    rest_frame : str, optional
        Catalogue column with each object's radial velocity in km/s (e.g. ``"RV_ADOP"``;
        -9999 and NaN: missing). With ``grid=``, the spectra are resampled in the rest
        frame (relativistic Doppler shift, as the recipe's
        ``inputs.<name>.rest_frame_column`` of a spectra input); objects without a velocity take it from
        the HDU 2 redshift ``Z`` (``v = c ((1+z)^2 - 1) / ((1+z)^2 + 1)``, the recipe's
        ``missing_rv: redshift``); those without either are skipped. A recipe with the
        same grid, ``rest_frame_column`` and ``bad_pixels`` then skips resampling and
        only standardises: the fast path for predicting on millions of spectra.
    min_good_fraction : float
        Least fraction, in [0, 1], of good pixels (finite flux, ``ivar > 0``, none of the
        bad mask bits :data:`SDSS_BAD_PIXEL_BITS`) for a spectrum to be stored; others are
        skipped and reported. With ``grid=``, over the pixels of that grid (in the rest
        frame with ``rest_frame=``; a pixel next to a bad native pixel counts as bad): a
        quasar at z = 2.56 shifted to its rest frame has no good pixel on the paper's
        optical grid. Natively, over the file's own pixels, since the common grid is the
        union of every file's range. Default :data:`DEFAULT_MIN_GOOD_FRACTION`; 0 keeps
        every spectrum.
    split_fractions : mapping of str to float, or None
        Random split fractions stored in the dataset; ``None`` stores no splits.
    seed : int
        Seed of the random splits.
    n_jobs : int, optional
        Parallel workers. ``1`` reads serially; ``None`` or ``-1``: serial below 64
        files, else one process per core (or ``min(16, cores + 4)`` threads).
    parallel : {"processes", "threads"}
        Processes suit local disks: parsing FITS headers holds Python's GIL, so
        processes scale with the cores while threads do not. Threads suit network file
        systems, where waiting for the disk dominates.
    chunk_size : int
        Files read and appended per chunk; at most two chunks are in memory at a time.
    progress : bool
        Show progress bars and print the summary.

    Returns
    -------
    SpectraIngestReport
        Counts and the skipped ``(file, reason)`` pairs; also written as JSON to
        ``<out>.ingest-report.json``.

    Raises
    ------
    FileNotFoundError
        If ``spectra_dir`` or the catalogue does not exist.
    ValueError
        If there are no spectrum files, the catalogue lacks an id or target column, a
        target is not numeric, or an option is invalid.
    NothingIngestedError
        A ``ValueError`` raised when no file could be ingested; the report is still written.

    Examples
    --------
    >>> report = ingest_sdss_spectra("spectra/", "sppParams.fits", "stars.h5",  # doctest: +SKIP
    ...                              id_columns=("PLATE", "MJD", "FIBER"))
    >>> report.n_ok, report.n_skipped  # doctest: +SKIP
    (49873, 127)
    """
    spectra_dir, out = Path(spectra_dir), Path(out)
    given_grid = grid
    grid = _check_options(id_columns, id_column, grid, chunk_size, n_jobs, parallel, split_fractions)
    _check_min_good_fraction(min_good_fraction)
    if rest_frame is not None and grid is None:
        raise ValueError(f"rest_frame={rest_frame!r} needs grid=(loglam_min, loglam_max, n_pixels) "
                         "(CLI: --grid with --rest-frame): the shift is done while resampling")
    files = _find_spectra(spectra_dir)
    if isinstance(catalog, pd.DataFrame):
        frame, source = catalog.reset_index(drop=True), "the catalogue DataFrame"
    else:
        frame, source = read_catalog(catalog), str(catalog)
    targets = {str(k): str(v) for k, v in targets.items()}
    lookup = _CatalogLookup.build(frame, source, id_columns, id_column, targets)
    rv_catalog = None if rest_frame is None else _catalog_rv(frame, source, rest_frame)

    workers = _n_workers(n_jobs, len(files), parallel)
    skipped: dict[int, tuple[str, str]] = {}
    low_coverage = 0
    pool = make_pool(parallel, workers)
    with LazyWriter(pool=pool) as batch:
        with warnings.catch_warnings():
            from astropy.utils.exceptions import AstropyWarning

            # astropy warns about odd headers and short files; the reasons go in the report.
            warnings.simplefilter("ignore", AstropyWarning)
            scanned: list[SpecFile] = []
            with _progress_bar(len(files), progress, "scan spectra") as bar:
                for chunk, results in map_chunks(_scan_batch, files, (), chunk_size, pool, workers):
                    scanned += results
                    bar.update(len(chunk))
            kept = _match(scanned, lookup, skipped, native=grid is None)
            rvs, from_z = (None, set()) if rv_catalog is None else _rest_frame_rv(kept, rv_catalog, rest_frame,
                                                                                 skipped)
            if rvs is not None:
                kept = [k for k in kept if k[0].index not in skipped]
            loglam = _native_grid(kept) if grid is None else None
            wavelength = 10.0 ** loglam if grid is None else grid.wavelength()
            extras = [c for c in EXTRA_COLUMNS if any(c in s.extras for s, _, _ in kept)]
            with _progress_bar(len(files), progress, "read spectra") as bar:
                bar.update(len(files) - len(kept))
                items = [(s, None if rvs is None else rvs[s.index]) for s, _, _ in kept]
                offset = 0
                for chunk, results in map_chunks(_read_batch, items, (grid, rvs is not None), chunk_size, pool,
                                                 workers):
                    rows = kept[offset:offset + len(chunk)]
                    offset += len(chunk)
                    good = []
                    for (spec, row, obj_id), (arrays, reason) in zip(rows, results):
                        if arrays is not None:
                            reason = _coverage_reason(arrays, grid, rest_frame, min_good_fraction)
                            low_coverage += reason is not None
                        if reason is not None:
                            skipped[spec.index] = (spec.rel, reason)
                        else:
                            good.append((spec, row, obj_id, arrays))
                    if good:
                        writer = batch.open(_open_writer, out, wavelength, targets, extras, source, spectra_dir,
                                            split_fractions, seed, grid=grid, rest_frame=rest_frame,
                                            min_good_fraction=min_good_fraction)
                        _append(writer, good, loglam, grid is None, lookup, extras)
                    bar.update(len(chunk))
                    bar.set_postfix(ok=batch.n_objects, skipped=len(skipped), refresh=False)
        n_ok = batch.n_objects
        used = {row for s, row, _ in kept if s.index not in skipped}
        n_from_z = len(from_z - set(skipped))

    wl = wavelength if n_ok else None
    report = SpectraIngestReport(
        out=out,
        report_path=out.with_name(out.name + REPORT_SUFFIX),
        n_rows=len(files),
        n_ok=n_ok,
        skipped=[skipped[i] for i in sorted(skipped)],
        n_pixels=int(wavelength.size) if n_ok else None,
        wavelength_range=(float(wl[0]), float(wl[-1])) if n_ok else None,
        resampled=grid is not None,
        rest_frame=rest_frame,
        n_rv_from_redshift=n_from_z,
        n_catalog_rows=len(frame),
        n_catalog_unmatched=len(frame) - len(used),
        min_good_fraction=float(min_good_fraction),
        n_low_coverage=low_coverage,
    )
    settings = {"spectra_dir": str(spectra_dir), "catalog": source, "id_columns": list(id_columns),
                "id_column": id_column, "targets": targets, "grid": None if grid is None else _settings_grid(given_grid, grid),
                "rest_frame": rest_frame, "min_good_fraction": float(min_good_fraction),
                "split_fractions": None if split_fractions is None else dict(split_fractions), "seed": seed}
    return finish_ingest(
        report, settings, progress=progress,
        nothing=f"no usable spectrum in {spectra_dir}: all {len(files)} files were skipped",
        advice="check that the catalogue's id columns match the files",
    )


# -- options, files and the catalogue -------------------------------------------------------
def _check_options(id_columns, id_column, grid, chunk_size, n_jobs, parallel, split_fractions) -> WavelengthGrid | None:
    """Check the options; the parsed grid, or ``None`` for native storage."""
    if isinstance(id_columns, str) or len(tuple(id_columns)) != 3:
        raise ValueError(f"id_columns must name 3 catalogue columns (plate, MJD, fiber), got {id_columns!r}")
    if id_column is not None and tuple(id_columns) != SDSS_ID_COLUMNS:
        raise ValueError("give either id_columns= (plate, MJD, fiber) or id_column= (file names), not both")
    if grid is not None:
        try:
            grid = parse_grid(grid)
        except ValueError as err:
            raise ValueError(f"grid must be a wavelength grid (CLI: --grid loglam_min loglam_max n_pixels): {err}"
                             ) from None
    if not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    if n_jobs is not None and (not isinstance(n_jobs, (int, np.integer)) or (n_jobs < 1 and n_jobs != -1)):
        raise ValueError(f"n_jobs must be a positive integer, -1 or None (automatic), got {n_jobs!r}")
    if parallel not in ("processes", "threads"):
        raise ValueError(f"parallel must be 'processes' or 'threads', got {parallel!r}")
    if split_fractions is not None:
        _check_fractions(split_fractions)
    return grid


def _settings_grid(given, grid: WavelengthGrid):
    """The grid as the ingest report's settings show it: ``[lo, hi, n]`` as given, others as ``to_dict()``."""
    if isinstance(given, (tuple, list)) and len(given) == 3 and not isinstance(given[0], Mapping):
        return list(given)
    return grid.to_dict()


def _check_min_good_fraction(value) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"min_good_fraction must be a number in [0, 1] (the least fraction of good pixels on the "
                         f"grid), got {value!r}; 0 keeps every spectrum")


def _coverage_reason(arrays: tuple, grid, rest_frame: str | None, minimum: float) -> str | None:
    """Why a read spectrum has too few good pixels, or None when it has enough.

    ``arrays`` is ``(pix0, flux, ivar, mask)`` (native) or ``(flux, ivar, mask)`` on ``grid``.
    """
    flux, ivar, mask = arrays[-3:]
    good = np.isfinite(flux) & (ivar > 0) & ((mask & np.uint32(SDSS_BAD_PIXEL_BITS)) == 0)
    n_good, n = int(good.sum()), good.size
    if n_good >= minimum * n:
        return None
    if grid is None:
        where = "of its own pixels"
    else:
        wavelength = grid.wavelength()
        lo, hi = float(wavelength.min()), float(wavelength.max())
        frame = f" in the rest frame of {rest_frame}" if rest_frame else ""
        where = f"on the grid {lo:.0f}-{hi:.0f} Angstrom{frame}"
    return (f"too few good pixels: {n_good} of {n} ({n_good / n:.1%}) {where} have finite flux, ivar > 0 and no "
            f"bad mask bit; the minimum is {minimum:.0%} (min_good_fraction=, CLI: --min-good-fraction; "
            "0 keeps it)")


def _find_spectra(spectra_dir: Path) -> list[tuple[int, Path, str]]:
    """``(index, path, name relative to spectra_dir)`` of every spectrum file, sorted by name."""
    if not spectra_dir.exists():
        raise FileNotFoundError(
            f"spectra folder {spectra_dir} does not exist; pass the folder with the spec-*.fits files")
    if not spectra_dir.is_dir():
        raise ValueError(f"spectra folder {spectra_dir} is a file, not a folder; pass the folder that holds it")
    found, compressed = [], 0
    for root, _, names in os.walk(spectra_dir):
        for name in names:
            low = name.lower()
            if low.endswith(_SUFFIXES) and not name.startswith("."):
                found.append(Path(root, name))
            elif low.endswith((".fits.gz", ".fits.bz2", ".fits.fz")):
                compressed += 1
    if not found:
        extra = f" ({compressed} compressed ones: decompress them first)" if compressed else ""
        raise ValueError(f"no .fits or .fit files in {spectra_dir}{extra}; pass the folder with the spec-*.fits files")
    found.sort(key=lambda p: p.relative_to(spectra_dir).as_posix())
    return [(i, p, p.relative_to(spectra_dir).as_posix()) for i, p in enumerate(found)]


@dataclass
class _CatalogLookup:
    rows: dict  # join key -> first catalogue row
    repeats: dict  # join key -> number of rows, for keys on more than one row
    targets: dict[str, np.ndarray]  # name -> (n_rows,) float64, NaN = missing
    by_name: bool
    source: str

    @classmethod
    def build(cls, frame, source, id_columns, id_column, targets) -> _CatalogLookup:
        if id_column is not None:
            require_columns(frame, [id_column], source, "pass an existing id_column= (CLI: --id-column)")
            keys = [None if pd.isna(v) or not str(v).strip() else _stem(str(v).strip()) for v in frame[id_column]]
        else:
            cols = [str(c) for c in id_columns]
            require_columns(frame, cols, source,
                            "pass id_columns= naming the plate, MJD and fiber columns (CLI: --id-columns), "
                            "or id_column= for a column of file names (CLI: --id-column)")
            nums = [pd.to_numeric(frame[c], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan) for c in cols]
            ok = np.all([np.isfinite(a) & (a == np.round(a)) for a in nums], axis=0)
            keys = [(int(p), int(m), int(f)) if good else None for good, p, m, f in zip(ok, *nums)]
        require_columns(frame, list(targets), source,
                        "pass targets that are catalogue columns (CLI: --target NAME:UNIT)")
        values = target_values(frame, targets, source,
                               "targets must be numbers: pick a numeric column or clean the catalogue")
        rows, repeats = first_rows(keys)
        return cls(rows=rows, repeats=repeats, targets=values, by_name=id_column is not None, source=source)


# -- scanning ---------------------------------------------------------------------------------
def _scan_batch(items: Sequence[tuple[int, Path, str]]) -> list[SpecFile]:
    with _quiet_in_worker():
        return [scan_spectrum_file(i, p, rel) for i, p, rel in items]


def _match(scanned: list[SpecFile], lookup: _CatalogLookup, skipped: dict, native: bool) -> list:
    """``(spec, catalogue row, id)`` of the files to read; the others go to ``skipped``."""
    kept, first = [], {}
    for spec in scanned:
        if spec.reason is None and native and not spec.on_grid:
            # Before the common grid is made: one stray file must not stretch it.
            spec.reason = OFF_GRID_HINT.format(detail=f"loglam {spec.loglam_ends[0]:.6f} to {spec.loglam_ends[1]:.6f} "
                                                      f"over {spec.n_pixels} pixels")
        if spec.reason is None:
            obj_id = _stem(Path(spec.rel).name) if lookup.by_name else _format_key(spec.key)
            key = obj_id if lookup.by_name else spec.key
            if not lookup.by_name and spec.key is None:
                spec.reason = ("no PLATE/MJD/FIBERID in HDU 2, the primary header or the file name "
                               "(spec-PLATE-MJD-FIBER.fits); join on file names with id_column= (CLI: --id-column)")
            elif obj_id in first:
                spec.reason = f"duplicate id {obj_id!r} (same as {first[obj_id]})"
            elif key not in lookup.rows:
                what = f"id {obj_id!r}" if lookup.by_name else "PLATE={}, MJD={}, FIBERID={}".format(*spec.key)
                spec.reason = f"no catalogue row with {what} in {lookup.source}"
            elif key in lookup.repeats:
                spec.reason = (f"{lookup.repeats[key]} catalogue rows match id {obj_id!r} in {lookup.source}; "
                               "remove the duplicates from the catalogue")
            else:
                first[obj_id] = spec.rel
                kept.append((spec, lookup.rows[key], obj_id))
                continue
        skipped[spec.index] = (spec.rel, spec.reason)
    return kept


def _format_key(key: tuple[int, int, int] | None) -> str:
    return "" if key is None else f"{key[0]:04d}-{key[1]:05d}-{key[2]:04d}"


def _native_grid(kept: list) -> np.ndarray:
    """loglam of the stored pixels of native storage: the SDSS pixels of all kept files."""
    if not kept:
        return np.zeros(0)
    lo = min(s.pix0 for s, _, _ in kept)
    hi = max(s.pix0 + s.n_pixels for s, _, _ in kept)
    return np.arange(lo, hi) * SDSS_LOGLAM_STEP


# -- reading ----------------------------------------------------------------------------------
def _read_batch(items: Sequence[tuple[SpecFile, float | None]], grid, shift: bool
                ) -> list[tuple[tuple | None, str | None]]:
    with _quiet_in_worker():
        if grid is None:
            return [read_spectrum_file(s, None) for s, _ in items]
        return read_spectra_resampled([s for s, _ in items], grid, [rv for _, rv in items] if shift else None,
                                      bad_pixels=_PREPARED_BAD_PIXELS)


def _catalog_rv(frame: pd.DataFrame, source: str, column: str) -> np.ndarray:
    """The catalogue's radial velocities in km/s, float64, NaN where missing (-9999 or NaN)."""
    require_columns(frame, [column], source, "pass rest_frame= naming the radial-velocity column (CLI: --rest-frame)")
    col = frame[column]
    if not pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
        raise ValueError(f"rest-frame column {column!r} in {source} is not numeric (dtype {col.dtype}); "
                         "name the radial-velocity column in km/s, e.g. RV_ADOP")
    v = col.to_numpy(dtype=np.float64, na_value=np.nan)
    return np.where(v == MISSING_LABEL, np.nan, v)


def _rest_frame_rv(kept: list, rv_catalog: np.ndarray, column: str, skipped: dict) -> tuple[dict, set]:
    """``{file index: RV km/s}`` of the kept files and the indices whose RV came from the redshift Z.

    The recipe's rule (a spectra input's ``missing_rv: redshift``): a missing velocity is
    taken from the HDU 2 redshift; files with neither go to ``skipped``.
    """
    rvs, from_z = {}, set()
    for spec, row, obj_id in kept:
        rv = float(rv_catalog[row])
        if not np.isfinite(rv):
            z = spec.extras.get(REDSHIFT_COLUMN)
            rv = float(redshift_velocity(z)) if isinstance(z, float) else np.nan
            if np.isfinite(rv):
                from_z.add(spec.index)
        if np.isfinite(rv):
            rvs[spec.index] = rv
        else:
            skipped[spec.index] = (spec.rel, f"no radial velocity: {column} is missing for {obj_id!r} and HDU 2 "
                                             f"has no {REDSHIFT_COLUMN}; cannot shift it to the rest frame")
    return rvs, from_z


def _open_writer(out, wavelength, targets, extras, source, spectra_dir, split_fractions, seed, grid,
                 rest_frame, min_good_fraction) -> DatasetWriter:
    resampled = grid is not None
    attrs: dict = {}
    if resampled:
        write_prepared_attrs(attrs, grid=grid, rest_frame=rest_frame,
                             redshift_fallback=REDSHIFT_COLUMN if rest_frame else None,
                             bad_pixels=_PREPARED_BAD_PIXELS, bad_mask_bits=SDSS_BAD_PIXEL_BITS,
                             min_good_fraction=float(min_good_fraction),
                             prepared_by="astroreg.preprocess.SpectrumResampler")
    spec = SpectraSpec(attrs=attrs,
        n_pixels=int(wavelength.size), wavelength=tuple(wavelength), with_ivar=True, with_mask=True,
        medium="vacuum", mask_dtype="uint32", mask_bad_bits=SDSS_BAD_PIXEL_BITS,
        mask_bits=("SDSS spPixMask bits of and_mask" + (" (nearest native pixel)" if resampled else "")
                   + "; bits 24 (NODATA) and 31 set outside a spectrum's coverage"),
    )
    how = f"resampled onto {grid.describe()}" if resampled else "native pixels on the common SDSS loglam grid"
    how += f", rest frame of {rest_frame}" if rest_frame else ""
    writer = DatasetWriter(out, targets=targets, spectra=spec, tabular={c: EXTRA_COLUMNS[c] for c in extras},
                           description=f"SDSS spectra from {spectra_dir} ({how}) with labels from {source}")
    writer.open()
    if split_fractions is not None:
        writer.make_splits(split_fractions, seed=seed)
    return writer


def _append(writer: DatasetWriter, good: list, loglam: np.ndarray | None, native: bool, lookup, extras) -> None:
    """Write one chunk; ``loglam`` is the native grid (``None`` for resampled spectra)."""
    n = len(good)
    if native:
        width = loglam.size
        flux = np.zeros((n, width), np.float32)
        ivar = np.zeros((n, width), np.float32)
        mask = np.full((n, width), PADDING_MASK, np.uint32)
        start = int(round(loglam[0] / SDSS_LOGLAM_STEP))
        for j, (_, _, _, (pix0, f, iv, m)) in enumerate(good):
            a = pix0 - start
            flux[j, a:a + f.size], ivar[j, a:a + f.size], mask[j, a:a + f.size] = f, iv, m
    else:
        flux, ivar, mask = (np.stack([arrays[k] for *_, arrays in good]) for k in range(3))
    rows = np.asarray([row for _, row, _, _ in good])
    tabular = {}
    for c in extras:
        values = [s.extras.get(c) for s, *_ in good]
        if c in ("CLASS", "SUBCLASS"):
            tabular[c] = np.asarray(["" if v is None else str(v) for v in values], dtype=object)
        else:
            tabular[c] = np.asarray([np.nan if v is None else v for v in values], dtype=np.float64)
    writer.append(
        [obj_id for _, _, obj_id, _ in good],
        spectra={"flux": flux, "ivar": ivar, "mask": mask},
        tabular=tabular,
        targets={t: v[rows] for t, v in lookup.targets.items()},
    )


# -- parallel map -----------------------------------------------------------------------------
def _n_workers(n_jobs: int | None, n_files: int, parallel: str) -> int:
    if n_jobs is None or n_jobs == -1:
        if n_files < _MIN_FILES_FOR_POOL:
            return 1
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        return cores if parallel == "processes" else min(16, cores + 4)
    return int(n_jobs)


class _quiet_in_worker:
    """Silence astropy's warnings in worker processes (the main process silences its own)."""

    def __enter__(self):
        self._ctx = None
        if multiprocessing.parent_process() is not None:
            from astropy.utils.exceptions import AstropyWarning

            self._ctx = warnings.catch_warnings()
            self._ctx.__enter__()
            warnings.simplefilter("ignore", AstropyWarning)
        return self

    def __exit__(self, *exc):
        if self._ctx is not None:
            self._ctx.__exit__(*exc)


def _progress_bar(total: int, enabled: bool, desc: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="file", desc=desc, disable=not enabled, file=sys.stderr)
