"""Read Gaia XP (BP/RP) spectrum files in chunks: CSV, ECSV or FITS, continuous or sampled.

The Gaia archive and GaiaXPy write XP spectra in a few forms; each is recognised by its
columns (:func:`detect_form`):

- ``continuous``: ``bp_coefficients``, ``bp_coefficient_errors``,
  ``bp_coefficient_correlations``, ``bp_n_parameters``, ``bp_standard_deviation`` and the
  same for RP, as the archive's ``xp_continuous_mean_spectrum``;
- ``calibrated``: ``flux`` and ``flux_error`` of 343 samples, 336-1020 nm every 2 nm, in
  W m^-2 nm^-1, as the archive's ``xp_sampled_mean_spectrum`` and GaiaXPy's ``calibrate``;
- ``smsgen``: ``bp_flux`` and ``rp_flux`` (optionally ``bp_flux_error``, ``rp_flux_error``)
  of :data:`~astroreg.preprocess._xp_layout.XP_SAMPLES` internally calibrated samples each;
- ``converted``: GaiaXPy ``convert`` output, one row per source and band (``xp`` is BP or
  RP) with ``flux`` and ``flux_error`` of :data:`XP_SAMPLES` samples.

Array cells are numbers in a CSV string (``"(1.0, 2.0, ...)"`` or ``"[...]"``) or arrays
(ECSV, FITS). A cell that is empty or cannot be parsed becomes ``None`` here; the ingest
reports the source and skips it.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from astroreg.preprocess._xp_layout import XP_SAMPLES

ID_COLUMN = "source_id"
BAND_PREFIXES = ("bp", "rp")
CONTINUOUS_ARRAYS = ("coefficients", "coefficient_errors", "coefficient_correlations")
CONTINUOUS_SCALARS = ("n_parameters", "standard_deviation")
ARCHIVE_SAMPLED_NM = np.arange(336.0, 1020.0 + 1.0, 2.0)
"""Wavelengths (nm) of the archive's sampled XP spectra (and GaiaXPy ``calibrate``'s default): 343 samples."""

FORMS = ("continuous", "calibrated", "smsgen", "converted")
_SUFFIXES = {".csv": "csv", ".txt": "csv", ".ecsv": "ecsv", ".fits": "fits", ".fit": "fits", ".fits.gz": "fits"}


def continuous_columns() -> list[str]:
    """Columns of the continuous form that GaiaXPy needs (correlation style, as the archive's)."""
    return [ID_COLUMN] + [f"{b}_{c}" for b in BAND_PREFIXES for c in CONTINUOUS_ARRAYS + CONTINUOUS_SCALARS]


def form_columns(form: str) -> list[str]:
    """Columns read for ``form``; optional ones (errors of the SMSgen form) are added when present."""
    if form == "continuous":
        return continuous_columns()
    if form == "calibrated":
        return [ID_COLUMN, "flux", "flux_error"]
    if form == "smsgen":
        return [ID_COLUMN, "bp_flux", "rp_flux"]
    return [ID_COLUMN, "xp", "flux"]


def array_columns(form: str) -> list[str]:
    """The columns of ``form`` whose cells are arrays."""
    if form == "continuous":
        return [f"{b}_{c}" for b in BAND_PREFIXES for c in CONTINUOUS_ARRAYS]
    if form == "smsgen":
        return ["bp_flux", "rp_flux", "bp_flux_error", "rp_flux_error"]
    return ["flux", "flux_error"]


def detect_form(columns: Sequence[str], source: str) -> str:
    """Which XP form a file with these columns holds.

    Raises
    ------
    ValueError
        If the columns match no form; the message lists them and what each form needs.
    """
    have = set(columns)
    if ID_COLUMN not in have:
        raise ValueError(f"{source} has no {ID_COLUMN!r} column (columns: {', '.join(list(columns)[:30])}); Gaia XP "
                         "files name each source by its source_id: download them with it")
    if {"bp_coefficients", "rp_coefficients"} & have:
        missing = [c for c in continuous_columns() if c not in have]
        if missing:
            raise ValueError(f"{source} holds continuous XP spectra but lacks columns {missing}; GaiaXPy needs "
                             f"{continuous_columns()} (the archive's xp_continuous_mean_spectrum): download them all")
        return "continuous"
    if {"bp_flux", "rp_flux"} <= have:
        return "smsgen"
    if {"xp", "flux"} <= have:
        return "converted"
    if "flux" in have:
        return "calibrated"
    raise ValueError(
        f"{source} holds no Gaia XP spectra I know: columns are {', '.join(list(columns)[:30])}; expected "
        "bp_coefficients/rp_coefficients (continuous, the archive's xp_continuous_mean_spectrum), flux and "
        "flux_error (sampled, the archive's xp_sampled_mean_spectrum or GaiaXPy calibrate), bp_flux and rp_flux "
        f"({XP_SAMPLES} internal samples per band, SMSgen-like) or xp and flux (GaiaXPy convert output)")


def file_kind(path: Path) -> str:
    """``"csv"``, ``"ecsv"`` or ``"fits"`` from the file name."""
    name = path.name.lower()
    for suffix in sorted(_SUFFIXES, key=len, reverse=True):
        if name.endswith(suffix):
            return _SUFFIXES[suffix]
    raise ValueError(f"cannot read Gaia XP file {path.name!r}: unknown extension; supported are "
                     f"{' '.join(_SUFFIXES)} (download the spectra from the Gaia archive as CSV, ECSV or FITS)")


def read_columns(path: Path) -> list[str]:
    """The column names of an XP file, read from its header only."""
    kind = _check_file(path)
    try:
        if kind == "csv":
            return [str(c).strip() for c in pd.read_csv(path, nrows=0).columns]
        if kind == "fits":
            from astropy.io import fits
            from astropy.utils.exceptions import AstropyWarning

            with warnings.catch_warnings():
                # a damaged header warns before it fails; the failure is reported
                warnings.simplefilter("ignore", AstropyWarning)
                hdul = fits.open(path, memmap=True)
            with hdul:
                tables = [h for h in hdul if isinstance(h, (fits.BinTableHDU, fits.TableHDU))]
                if not tables:
                    raise ValueError(f"Gaia XP file {path} has no table HDU; download the spectra as a FITS table")
                return list(tables[0].columns.names)
        return list(_read_table(path).colnames)
    except ValueError as err:
        if str(path) in str(err):
            raise
        raise _unreadable(path, err) from None
    except Exception as err:  # astropy and pandas raise many kinds on damaged files
        raise _unreadable(path, err) from None


def iter_chunks(path: Path, columns: Sequence[str], chunk_size: int) -> Iterator[pd.DataFrame]:
    """Chunks of ``chunk_size`` rows of ``columns`` (those present), ids as text, array cells as they are.

    CSV is read chunk by chunk; ECSV (text) is read whole and FITS through a memory map, then
    handed out in chunks.
    """
    kind = _check_file(path)
    have = read_columns(path)
    wanted = [c for c in columns if c in have]
    try:
        if kind == "csv":
            reader = pd.read_csv(path, usecols=wanted, dtype={ID_COLUMN: str}, chunksize=chunk_size,
                                 keep_default_na=True)
            for chunk in reader:
                yield chunk.reset_index(drop=True)
            return
        table = _read_table(path, memmap=kind == "fits")
    except ValueError as err:
        if str(path) in str(err):
            raise
        raise _unreadable(path, err) from None
    except Exception as err:  # astropy and pandas raise many kinds on damaged files
        raise _unreadable(path, err) from None
    for start in range(0, len(table), chunk_size):
        part = table[start:start + chunk_size]
        yield pd.DataFrame({c: _cells(part[c]) for c in wanted})


def _read_table(path: Path, memmap: bool = False):
    from astropy.table import Table

    if file_kind(path) == "fits":
        return Table.read(path, memmap=memmap)
    return Table.read(path, format="ascii.ecsv")


def _cells(col) -> list:
    """An astropy column as a list of cells: scalars, 1-D arrays (array columns) or None (masked)."""
    mask = np.ma.getmaskarray(col) if getattr(col, "mask", None) is not None else None
    values = np.asarray(col.filled() if mask is not None and hasattr(col, "filled") else col, dtype=object) \
        if col.dtype == object else np.asarray(col)
    if values.dtype.kind == "S":
        values = np.char.decode(values, "utf-8", errors="replace")
    out = list(values) if values.ndim == 1 else [np.asarray(v) for v in values]
    if mask is not None:
        rows = mask if mask.ndim == 1 else mask.all(axis=tuple(range(1, mask.ndim)))
        out = [None if m else v for v, m in zip(out, rows)]
    return out


def _check_file(path: Path) -> str:
    kind = file_kind(path)
    if not path.exists():
        raise FileNotFoundError(f"Gaia XP file {path} does not exist; check the path (relative paths start at "
                                f"{Path.cwd()})")
    if path.is_dir():
        raise ValueError(f"Gaia XP file {path} is a folder; pass the CSV, ECSV or FITS files inside it")
    if path.stat().st_size == 0:
        raise ValueError(f"Gaia XP file {path} is empty (0 bytes); download it again")
    return kind


def _unreadable(path: Path, err: BaseException) -> ValueError:
    text = " ".join(str(err).split())[:200] or type(err).__name__
    return ValueError(f"could not read Gaia XP file {path} ({text}); is it complete? Download it again from the "
                      "Gaia archive as CSV, ECSV or FITS")


def parse_array(cell) -> np.ndarray | None:
    """A cell as a 1-D float64 array: a CSV string ``"(1.0, 2.0)"`` / ``"[1.0 2.0]"`` or an array; None when missing.

    Raises
    ------
    ValueError
        If a string cell holds something other than numbers.
    """
    if cell is None:
        return None
    if isinstance(cell, str):
        text = cell.strip()
        if not text or text.lower() in ("nan", "null", "none", "--"):
            return None
        try:
            return np.array(text.strip("()[]{} ").replace(",", " ").split(), dtype=np.float64)
        except ValueError:
            raise ValueError(f"not a list of numbers: {text[:60]!r}") from None
    if isinstance(cell, (float, np.floating)) and not np.isfinite(cell):
        return None
    arr = np.asarray(cell, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"an array of shape {arr.shape}, expected one dimension")
    return arr if arr.size else None  # FITS variable-length columns hold a missing band as an empty array


def parse_id(cell) -> int | None:
    """A Gaia source_id (int64) from text or an integer; None when missing or not a whole number."""
    if cell is None:
        return None
    if isinstance(cell, (int, np.integer)):
        return int(cell)
    text = str(cell).strip()
    if not text or not text.lstrip("-").isdigit():
        return None
    return int(text)


def files_of(paths: str | os.PathLike | Sequence[str | os.PathLike]) -> list[Path]:
    """The XP files as paths (one or several)."""
    items = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    if not items:
        raise ValueError("no Gaia XP file given; pass at least one (CLI: --xp FILE ...)")
    return [Path(p) for p in items]
