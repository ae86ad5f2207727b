"""Read one SDSS ``spec-PLATE-MJD-FIBER.fits`` file: the scan of its ids and range, then its spectrum.

An SDSS (or BOSS) spectrum file holds the co-added spectrum in HDU 1 (COADD: ``loglam``,
``flux``, ``ivar``, ``and_mask``, ...), the object's row of the SpecObj (SDSS) or spAll
(BOSS) catalogue in HDU 2, and its plate, MJD and fiber in the primary header. All of it is
read with astropy. Most of the scan's time goes to HDU 2: astropy makes a ``Column`` for
every one of its 126 (SDSS) or 236 (BOSS) columns, twice, before it hands out any, about
20 ms a file against 2 to 3 ms for the rest. The read of the spectra opens HDU 0 and 1 only.
"""

from __future__ import annotations

import re
import types
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from astroreg.ingest._images import _short
from astroreg.preprocess._spectra import (
    SpectrumResampler,
    WavelengthGrid,
    doppler_loglam_shift,
    velocity_redshift,
)

SDSS_LOGLAM_STEP = 1e-4
"""Pixel size of SDSS/BOSS co-added spectra in log10(wavelength / Angstrom)."""

SDSS_NODATA = 1 << 24
"""SDSS spPixMask bit NODATA: no data in the co-add."""

OUTSIDE_COVERAGE = 1 << 31
"""Mask bit (unused by SDSS) that astroreg sets on pixels outside a spectrum's coverage."""

PADDING_MASK = SDSS_NODATA | OUTSIDE_COVERAGE
"""Mask of the padding pixels of a spectrum on the common grid."""

SDSS_BAD_PIXEL_BITS = (
    0b1111  # NOPLUG, BADTRACE, BADFLAT, BADARC
    | 1 << 18  # FULLREJECT
    | SDSS_NODATA
    | 1 << 25  # COMBINEREJ
    | OUTSIDE_COVERAGE
)
"""spPixMask bits that make a pixel unusable. Others (BRIGHTSKY, MANYBADCOLUMNS, ...) are set
on pixels that still carry data (SDSS DR12 bitmask documentation)."""

HDU2_ID_COLUMNS = ("PLATE", "MJD", "FIBERID")
"""HDU 2 columns with the plate, MJD and fiber."""

EXTRA_COLUMNS: Mapping[str, str] = types.MappingProxyType(
    {"Z": "", "CLASS": "", "SUBCLASS": "", "SN_MEDIAN_ALL": ""})
"""HDU 2 columns stored in ``/tabular``, with their units."""

COADD_COLUMNS = ("loglam", "flux", "ivar", "and_mask")
"""COADD (HDU 1) columns read; all but ``and_mask`` are required."""

OFF_GRID_HINT = ("loglam is not on SDSS's global 1e-4 grid ({detail}); pass grid=(min, max, n) (CLI: --grid) "
                 "to resample")

_NAME_RE = re.compile(r"spec-(\d+)-(\d+)-(\d+)", re.IGNORECASE)
_OFF_GRID_TOL = 0.05  # in pixels; float32 loglam is good to ~0.003 pixel
_VALUE_KINDS = "iufS"  # numbers and strings; astropy gives logical columns as bool


@dataclass
class SpecFile:
    """What the scan learned about one file (small, so it travels to worker processes)."""

    index: int
    path: str
    rel: str
    reason: str | None = None
    key: tuple[int, int, int] | None = None
    n_pixels: int = 0
    pix0: int = 0  # global SDSS pixel index of the first pixel, round(loglam[0] / 1e-4)
    on_grid: bool = False  # first and last pixel on SDSS's 1e-4 grid, n_pixels apart
    loglam_ends: tuple[float, float] = (np.nan, np.nan)
    coadd: dict[str, int] = field(default_factory=dict)  # COADD column name -> index in HDU 1
    extras: dict = field(default_factory=dict)


def scan_spectrum_file(index: int, path: Path, rel: str) -> SpecFile:
    """Plate, MJD and fiber, the HDU 2 extras and the loglam range of one file, or why it is unusable.

    Only the two end pixels of the spectrum are read (astropy memory-maps the table).
    """
    from astropy.io import fits

    spec = SpecFile(index=index, path=str(path), rel=rel)
    try:
        hdul = fits.open(path, memmap=True, lazy_load_hdus=True, character_as_bytes=True)
    except Exception as err:  # astropy raises OSError, ValueError, TypeError, ... for garbage
        spec.reason = f"not a readable FITS file ({_short(err)})"
        return spec
    with hdul:
        try:
            primary = hdul[0].header
            try:
                coadd = hdul[1]
            except IndexError:
                spec.reason = "no HDU 1: not an SDSS spectrum file (expected the COADD table in HDU 1)"
                return spec
            if not isinstance(coadd, fits.BinTableHDU):
                spec.reason = f"HDU 1 is a {type(coadd).__name__}, not the COADD table of an SDSS spectrum file"
                return spec
            spec.coadd = _find_columns(coadd.columns, COADD_COLUMNS)
            missing = [c for c in COADD_COLUMNS[:3] if c not in spec.coadd]
            if missing:
                spec.reason = f"HDU 1 lacks column(s) {missing}; an SDSS COADD table has {list(COADD_COLUMNS)}"
                return spec
            spec.n_pixels = int(coadd.header["NAXIS2"])
            end1 = _data_end(coadd)
            try:
                specobj = hdul[2]
            except IndexError:
                specobj = None
            size = path.stat().st_size
            if specobj is None and size > end1 + 2880:
                spec.reason = "truncated or corrupt FITS file (HDU 2, the SPECOBJ table, cannot be read)"
                return spec
            if not isinstance(specobj, fits.BinTableHDU) or int(specobj.header.get("NAXIS2", 0)) < 1:
                specobj = None
            # Checked here because astropy's message for a short table is "buffer is too small ...".
            end = end1 if specobj is None else max(end1, _data_end(specobj))
        except Exception as err:
            spec.reason = f"truncated or corrupt FITS file ({_short(err)})"
            return spec
        if spec.n_pixels < 2:
            spec.reason = f"the COADD table has {spec.n_pixels} pixel(s)"
            return spec
        if size < end:
            spec.reason = f"truncated or unreadable FITS file (file ends {end - size} bytes early)"
            return spec
        try:
            loglam = coadd.data.field(spec.coadd["loglam"])
            first, last = loglam[0], loglam[-1]
            row = None if specobj is None else _first_row(specobj, HDU2_ID_COLUMNS + tuple(EXTRA_COLUMNS), path)
        except Exception as err:
            spec.reason = f"truncated or unreadable FITS file ({_short(err)})"
            return spec
    if not (np.isfinite(first) and np.isfinite(last) and 2.0 < first < last < 6.0):
        spec.reason = (f"loglam runs from {first} to {last}; expected increasing log10(wavelength / Angstrom), "
                       "between 2 and 6")
        return spec
    spec.loglam_ends = (float(first), float(last))
    spec.pix0 = int(round(float(first) / SDSS_LOGLAM_STEP))
    span = (float(last) - float(first)) / SDSS_LOGLAM_STEP
    spec.on_grid = (abs(float(first) / SDSS_LOGLAM_STEP - spec.pix0) < _OFF_GRID_TOL
                    and abs(span - (spec.n_pixels - 1)) < _OFF_GRID_TOL)
    spec.key = _file_key(row, primary, rel)
    for name in EXTRA_COLUMNS:
        if row is not None and name in row:
            v = row[name]
            spec.extras[name] = v.decode("ascii", "replace").strip() if isinstance(v, bytes) else float(v)
    return spec


def _data_end(table) -> int:
    """Byte just past the rows of a binary table HDU."""
    # The HDU's own fileinfo: HDUList.fileinfo re-serialises every header to check for edits.
    return int(table.fileinfo()["datLoc"]) + int(table.header["NAXIS1"]) * int(table.header["NAXIS2"])


def _find_columns(columns, names) -> dict[str, int]:
    """Index of each named scalar column (not array columns), names matched case-insensitively."""
    found: dict[str, int] = {}
    for i, col in enumerate(columns):
        if col.dtype.shape == ():
            found.setdefault(col.name.strip().upper(), i)
    return {n: found[n.upper()] for n in names if n.upper() in found}


def _first_row(table, names, path: str | Path | None = None) -> dict:
    """First-row values of the named number and string columns of a binary table HDU.

    With ``path``, only those values are read: astropy parses the header and every
    column's ``TFORM``, numpy views the first row's bytes. Astropy's full column set
    (``ColDefs``, ~20 ms for the 126 columns of SDSS's HDU 2, most of a file's ingest time)
    is built only when that does not apply: a wanted column scaled by ``TSCAL``/``TZERO``,
    or a header whose column widths do not add up to ``NAXIS1``.
    """
    if path is not None:
        row = _first_row_from_header(table, names, path)
        if row is not None:
            return row
    return _first_row_astropy(table, names)


def _first_row_from_header(table, names, path) -> dict | None:
    from astropy.io.fits.column import _ColumnFormat

    header = table.header
    wanted = {n.upper(): n for n in names}
    fields, offset = {}, 0
    for i in range(1, int(header["TFIELDS"]) + 1):
        fmt = _ColumnFormat(header[f"TFORM{i}"])
        dtype = np.dtype(fmt.recformat)
        name = str(header.get(f"TTYPE{i}", "")).strip().upper()
        # Scalars only, as _find_columns: a number with repeat 1 or one string; first match wins.
        if name in wanted and wanted[name] not in fields and dtype.shape == () and dtype.kind in _VALUE_KINDS:
            if f"TSCAL{i}" in header or f"TZERO{i}" in header:
                return None
            fields[wanted[name]] = (offset, dtype.newbyteorder(">") if dtype.kind in "iuf" else dtype)
        offset += dtype.itemsize
    width = int(header["NAXIS1"])
    if offset != width or int(header["NAXIS2"]) < 1:
        return None
    with open(path, "rb") as fh:
        fh.seek(int(table.fileinfo()["datLoc"]))
        raw = fh.read(width)
    if len(raw) < width:
        return None
    row = {}
    for name, (off, dtype) in fields.items():
        value = np.frombuffer(raw, dtype=dtype, count=1, offset=off)[0]
        row[name] = value.rstrip(b" \x00") if dtype.kind == "S" else value  # as astropy strips
    return row


def _first_row_astropy(table, names) -> dict:
    data = table.data
    row = {}
    for name, i in _find_columns(table.columns, names).items():
        values = data.field(i)
        if values.ndim == 1 and values.dtype.kind in _VALUE_KINDS:
            row[name] = values[0]
    return row


def _file_key(row: dict | None, primary, rel: str) -> tuple[int, int, int] | None:
    """Plate, MJD and fiber from HDU 2, else the primary header, else the file name."""
    if row is not None and all(c in row for c in HDU2_ID_COLUMNS):
        return tuple(int(row[c]) for c in HDU2_ID_COLUMNS)
    values = [primary.get(k) for k in ("PLATEID", "MJD", "FIBERID")]
    if all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in values):
        return tuple(int(v) for v in values)
    m = _NAME_RE.search(Path(rel).name)
    return tuple(int(g) for g in m.groups()) if m else None


def _read_coadd(spec: SpecFile) -> tuple[tuple | None, str | None]:
    """``(loglam float64, flux float32, ivar float32, mask uint32)`` of a scanned file, or a reason."""
    from astropy.io import fits

    try:
        with fits.open(spec.path, memmap=True, lazy_load_hdus=True) as hdul:
            data = hdul[1].data
            loglam = data.field(spec.coadd["loglam"]).astype(np.float64)
            flux = data.field(spec.coadd["flux"]).astype(np.float32)
            ivar = data.field(spec.coadd["ivar"]).astype(np.float32)
            if "and_mask" in spec.coadd:
                mask = data.field(spec.coadd["and_mask"]).astype(np.int64).astype(np.uint32)
            else:
                mask = np.zeros(loglam.size, np.uint32)
            del data  # lets astropy close the memory map
    except Exception as err:  # the scan read this file: it changed, or the disk failed
        return None, f"truncated or unreadable COADD table ({_short(err)})"
    if loglam.size != spec.n_pixels or (float(loglam[0]), float(loglam[-1])) != spec.loglam_ends:
        return None, "the file changed while it was being ingested; run the ingest again"
    return (loglam, flux, ivar, mask), None


def _check_on_grid(spec: SpecFile, loglam: NDArray) -> str | None:
    pix = loglam / SDSS_LOGLAM_STEP
    expect = spec.pix0 + np.arange(spec.n_pixels)
    off = np.abs(pix - expect)
    if np.all(off < _OFF_GRID_TOL):
        return None
    i = int(np.argmax(np.where(np.isfinite(off), off, np.inf)))
    return OFF_GRID_HINT.format(detail=f"pixel {i}: loglam {loglam[i]:.6f}, {off[i]:.3g} pixels off")


def read_spectrum_file(spec: SpecFile, grid: WavelengthGrid | None) -> tuple[tuple | None, str | None]:
    """``(pix0, flux, ivar, mask)`` (native) or ``(flux, ivar, mask)`` on ``grid``, or a reason."""
    if grid is not None:
        return read_spectra_resampled([spec], grid)[0]
    arrays, reason = _read_coadd(spec)
    if arrays is None:
        return None, reason
    loglam, flux, ivar, mask = arrays
    reason = _check_on_grid(spec, loglam)
    if reason is not None:
        return None, reason
    return (spec.pix0, flux, ivar, mask), None


def read_spectra_resampled(specs: Sequence[SpecFile], grid: WavelengthGrid, rv_kms: Sequence[float] | None = None,
                           bad_pixels: str = "interpolate") -> list[tuple[tuple | None, str | None]]:
    """``(flux, ivar, mask)`` of each file resampled onto ``grid`` (in the rest frame with ``rv_kms``), or a reason.

    The resampling is :class:`~astroreg.preprocess.SpectrumResampler`'s, with the numbers it
    gives at training time on a natively stored dataset: the files on SDSS's 1e-4 loglam
    grid are laid on their common native grid (padding: ivar 0 and :data:`PADDING_MASK`,
    as native ingest stores them, loglam from the exact grid rather than the file's
    float32 values) and resampled together; other files one by one on their own loglam.
    Bad pixels are those of :data:`SDSS_BAD_PIXEL_BITS`, ``ivar = 0`` or non-finite flux.
    The mask holds the bits of the native pixel nearest to each output pixel (in the rest
    frame when shifted), :data:`PADDING_MASK` outside the coverage.
    """
    resampler = SpectrumResampler(grid, bad_pixels=bad_pixels, bad_mask_bits=SDSS_BAD_PIXEL_BITS).fit()
    target = [(s.scale, s.coordinate()) for s in resampler.wavelength_grid_.segments]
    out: list = [None] * len(specs)
    on_grid, raw = [], {}
    for i, spec in enumerate(specs):
        arrays, reason = _read_coadd(spec)
        if arrays is None:
            out[i] = (None, reason)
            continue
        loglam = arrays[0]
        if not np.all(np.isfinite(loglam)) or not np.all(np.diff(loglam) > 0):
            out[i] = (None, "loglam is not finite and strictly increasing; cannot resample")
            continue
        if rv_kms is not None:
            try:
                doppler_loglam_shift(rv_kms[i])
            except ValueError as err:
                out[i] = (None, f"unusable radial velocity {rv_kms[i]!r} km/s ({_short(err)})")
                continue
        raw[i] = arrays
        if spec.on_grid and _check_on_grid(spec, loglam) is None:
            on_grid.append(i)
    if on_grid:
        start = min(specs[i].pix0 for i in on_grid)
        stop = max(specs[i].pix0 + specs[i].n_pixels for i in on_grid)
        # As a native dataset stores it: wavelength 10**loglam, read back with log10.
        loglam = np.log10(10.0 ** (np.arange(start, stop) * SDSS_LOGLAM_STEP))
        n = len(on_grid)
        flux = np.zeros((n, loglam.size), np.float32)
        ivar = np.zeros((n, loglam.size), np.float32)
        mask = np.full((n, loglam.size), PADDING_MASK, np.uint32)
        for j, i in enumerate(on_grid):
            a = specs[i].pix0 - start
            _, f, iv, m = raw[i]
            flux[j, a:a + f.size], ivar[j, a:a + f.size], mask[j, a:a + f.size] = f, iv, m
        rv = None if rv_kms is None else np.asarray([rv_kms[i] for i in on_grid], np.float64)
        res_flux, res_ivar = resampler.transform(flux, loglam=loglam, ivar=ivar, mask=mask, rv_kms=rv,
                                                 return_ivar=True)
        for j, i in enumerate(on_grid):
            out[i] = ((res_flux[j], res_ivar[j], _nearest_mask(loglam, mask[j], target, rv, j)), None)
    for i, (loglam, f, iv, m) in raw.items():
        if out[i] is not None:
            continue
        rv = None if rv_kms is None else np.asarray([rv_kms[i]], np.float64)
        res_flux, res_ivar = resampler.transform(f[None], loglam=loglam, ivar=iv[None], mask=m[None], rv_kms=rv,
                                                 return_ivar=True)
        out[i] = ((res_flux[0], res_ivar[0], _nearest_mask(loglam, m, target, rv, 0)), None)
    return out


def _nearest_mask(loglam: NDArray, mask: NDArray, target: list[tuple[str, NDArray]], rv: NDArray | None,
                  j: int) -> NDArray:
    """Mask bits of the input pixel nearest to each output pixel (padding bits outside the input).

    ``target`` holds each grid segment's scale and pixel coordinates (loglam or Angstrom).
    """
    x = np.concatenate([_observed_loglam(scale, coord, None if rv is None else rv[j]) for scale, coord in target])
    nearest = np.clip(np.searchsorted(loglam, x), 1, loglam.size - 1)
    nearest -= (x - loglam[nearest - 1]) < (loglam[nearest] - x)
    outside = (x < loglam[0]) | (x > loglam[-1])
    return np.where(outside, np.uint32(PADDING_MASK), mask[nearest]).astype(np.uint32)


def _observed_loglam(scale: str, coord: NDArray, rv: float | None) -> NDArray:
    """Observed-frame loglam of a grid segment's pixels, for an object of radial velocity ``rv`` (km/s)."""
    if scale == "log":
        return coord if rv is None else coord + doppler_loglam_shift(rv)  # rest-frame grid, observed loglam
    wavelength = coord if rv is None else coord * (1.0 + velocity_redshift(rv))
    return np.log10(wavelength)
