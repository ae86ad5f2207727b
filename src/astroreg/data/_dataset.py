"""The astroreg dataset: one HDF5 file per dataset, one group per modality.

Layout (``format_version`` 1)::

    /                      attrs: astroreg_format="astroreg-dataset", format_version,
                                  n_objects, description, created
    /ids                   (N,) UTF-8 strings, one per object
    /images/data           (N, bands, H, W) float32     attrs: bands, pixel_scale_arcsec, unit
    /spectra               group attrs: flux_unit; prepared_* when resampled at ingest
                                                        (grid, rest frame, bad pixels: SpectraSpec.attrs)
    /spectra/flux          (N, L) float32
    /spectra/ivar          (N, L) float32 (optional)    inverse variance of flux
    /spectra/mask          (N, L) uint8, uint16 or uint32 (optional)
                                                        attrs: bad_bits, bits; a pixel is bad
                                                        where ``mask & bad_bits != 0`` (any
                                                        non-zero value when bad_bits is absent)
    /spectra/wavelength    (L,) or (N, L) float64       attrs: unit (Angstrom), medium
    /tabular/<column>      (N,) numeric or string       attrs: unit
    /targets/<name>        (N,) float64; NaN = missing  attrs: unit, description
    /splits/<split>        int64 row indices            group attrs: seed, fractions

Writers append in chunks and never hold the whole set in memory; the file
appears under its final name only when the writer closes cleanly.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import functools
import json
import mmap
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from astroreg.data._atomic import part_path, publish

FORMAT_NAME = "astroreg-dataset"
FORMAT_VERSION = 1
_STR = h5py.string_dtype(encoding="utf-8")
_HOW_TO_MAKE = "make one with `astroreg ingest ...` or `astroreg simulate ...`"
_MASK_DTYPES = ("uint8", "uint16", "uint32")


@dataclass(frozen=True)
class ImageSpec:
    """Shape and meaning of the ``images`` modality.

    Parameters
    ----------
    bands : sequence of str
        Band (filter) names, one per image channel, e.g. ``("i",)``.
    height, width : int
        Stamp size in pixels.
    pixel_scale : float
        Pixel scale in arcsec / pixel.
    unit : str
        Pixel unit, e.g. ``"ADU"`` or ``"nanomaggy"``.
    """

    bands: tuple[str, ...]
    height: int
    width: int
    pixel_scale: float
    unit: str = "ADU"

    def __post_init__(self) -> None:
        object.__setattr__(self, "bands", tuple(str(b) for b in self.bands))
        if not self.bands:
            raise ValueError("ImageSpec.bands is empty; give at least one band name, e.g. ('i',)")
        if self.height < 1 or self.width < 1:
            raise ValueError(f"ImageSpec size must be positive, got {self.height}x{self.width}")

    @property
    def shape(self) -> tuple[int, int, int]:
        """Per-object array shape ``(bands, height, width)``."""
        return (len(self.bands), self.height, self.width)


@dataclass(frozen=True)
class SpectraSpec:
    """Shape and meaning of the ``spectra`` modality.

    Parameters
    ----------
    n_pixels : int
        Number of wavelength samples per spectrum.
    wavelength : array of shape (n_pixels,), optional
        Common wavelength grid in Angstrom. ``None`` means every object has its own
        grid, given to :meth:`DatasetWriter.append` as ``spectra["wavelength"]``.
    flux_unit : str
        Unit of the flux, e.g. ``"1e-17 erg/s/cm^2/Angstrom"``.
    with_ivar, with_mask : bool
        Whether inverse variance and bad-pixel mask arrays are stored.
    medium : {"vacuum", "air"}
        Wavelength medium.
    mask_dtype : {"uint8", "uint16", "uint32"}
        Integer type of the mask. Bit masks such as SDSS's 32-bit ``and_mask`` need
        ``"uint32"``.
    mask_bad_bits : int, optional
        Bits of the mask that mark a bad pixel (``mask & mask_bad_bits != 0``), stored as
        the mask's ``bad_bits`` attribute. ``None``: every bit (any non-zero value is bad).
    mask_bits : str
        Free-text meaning of the mask bits, stored as the mask's ``bits`` attribute,
        e.g. ``"SDSS spPixMask (and_mask)"``.
    attrs : mapping of str to value, optional
        Extra attributes of the ``/spectra`` group (numbers, strings or lists of them),
        e.g. how the spectra were prepared at ingest (``prepared_grid``,
        ``prepared_rest_frame_column``, ...; see
        :func:`~astroreg.data.ingest_sdss_spectra`). Stored as a tuple of pairs.
    """

    n_pixels: int
    wavelength: tuple[float, ...] | None = None
    flux_unit: str = "1e-17 erg/s/cm^2/Angstrom"
    with_ivar: bool = True
    with_mask: bool = False
    medium: str = "vacuum"
    mask_dtype: str = "uint8"
    mask_bad_bits: int | None = None
    mask_bits: str = ""
    attrs: Any = ()

    def __post_init__(self) -> None:
        pairs = tuple(dict(self.attrs).items()) if self.attrs else ()
        if any(not isinstance(k, str) or k in ("flux_unit",) for k, _ in pairs):
            raise ValueError(f"SpectraSpec.attrs keys must be strings other than 'flux_unit', got {[k for k, _ in pairs]}")
        object.__setattr__(self, "attrs", pairs)
        if self.mask_dtype not in _MASK_DTYPES:
            raise ValueError(
                f"SpectraSpec.mask_dtype is {self.mask_dtype!r}; allowed: {list(_MASK_DTYPES)} "
                "(use 'uint32' for SDSS and_mask bits)"
            )
        if self.mask_bad_bits is not None:
            top = np.iinfo(self.mask_dtype).max
            if not (isinstance(self.mask_bad_bits, (int, np.integer)) and 0 < self.mask_bad_bits <= top):
                raise ValueError(
                    f"SpectraSpec.mask_bad_bits is {self.mask_bad_bits!r}; give a positive bit mask that fits "
                    f"{self.mask_dtype} (at most {top}), or None for every bit"
                )
        if self.wavelength is not None:
            wl = tuple(float(w) for w in np.asarray(self.wavelength).ravel())
            if len(wl) != self.n_pixels:
                raise ValueError(
                    f"SpectraSpec.wavelength has {len(wl)} values but n_pixels={self.n_pixels}"
                )
            object.__setattr__(self, "wavelength", wl)


FLUSH_ROWS = 4096
"""Rows the writer gathers before writing its large arrays (images, spectra), in whole multiples.

Each array's HDF5 chunks are allocated as they are written, so flushing every array in
blocks of this many rows keeps each array's chunks back to back in the file over such a
block, instead of interleaving flux, ivar and mask every few hundred rows. Readers of
aligned blocks (``astroreg predict`` reads 4096 spectra at a time) can then map the bytes
straight from the file (:meth:`Dataset.row_view`) instead of copying them."""
FLUSH_BYTES = 256 * 1024 ** 2
"""The writer also flushes when its pending arrays exceed this many bytes (large images)."""


def _chunk_rows(row_bytes: int, target_bytes: int = 256 * 1024) -> int:
    """Rows per HDF5 chunk: about ``target_bytes`` per chunk, one row at least."""
    return int(np.clip(target_bytes // max(row_bytes, 1), 1, 4096))


class DatasetWriter:
    """Write an astroreg dataset chunk by chunk.

    Parameters
    ----------
    path : path-like
        Destination ``.h5`` file. It is written under a temporary name and moved
        into place on a clean :meth:`close`; an error or interruption leaves no file
        under ``path``.
    targets : mapping of str to str
        Target names and their units, e.g. ``{"total_flux": "ADU"}``.
    images : ImageSpec, optional
        Declares the ``images`` modality.
    spectra : SpectraSpec, optional
        Declares the ``spectra`` modality.
    tabular : mapping of str to str, optional
        Tabular column names and units (``""`` for dimensionless).
    description : str
        Free text stored in the file.
    compression : str, optional
        h5py compression filter for the large arrays, e.g. ``"lzf"``.

    Examples
    --------
    >>> spec = ImageSpec(bands=("i",), height=143, width=143, pixel_scale=0.168)
    >>> with DatasetWriter("gal.h5", images=spec, targets={"flux": "ADU"}) as w:  # doctest: +SKIP
    ...     w.append(["a", "b"], images=stamps, targets={"flux": [1.0, 2.0]})
    ...     w.make_splits({"train": 0.8, "test": 0.2}, seed=0)
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        targets: Mapping[str, str],
        images: ImageSpec | None = None,
        spectra: SpectraSpec | None = None,
        tabular: Mapping[str, str] | None = None,
        description: str = "",
        compression: str | None = None,
    ) -> None:
        self.path = Path(path)
        self.targets = dict(targets)
        self.images = images
        self.spectra = spectra
        self.tabular = dict(tabular or {})
        self.description = description
        self.compression = compression
        self._file: h5py.File | None = None
        self._tmp: Path | None = None
        self._n = 0
        self._written = 0  # rows already in the file; the rest wait in _pending
        self._pending: list[list[tuple[h5py.Dataset, np.ndarray]]] = []
        self._pending_bytes = 0
        self._splits: dict[str, NDArray[np.int64]] | None = None
        self._split_fractions: dict[str, float] | None = None
        self._split_seed: int | None = None
        if images is None and spectra is None and not self.tabular:
            raise ValueError(
                "a dataset needs at least one input modality: give images=, spectra= or tabular="
            )

    # -- life cycle -------------------------------------------------------------
    def __enter__(self) -> DatasetWriter:
        self.open()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def open(self) -> DatasetWriter:
        """Create the temporary file and its empty, resizable arrays."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # .{name}.{pid}.{random}.part: a later run can tell a killed writer's leftover from a live one's.
        # Datasets are few and large, so every writer sweeps the folder (atomic_path's sweep runs once per process).
        self._tmp = part_path(self.path, always_sweep=True)
        try:
            self._create()
        except BaseException:
            # A full disk or a bad spec here must not leave the .part behind (__exit__ is not called).
            self.abort()
            raise
        return self

    def _create(self) -> None:
        # Metadata (the chunk indexes) is gathered into 4 MiB blocks instead of HDF5's 2 KiB ones,
        # which would otherwise sit between an array's chunks every few hundred rows.
        f = h5py.File(self._tmp, "w", meta_block_size=4 * 1024 ** 2)
        self._file = f
        f.attrs["astroreg_format"] = FORMAT_NAME
        f.attrs["format_version"] = FORMAT_VERSION
        f.attrs["description"] = self.description
        f.attrs["created"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        f.create_dataset("ids", shape=(0,), maxshape=(None,), dtype=_STR, chunks=(4096,))
        if self.images is not None:
            g = f.create_group("images")
            g.attrs["bands"] = list(self.images.bands)
            g.attrs["pixel_scale_arcsec"] = float(self.images.pixel_scale)
            g.attrs["unit"] = self.images.unit
            shape = self.images.shape
            rows = _chunk_rows(4 * int(np.prod(shape)))
            g.create_dataset(
                "data", shape=(0, *shape), maxshape=(None, *shape), dtype="f4",
                chunks=(rows, *shape), compression=self.compression,
            )
        if self.spectra is not None:
            s = self.spectra
            g = f.create_group("spectra")
            g.attrs["flux_unit"] = s.flux_unit
            for key, value in s.attrs:
                g.attrs[key] = value
            rows = _chunk_rows(4 * s.n_pixels)
            kw = dict(maxshape=(None, s.n_pixels), chunks=(rows, s.n_pixels), compression=self.compression)
            g.create_dataset("flux", shape=(0, s.n_pixels), dtype="f4", **kw)
            if s.with_ivar:
                g.create_dataset("ivar", shape=(0, s.n_pixels), dtype="f4", **kw)
            if s.with_mask:
                m = g.create_dataset("mask", shape=(0, s.n_pixels), dtype=s.mask_dtype, **kw)
                bad = np.iinfo(s.mask_dtype).max if s.mask_bad_bits is None else s.mask_bad_bits
                m.attrs["bad_bits"] = np.asarray(bad, dtype=s.mask_dtype)
                m.attrs["bits"] = s.mask_bits
            if s.wavelength is not None:
                wl = g.create_dataset("wavelength", data=np.asarray(s.wavelength, dtype="f8"))
            else:
                wl = g.create_dataset("wavelength", shape=(0, s.n_pixels), dtype="f8", **kw)
            wl.attrs["unit"] = "Angstrom"
            wl.attrs["medium"] = s.medium
        t = f.create_group("tabular")
        for name, unit in self.tabular.items():
            # Columns are created on first append, when their dtype is known.
            t.attrs[f"unit:{name}"] = unit
        g = f.create_group("targets")
        for name, unit in self.targets.items():
            d = g.create_dataset(name, shape=(0,), maxshape=(None,), dtype="f8", chunks=(8192,))
            d.attrs["unit"] = unit

    def abort(self) -> None:
        """Close and delete the temporary file; nothing appears under ``path``."""
        try:
            if self._file is not None:
                f, self._file = self._file, None
                _discard_writes(f)
                with contextlib.suppress(Exception):
                    f.close()
        finally:
            if self._tmp is not None:
                with contextlib.suppress(FileNotFoundError):
                    self._tmp.unlink()

    def close(self) -> Path:
        """Write the splits, check consistency and move the file into place."""
        f = self._require_open()
        if self._n == 0:
            self.abort()
            raise ValueError(f"no objects were appended to {self.path}; nothing was written")
        try:
            self._flush(everything=True)
            if self._split_fractions is not None:
                self._splits = random_splits(self._n, self._split_fractions, self._split_seed or 0)
            if self._splits is not None:
                _write_splits(f, self._splits, self._split_seed, self._split_fractions)
            f.attrs["n_objects"] = self._n
            f.close()
            self._file = None
            publish(self._tmp, self.path)
        except BaseException as err:
            # A failed close (bad split indices, full disk) must not leave the .part file behind.
            self.abort()
            io = _io_error(err, self.path)
            if io is not err:
                raise io from err
            raise
        return self.path

    # -- content ------------------------------------------------------------------
    @property
    def n_objects(self) -> int:
        """Number of objects appended so far."""
        return self._n

    def append(
        self,
        ids: Sequence[str],
        *,
        images: ArrayLike | None = None,
        spectra: Mapping[str, ArrayLike] | None = None,
        tabular: Mapping[str, ArrayLike] | None = None,
        targets: Mapping[str, ArrayLike] | None = None,
    ) -> None:
        """Append a chunk of objects.

        Parameters
        ----------
        ids : sequence of str, length n
            Object identifiers.
        images : array of shape (n, bands, H, W), optional
            Required when the writer declares images.
        spectra : mapping, optional
            ``flux`` (n, L), and ``ivar``, ``mask``, ``wavelength`` (n, L) as declared.
        tabular : mapping of str to array of shape (n,), optional
            Every declared tabular column.
        targets : mapping of str to array of shape (n,)
            Every declared target; NaN marks a missing value.
        """
        f = self._require_open()
        ids = [str(i) for i in ids]
        n = len(ids)
        if n == 0:
            return
        if images is not None and self.images is None:
            raise ValueError("images given but the writer declares no images; pass images=ImageSpec(...)")
        if spectra is not None and self.spectra is None:
            raise ValueError("spectra given but the writer declares no spectra; pass spectra=SpectraSpec(...)")
        writes: list[tuple[h5py.Dataset, np.ndarray]] = []
        if self.images is not None:
            if images is None:
                raise ValueError("this dataset declares images; append(..., images=array) is required")
            arr = np.asarray(images, dtype="f4")
            expect = (n, *self.images.shape)
            if arr.shape != expect:
                raise ValueError(f"images has shape {arr.shape}, expected {expect} (n, bands, H, W)")
            writes.append((f["images/data"], arr))
        if self.spectra is not None:
            writes += self._spectra_writes(f, spectra, n)
        tab = dict(tabular or {})
        _check_keys("tabular", tab, self.tabular)
        for name in self.tabular:
            col = np.asarray(tab[name])
            if col.shape != (n,):
                raise ValueError(f"tabular column {name!r} has shape {col.shape}, expected ({n},)")
            if name not in f["tabular"]:
                kind = _STR if col.dtype.kind in "OUS" else col.dtype
                d = f["tabular"].create_dataset(name, shape=(0,), maxshape=(None,), dtype=kind, chunks=(8192,))
                d.attrs["unit"] = self.tabular[name]
            if col.dtype.kind in "OUS":
                col = col.astype(str).astype(object)
            writes.append((f["tabular"][name], col))
        tgt = dict(targets or {})
        _check_keys("targets", tgt, self.targets)
        for name in self.targets:
            col = np.asarray(tgt[name], dtype="f8")
            if col.shape != (n,):
                raise ValueError(f"target {name!r} has shape {col.shape}, expected ({n},)")
            writes.append((f["targets"][name], col))
        writes.append((f["ids"], np.asarray(ids, dtype=object)))
        # kept until a whole block can be written (FLUSH_ROWS): copies, since callers may reuse their buffers
        self._pending.append([(dset, np.array(arr, copy=True)) for dset, arr in writes])
        self._pending_bytes += sum(arr.nbytes for _, arr in writes)
        self._n += n
        self._flush(everything=self._pending_bytes >= FLUSH_BYTES)

    def _flush(self, *, everything: bool = False) -> None:
        """Write whole blocks of :data:`FLUSH_ROWS` pending rows (all of them with ``everything``), array by array."""
        pending = self._n - self._written
        rows = pending if everything else pending - pending % FLUSH_ROWS
        if rows == 0:
            return
        columns = [np.concatenate(parts) if len(parts) > 1 else parts[0]
                   for parts in zip(*[[arr for _, arr in w] for w in self._pending])]
        dsets = [dset for dset, _ in self._pending[0]]
        start = self._written
        try:
            for dset, col in zip(dsets, columns):
                dset.resize(start + rows, axis=0)
                dset[start:start + rows] = col[:rows]
                dset.flush()  # out of the chunk cache now: the array's chunks are allocated together
        except (OSError, RuntimeError) as err:
            io = _io_error(err, self.path)
            if io is not err:
                raise io from err
            raise
        self._written += rows
        rest = [col[rows:] for col in columns]
        self._pending = [list(zip(dsets, rest))] if pending > rows else []
        self._pending_bytes = sum(col.nbytes for col in rest) if pending > rows else 0

    def _spectra_writes(self, f: h5py.File, spectra, n: int) -> list[tuple[h5py.Dataset, np.ndarray]]:
        s = self.spectra
        if spectra is None or "flux" not in spectra:
            raise ValueError("this dataset declares spectra; append(..., spectra={'flux': ...}) is required")
        wanted = {"flux"} | ({"ivar"} if s.with_ivar else set()) | ({"mask"} if s.with_mask else set())
        if s.wavelength is None:
            wanted.add("wavelength")
        _check_keys("spectra", dict(spectra), dict.fromkeys(wanted, ""))
        out = []
        for key in sorted(wanted):
            dtype = {"mask": s.mask_dtype, "wavelength": "f8"}.get(key, "f4")
            arr = np.asarray(spectra[key], dtype=dtype)
            if arr.shape != (n, s.n_pixels):
                raise ValueError(f"spectra[{key!r}] has shape {arr.shape}, expected ({n}, {s.n_pixels})")
            out.append((f["spectra"][key], arr))
        return out

    def set_splits(self, splits: Mapping[str, ArrayLike], *, seed: int | None = None) -> None:
        """Store explicit split indices, e.g. ``{"train": [...], "val": [...], "test": [...]}``."""
        self._splits = {k: np.asarray(v, dtype=np.int64) for k, v in splits.items()}
        self._split_seed = seed
        self._split_fractions = None

    def make_splits(self, fractions: Mapping[str, float], *, seed: int = 0) -> None:
        """Draw random splits with these fractions when the writer closes."""
        _check_fractions(fractions)
        self._split_fractions = dict(fractions)
        self._split_seed = int(seed)
        self._splits = None

    def _require_open(self) -> h5py.File:
        if self._file is None:
            raise RuntimeError("DatasetWriter is not open; use it as a context manager or call open()")
        return self._file


def _io_error(err: BaseException, path: Path) -> BaseException:
    """An HDF5 write error as a plain ``OSError`` naming ``path``; other exceptions unchanged.

    h5py reports a failed write (a full disk, a vanished folder) as an ``OSError`` or a
    ``RuntimeError`` whose many-line message names the temporary file; the user knows the
    final path, and the cause is the C library's error number inside the message.
    """
    if not isinstance(err, (OSError, RuntimeError)):
        return err
    code = getattr(err, "errno", None)
    if not code:
        found = re.search(r"errno = (\d+)", str(err))
        code = int(found[1]) if found else None
    if not code:
        return err
    return OSError(code, os.strerror(code), str(path))


def _damaged(path: Path, err: BaseException) -> ValueError:
    return ValueError(
        f"{path} is damaged: HDF5 could not read it ({' '.join(str(err).split()) or type(err).__name__}); "
        f"was it truncated or copied incompletely? Re-create it: {_HOW_TO_MAKE}"
    )


def _discard_writes(f: h5py.File) -> None:
    """Point an open HDF5 file's descriptor at a sink, so that closing it writes nowhere.

    Closing flushes HDF5's caches; on a full disk that fails, HDF5 keeps the file open and
    crashes the interpreter at exit (a segmentation fault) when it tries again. The file
    is being thrown away, so its last writes can go to the null device (which, unlike an
    in-memory file, a file-size limit (``ulimit -f``) does not refuse either).
    """
    with contextlib.suppress(Exception):
        fd = f.id.get_vfd_handle()
        sink = os.open(os.devnull, os.O_RDWR)
        try:
            os.dup2(sink, fd)
        finally:
            os.close(sink)


def _check_keys(what: str, given: Mapping[str, Any], declared: Mapping[str, Any]) -> None:
    missing = sorted(set(declared) - set(given))
    extra = sorted(set(given) - set(declared))
    if missing or extra:
        raise ValueError(
            f"{what} keys do not match the declared ones: missing {missing}, unexpected {extra}; "
            f"declared: {sorted(declared)}"
        )


def _check_fractions(fractions: Mapping[str, float]) -> None:
    vals = np.asarray(list(fractions.values()), dtype=float)
    if len(vals) == 0 or np.any(vals < 0) or not np.isclose(vals.sum(), 1.0, atol=1e-6):
        raise ValueError(f"split fractions must be non-negative and sum to 1, got {dict(fractions)}")


def random_splits(n: int, fractions: Mapping[str, float], seed: int = 0) -> dict[str, NDArray[np.int64]]:
    """Randomly partition ``range(n)`` into named splits.

    Parameters
    ----------
    n : int
        Number of objects.
    fractions : mapping of str to float
        Split name to fraction of the objects; fractions sum to 1.
    seed : int
        Seed of the permutation (stored with the splits for reproducibility).

    Returns
    -------
    dict of str to array of int64
        Sorted row indices per split; together they cover every row exactly once.
    """
    _check_fractions(fractions)
    perm = np.random.default_rng(seed).permutation(n)
    names = list(fractions)
    # The epsilon keeps 0.29 * 100 = 28.999999999999996 from losing a row to the last split.
    counts = np.floor(np.asarray([fractions[k] for k in names]) * n + 1e-9).astype(int)
    counts[-1] = n - counts[:-1].sum()
    edges = np.concatenate([[0], np.cumsum(counts)])
    return {k: np.sort(perm[edges[i]:edges[i + 1]]).astype(np.int64) for i, k in enumerate(names)}


def _write_splits(f: h5py.File, splits, seed, fractions) -> None:
    if "splits" in f:
        del f["splits"]
    g = f.create_group("splits")
    n = f["ids"].shape[0]
    for name, idx in splits.items():
        if idx.size and (idx.min() < 0 or idx.max() >= n):
            raise ValueError(f"split {name!r} has indices outside 0..{n - 1}")
        g.create_dataset(name, data=np.sort(idx).astype(np.int64))
    g.attrs["seed"] = -1 if seed is None else int(seed)
    g.attrs["fractions"] = json.dumps(fractions or {})


def _reads(method):
    """Turn h5py's errors on a damaged file (OSError, RuntimeError, KeyError) into a ValueError naming it."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except (OSError, RuntimeError, KeyError) as err:
            raise _damaged(self.path, err) from None

    return wrapper


class Dataset:
    """Read-only, lazy access to an astroreg HDF5 dataset.

    Small arrays (ids, targets, tabular columns) are read on demand as a whole;
    images and spectra are read only for the rows asked for.

    Parameters
    ----------
    path : path-like
        An ``.h5`` file written by :class:`DatasetWriter`.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ValueError
        If the file is not HDF5, not an astroreg dataset, or its arrays disagree in length.

    Examples
    --------
    >>> with Dataset("gal.h5") as ds:  # doctest: +SKIP
    ...     x = ds.read_images(ds.split("train")[:64])
    ...     y = ds.target("log_total_flux")
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._fd: int | None = None  # a plain descriptor of the file, for row_view's mappings
        self._layouts: dict[str, tuple | None] = {}  # row_view's chunk layout of each array
        if not self.path.exists():
            raise FileNotFoundError(f"dataset {self.path} does not exist; {_HOW_TO_MAKE}")
        try:
            self._f = h5py.File(self.path, "r")
        except OSError as err:
            raise ValueError(
                f"{self.path} is not a readable HDF5 file ({err}); astroreg datasets are HDF5 files: {_HOW_TO_MAKE}"
            ) from None
        try:
            self._validate()
        except ValueError:
            self._f.close()
            raise
        except Exception as err:
            # h5py raises OSError, RuntimeError, KeyError, ... on damaged metadata ("wrong B-tree signature").
            self._f.close()
            raise _damaged(self.path, err) from None

    def _validate(self) -> None:
        f = self._f
        fmt = f.attrs.get("astroreg_format")
        if fmt != FORMAT_NAME:
            raise ValueError(
                f"{self.path} is an HDF5 file but not an astroreg dataset (attribute astroreg_format="
                f"{fmt!r}, expected {FORMAT_NAME!r}); {_HOW_TO_MAKE}"
            )
        version = int(f.attrs.get("format_version", -1))
        if version > FORMAT_VERSION:
            raise ValueError(
                f"{self.path} has dataset format version {version}; this astroreg reads up to "
                f"{FORMAT_VERSION}: upgrade astroreg"
            )
        if "ids" not in f:
            raise ValueError(f"{self.path} has no /ids array; it is not a complete astroreg dataset")
        n = f["ids"].shape[0]
        arrays = {"targets/" + k: v for k, v in f.get("targets", {}).items()}
        arrays.update({"tabular/" + k: v for k, v in f.get("tabular", {}).items()})
        if "images" in f:
            arrays["images/data"] = f["images/data"]
        if "spectra" in f:
            for k, v in f["spectra"].items():
                if not (k == "wavelength" and v.ndim == 1):
                    arrays["spectra/" + k] = v
        for name, d in arrays.items():
            if d.shape[0] != n:
                raise ValueError(
                    f"{self.path}: {name} has {d.shape[0]} rows but /ids has {n}; the file is "
                    f"inconsistent (an interrupted or hand-edited write?): re-create it"
                )
        for name, idx in f.get("splits", {}).items():
            if idx.shape[0] and (idx[...].min() < 0 or idx[...].max() >= n):
                raise ValueError(f"{self.path}: split {name!r} has indices outside 0..{n - 1}")

    # -- life cycle ---------------------------------------------------------------
    def close(self) -> None:
        """Close the underlying HDF5 file."""
        self._f.close()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> Dataset:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __len__(self) -> int:
        return int(self._f["ids"].shape[0])

    def __repr__(self) -> str:
        return f"Dataset({str(self.path)!r}, n={len(self)}, modalities={self.modalities}, targets={self.target_names})"

    # -- description --------------------------------------------------------------
    @property
    def description(self) -> str:
        """Free-text description stored by the writer."""
        return str(self._f.attrs.get("description", ""))

    @property
    def modalities(self) -> tuple[str, ...]:
        """Input modalities present: a subset of ``("images", "spectra", "tabular")``."""
        out = [m for m in ("images", "spectra") if m in self._f]
        if len(self._f.get("tabular", {})):
            out.append("tabular")
        return tuple(out)

    @property
    @_reads
    def ids(self) -> NDArray[np.str_]:
        """Object identifiers, array of shape (n_objects,)."""
        return self._f["ids"].asstr()[...].astype(str)

    @property
    @_reads
    def target_names(self) -> tuple[str, ...]:
        """Names of the stored targets."""
        return tuple(self._f.get("targets", {}).keys())

    @property
    @_reads
    def tabular_columns(self) -> tuple[str, ...]:
        """Names of the stored tabular columns."""
        return tuple(self._f.get("tabular", {}).keys())

    def unit(self, name: str) -> str:
        """Unit of a target or tabular column (``""`` when dimensionless)."""
        for group in ("targets", "tabular"):
            if name in self._f.get(group, {}):
                return str(self._f[group][name].attrs.get("unit", ""))
        raise self._missing(name, "target or tabular column", self.target_names + self.tabular_columns)

    @property
    def image_spec(self) -> ImageSpec | None:
        """The :class:`ImageSpec` of the images, or ``None`` when there are none."""
        if "images" not in self._f:
            return None
        g = self._f["images"]
        _, b, h, w = g["data"].shape
        bands = tuple(str(x) for x in g.attrs["bands"])
        return ImageSpec(bands=bands, height=h, width=w, pixel_scale=float(g.attrs["pixel_scale_arcsec"]),
                         unit=str(g.attrs.get("unit", "")))

    @property
    def images(self) -> h5py.Dataset:
        """The lazy image array, shape (n_objects, bands, H, W)."""
        return self._modality("images")["data"]

    @property
    def spectra(self) -> h5py.Group:
        """The lazy spectra group (``flux``, ``ivar``, ``mask``, ``wavelength``)."""
        return self._modality("spectra")

    def _modality(self, name: str) -> h5py.Group:
        if name not in self._f:
            raise ValueError(
                f"{self.path} has no {name!r} modality; it has {list(self.modalities)}: choose one of those "
                "in the recipe's inputs"
            )
        return self._f[name]

    def _missing(self, name: str, what: str, have: Sequence[str]) -> ValueError:
        return ValueError(f"{what} {name!r} not found in {self.path}; available: {list(have)}")

    # -- reading ------------------------------------------------------------------
    @_reads
    def target(self, name: str, indices: ArrayLike | None = None) -> NDArray[np.float64]:
        """Values of one target, shape (n,) (all rows, or ``indices``)."""
        if name not in self._f.get("targets", {}):
            raise self._missing(name, "target", self.target_names)
        values = self._f["targets"][name][...]
        return values if indices is None else values[np.asarray(indices)]

    @_reads
    def tabular(self, columns: Sequence[str] | None = None, indices: ArrayLike | None = None) -> pd.DataFrame:
        """Tabular columns as a DataFrame (all rows, or ``indices``), indexed by nothing."""
        have = self.tabular_columns
        columns = list(have if columns is None else columns)
        data = {}
        for c in columns:
            if c not in have:
                raise self._missing(c, "tabular column", have)
            d = self._f["tabular"][c]
            values = d.asstr()[...] if h5py.check_string_dtype(d.dtype) else d[...]
            data[c] = values if indices is None else values[np.asarray(indices)]
        return pd.DataFrame(data)

    def row_view(self, name: str, rows: slice) -> np.ndarray | None:
        """Rows ``rows`` of array ``name`` mapped from the file without a copy, or None where they cannot be.

        They can be where the array is stored unfiltered (no compression) in native byte
        order, with whole rows per HDF5 chunk and the chunks of these rows back to back in
        the file, as :class:`DatasetWriter` lays out aligned blocks of
        :data:`FLUSH_ROWS` rows. The pages are mapped read-only (a private writable
        mapping would copy every page as it is populated) and populated at once where the
        system allows (Linux ``MAP_POPULATE``), so reading them costs no page faults. For a dense network on
        prepared spectra this saves the copy of a read, ~2 us of ~11 a spectrum.

        Parameters
        ----------
        name : str
            Array path inside the file, e.g. ``"spectra/flux"``.
        rows : slice
            Consecutive rows (step 1).

        Returns
        -------
        numpy.ndarray or None
            A read-only view of shape ``(n_rows, *row_shape)``, or None: the caller then
            reads the rows as usual.
        """
        start, stop, step = rows.indices(len(self))
        if step != 1 or stop <= start or name not in self._f:
            return None
        layout = self._row_layout(name)
        if layout is None:
            return None
        offsets, per_chunk, row_bytes, dtype, row_shape = layout
        c0, c1 = start // per_chunk, (stop - 1) // per_chunk
        off = offsets[c0:c1 + 1]
        if off.min() < 0 or np.any(np.diff(off) != per_chunk * row_bytes):
            return None
        first = int(off[0]) + (start - c0 * per_chunk) * row_bytes
        length = (stop - start) * row_bytes
        base = first - first % mmap.ALLOCATIONGRANULARITY
        try:
            if self._fd is None:
                self._fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
            if hasattr(mmap, "MAP_SHARED"):
                m = mmap.mmap(self._fd, length + first - base, offset=base, prot=mmap.PROT_READ,
                              flags=mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0))
            else:
                m = mmap.mmap(self._fd, length + first - base, offset=base, access=mmap.ACCESS_READ)
        except (OSError, ValueError, OverflowError):
            return None
        count = (stop - start) * int(np.prod(row_shape, dtype=np.int64))
        return np.frombuffer(m, dtype=dtype, count=count, offset=first - base).reshape(stop - start, *row_shape)

    def _row_layout(self, name: str):
        """(byte offset of every chunk of rows, or -1; rows per chunk; bytes per row; dtype; row shape), or None."""
        if name in self._layouts:
            return self._layouts[name]
        d = self._f[name]
        layout = None
        try:
            filters = d.id.get_create_plist().get_nfilters()
            row_shape = tuple(d.shape[1:])
            row_bytes = int(np.prod(row_shape, dtype=np.int64)) * d.dtype.itemsize
            if filters == 0 and d.dtype.isnative and d.dtype.kind in "fiub" and d.shape[0] and row_bytes:
                if d.chunks is None:
                    offset = d.id.get_offset()
                    if offset is not None:
                        layout = (np.array([offset], np.int64), d.shape[0], row_bytes, d.dtype, row_shape)
                elif tuple(d.chunks[1:]) == row_shape:
                    per_chunk = d.chunks[0]
                    offsets = np.full(-(-d.shape[0] // per_chunk), -1, np.int64)

                    def visit(info) -> None:
                        offsets[info.chunk_offset[0] // per_chunk] = info.byte_offset

                    d.id.chunk_iter(visit)
                    layout = (offsets, per_chunk, row_bytes, d.dtype, row_shape)
        except (AttributeError, TypeError, ValueError, OSError):  # old h5py/HDF5 without chunk_iter
            layout = None
        self._layouts[name] = layout
        return layout

    @_reads
    def read_rows(self, array: h5py.Dataset, indices: ArrayLike | slice) -> np.ndarray:
        """Read rows of a lazy array in the order given (h5py wants increasing indices).

        ``indices`` may be a slice, a boolean mask of shape (n_objects,), or integer row
        indices in any order, repeated or negative (counted from the end, as in numpy).
        """
        if isinstance(indices, slice):
            return array[indices]
        n = array.shape[0]
        idx = np.asarray(indices)
        if idx.dtype == bool:
            if idx.shape != (n,):
                raise IndexError(f"boolean mask has shape {idx.shape}, expected ({n},) (one value per object)")
            idx = np.flatnonzero(idx)
        idx = idx.astype(np.int64, copy=False).ravel()
        if idx.size == 0:
            return np.empty((0, *array.shape[1:]), dtype=array.dtype)
        bad = idx[(idx < -n) | (idx >= n)]
        if bad.size:
            raise IndexError(f"row index {int(bad[0])} is out of range for {n} rows (valid: {-n}..{n - 1})")
        idx = np.where(idx < 0, idx + n, idx)
        order = np.argsort(idx, kind="stable")
        sorted_idx = idx[order]
        uniq, inverse = np.unique(sorted_idx, return_inverse=True)
        lo, hi = int(uniq[0]), int(uniq[-1]) + 1
        if hi - lo <= 2 * len(uniq):
            # Dense request: one contiguous read is much faster than a point selection.
            block = array[lo:hi][uniq - lo]
        else:
            block = array[uniq]
        out = np.empty((len(idx), *array.shape[1:]), dtype=array.dtype)
        out[order] = block[inverse]
        return out

    def read_images(self, indices: ArrayLike | slice) -> NDArray[np.float32]:
        """Images for the given rows, array of shape (n, bands, H, W)."""
        return self.read_rows(self.images, indices)

    @_reads
    def read_spectra(self, indices: ArrayLike | slice, keys: Sequence[str] = ("flux", "ivar")) -> dict[str, np.ndarray]:
        """Spectra arrays for the given rows, each of shape (n, L) (a common grid stays (L,))."""
        g = self.spectra
        out = {}
        for k in keys:
            if k not in g:
                raise self._missing(k, "spectra array", list(g.keys()))
            d = g[k]
            out[k] = d[...] if (k == "wavelength" and d.ndim == 1) else self.read_rows(d, indices)
        return out

    @property
    @_reads
    def split_names(self) -> tuple[str, ...]:
        """Names of the stored splits."""
        return tuple(self._f.get("splits", {}).keys())

    @property
    def split_seed(self) -> int | None:
        """Seed that made the stored splits (``None`` if unknown)."""
        if "splits" not in self._f:
            return None
        seed = int(self._f["splits"].attrs.get("seed", -1))
        return None if seed < 0 else seed

    @_reads
    def split(self, name: str) -> NDArray[np.int64]:
        """Row indices of a stored split, e.g. ``"train"``."""
        if name not in self.split_names:
            raise self._missing(name, "split", self.split_names)
        return self._f["splits"][name][...]
