"""Spectrum preprocessing: resampling onto a wavelength grid, rest-frame shift, standardisation, augmentation.

The steps of the stellar-parameter paper (``001_*.txt`` in ``../shared/seeds/``), generalised
to any wavelength grid, each a fitted transform with the scikit-learn contract (``__init__``
stores keyword arguments, ``fit`` validates and returns ``self``, learned state ends in ``_``):

1. :class:`SpectrumResampler` puts every spectrum on one :class:`WavelengthGrid` (segments
   uniform in wavelength or in log-wavelength; :func:`parse_grid` reads a recipe's
   ``grid``), by cubic-spline interpolation with the flux clamped to its edge values
   outside a spectrum's coverage; given redshifts or radial velocities it shifts to the
   rest frame in the same interpolation. :class:`LogLamResampler` is its one-segment log
   grid set in loglam (the paper: 4000 points, 3.5754-3.9670), the name older run folders
   store. The resampler lives in :mod:`astroreg.preprocess._resample` (its spline numerics in
   :mod:`astroreg.preprocess._spline`), the grids and Doppler relations in
   :mod:`astroreg.preprocess._wavelength`; their public names are re-exported here.
2. :class:`SpectrumStandardizer` subtracts each spectrum's mean and divides by its
   standard deviation.
3. :class:`GaussianNoiseAugmenter` adds noisy copies of the training spectra.

Nothing here imports :mod:`astroreg.config` or :mod:`astroreg.data`: survey readers
(:mod:`astroreg.ingest`) import this module, not the other way round.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.base import BaseEstimator

from astroreg.preprocess._resample import LogLamResampler, SpectrumResampler
from astroreg.preprocess._spline import _bad_pixels, resample_spectrum  # noqa: F401  (_bad_pixels: the engine's coverage)
from astroreg.preprocess._wavelength import (
    GRID_EXAMPLES,
    PAPER_LOGLAM_GRID,
    SPEED_OF_LIGHT_KMS,
    GridSegment,
    WavelengthGrid,
    doppler_loglam_shift,
    log_grid,
    loglam_grid,
    parse_grid,
    redshift_velocity,
    rest_frame_shift,
    velocity_redshift,
)

__all__ = [
    "GRID_EXAMPLES",
    "PAPER_LOGLAM_GRID",
    "SPEED_OF_LIGHT_KMS",
    "GaussianNoiseAugmenter",
    "GridSegment",
    "LogLamResampler",
    "SpectrumResampler",
    "SpectrumStandardizer",
    "WavelengthGrid",
    "doppler_loglam_shift",
    "log_grid",
    "loglam_grid",
    "parse_grid",
    "redshift_velocity",
    "resample_spectrum",
    "rest_frame_shift",
    "row_standardization",
    "standardize_rows_",
    "velocity_redshift",
]

_ROW_BLOCK = 64  # spectra per block of SpectrumStandardizer.transform: the block's float64 temporaries stay in L2

def _good_pixels(flux: NDArray, ivar: ArrayLike | None) -> NDArray[np.bool_]:
    good = np.isfinite(flux)
    if ivar is not None:
        iv = np.asarray(ivar)
        if iv.shape != flux.shape:
            raise ValueError(f"ivar has shape {iv.shape} but flux {flux.shape}")
        good &= iv > 0
    return good


def _check_2d(flux: ArrayLike, expected: int | None, what: str) -> NDArray[np.float64]:
    f = np.asarray(flux, dtype=np.float64)
    if f.ndim != 2:
        raise ValueError(f"{what}: flux must have shape (n_spectra, n_pixels), got {f.shape}")
    if expected is not None and f.shape[1] != expected:
        raise ValueError(f"{what} was fitted on {expected} pixels per spectrum but got {f.shape[1]}")
    return f


def _row_stats(flux: NDArray, good: NDArray) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    n_good = good.sum(axis=1)
    x = np.where(good, flux, 0.0)
    mean = np.divide(x.sum(axis=1), n_good, out=np.zeros(len(x)), where=n_good > 0)
    dev = np.where(good, flux - mean[:, None], 0.0)
    std = np.sqrt(np.divide((dev**2).sum(axis=1), n_good, out=np.zeros(len(x)), where=n_good > 0))
    return mean, std


def standardize_rows_(flux: NDArray[np.float32]) -> NDArray[np.float32]:
    """Standardise each row of a float32 array in place: ``SpectrumStandardizer().transform`` without copies.

    The numbers of :meth:`SpectrumStandardizer.transform` (no ``ivar``, ``fill_bad=0``) to
    float32 rounding (~2e-6 in standardised units): for rows whose pixels are all finite,
    the mean (numpy's pairwise float32 sum) is subtracted in place and the row scaled by
    ``1 / std`` (population std of the centred row); rows with a zero std become 0. Rows
    with a non-finite pixel go through :class:`SpectrumStandardizer`. Run in cache-sized
    row blocks, about 4 passes over the data in all: the fast path of prediction on a
    prepared dataset (:meth:`RecipePreprocessor.inputs`).

    Parameters
    ----------
    flux : float32 array of shape (n, L), C-contiguous
        Overwritten.

    Returns
    -------
    float32 array of shape (n, L)
        ``flux`` itself.
    """
    if flux.dtype != np.float32 or flux.ndim != 2 or not flux.flags.c_contiguous:
        raise ValueError(f"standardize_rows_ needs a C-contiguous float32 array (n, L), got {flux.dtype} {flux.shape}")
    n_pix = np.float32(flux.shape[1])
    for b in range(0, len(flux), _ROW_BLOCK):
        x = flux[b:b + _ROW_BLOCK]
        mean = x.sum(axis=1) / n_pix
        bad = np.flatnonzero(~np.isfinite(mean))
        if bad.size:  # NaN or inf pixels: the reference path, on the original values
            orig = x[bad].copy()
            mean[bad] = 0.0
        with np.errstate(invalid="ignore", over="ignore"):  # the bad rows are replaced below
            x -= mean[:, None]
            ss = np.einsum("ij,ij->i", x, x)
            inv = np.divide(np.float32(1.0), np.sqrt(ss / n_pix), out=np.zeros_like(ss), where=ss > 0)
            x *= inv[:, None]
        if bad.size:
            x[bad] = SpectrumStandardizer(fill_bad=0.0).fit(orig).transform(orig)
    return flux


def row_standardization(flux: NDArray[np.float32]) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Per-row ``offset`` and ``factor`` of :func:`standardize_rows_`, without writing the rows.

    ``(flux - offset[:, None]) * factor[:, None]`` is what :func:`standardize_rows_` makes of
    a row whose pixels are all finite (to float32 rounding): offset the row mean, factor one
    over its population std (0 for a constant row). Two reads of each row and no write, for
    a caller that needs only some of the standardised pixels. The variance comes from the
    mean square, which loses precision where the mean dwarfs the spread: rows with
    ``|mean| > 8 std`` (as :func:`~astroreg.models._fast.fold_standardization` treats them)
    and rows with a non-finite pixel get NaN, for the caller to standardise in full.

    Parameters
    ----------
    flux : float32 array of shape (n, L)

    Returns
    -------
    offset, factor : float32 arrays of shape (n,)
    """
    n_pix = np.float32(flux.shape[1])
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        mean = flux.sum(axis=1) / n_pix
        var = np.einsum("ij,ij->i", flux, flux) / n_pix - mean * mean
        factor = np.where(var > 0, np.float32(1.0) / np.sqrt(np.maximum(var, 0)), np.float32(0.0))
        unsure = ~np.isfinite(mean) | ~np.isfinite(var) | (mean * mean > 64 * np.maximum(var, 0))
    mean[unsure] = np.nan
    factor[unsure] = np.nan
    return mean.astype(np.float32, copy=False), factor.astype(np.float32, copy=False)


class SpectrumStandardizer(BaseEstimator):
    """Standardise each spectrum on its own: subtract its mean, divide by its standard deviation.

    ``x' = (x - mean(x)) / std(x)`` per spectrum (population std), over its good pixels:
    finite flux and, when ``ivar`` is given, ``ivar > 0``. The paper standardised over all
    pixels, clamped ends included: call :meth:`transform` without ``ivar`` for that. It
    removes the distance-driven flux scale, so the model sees line strengths and shape.
    Nothing is learned from the data; :meth:`fit` only records the number of pixels.

    Parameters
    ----------
    fill_bad : float or None
        Value given to bad pixels after standardising (0 = the spectrum's mean, so they
        carry no signal). ``None`` leaves them as computed (NaN stays NaN).

    Attributes
    ----------
    n_pixels_ : int
        Pixels per spectrum seen in :meth:`fit`.

    Examples
    --------
    >>> z = SpectrumStandardizer().fit_transform(np.array([[1.0, 2.0, 3.0]]))
    >>> [round(float(v), 4) for v in z[0]]
    [-1.2247, 0.0, 1.2247]
    """

    def __init__(self, *, fill_bad: float | None = 0.0) -> None:
        self.fill_bad = fill_bad

    def fit(self, flux: ArrayLike, ivar: ArrayLike | None = None) -> SpectrumStandardizer:
        """Record the number of pixels of ``flux``, an array of shape (n, L)."""
        if self.fill_bad is not None and not np.isfinite(self.fill_bad):
            raise ValueError(f"fill_bad must be a finite number or None, got {self.fill_bad!r}")
        self.n_pixels_ = _check_2d(flux, None, "SpectrumStandardizer").shape[1]
        return self

    def transform(self, flux: ArrayLike, ivar: ArrayLike | None = None) -> NDArray[np.float32]:
        """Standardised spectra, float32 array of shape (n, L), dimensionless.

        A spectrum with no good pixel or a zero standard deviation becomes all zeros.
        """
        expected = getattr(self, "n_pixels_", None)
        if isinstance(flux, np.ndarray) and flux.ndim == 2 and len(flux) > _ROW_BLOCK:
            _check_2d(flux[:1], expected, "SpectrumStandardizer")
            if ivar is not None and np.shape(ivar) != flux.shape:
                raise ValueError(f"ivar has shape {np.shape(ivar)} but flux {flux.shape}")
            # Row blocks: the same arithmetic, with the float64 temporaries in the cache.
            out = np.empty(flux.shape, np.float32)
            for b in range(0, len(flux), _ROW_BLOCK):
                rows = slice(b, b + _ROW_BLOCK)
                out[rows] = self._standardize(flux[rows], None if ivar is None else np.asarray(ivar)[rows], expected)
            return out
        return self._standardize(flux, ivar, expected)

    def _standardize(self, flux, ivar, expected) -> NDArray[np.float32]:
        f = _check_2d(flux, expected, "SpectrumStandardizer")
        good = _good_pixels(f, ivar)
        mean, std = _row_stats(f, good)
        scale = np.where(std > 0, std, np.inf)
        out = (f - mean[:, None]) / scale[:, None]
        if self.fill_bad is not None:
            out = np.where(good, out, self.fill_bad)
        return out.astype(np.float32)

    def fit_transform(self, flux: ArrayLike, ivar: ArrayLike | None = None) -> NDArray[np.float32]:
        """:meth:`fit`, then :meth:`transform`."""
        return self.fit(flux, ivar).transform(flux, ivar)


class GaussianNoiseAugmenter(BaseEstimator):
    """Enlarge a training set with noisy copies of its spectra.

    Each spectrum ``x`` gets ``copies`` extra versions ``x + N(0, (a * std(x))^2)``, where
    the noise level ``a`` is drawn uniformly from ``level`` for every copy, and ``std(x)``
    is the spectrum's standard deviation over its finite pixels (1 after
    :class:`SpectrumStandardizer`). The paper: 2 copies, levels 1%-5%.

    Apply it to the training split only, after the other preprocessing, and repeat the
    targets with the returned row indices (``y[rows]``). The caller does this: validation
    and test spectra must stay as observed.

    Parameters
    ----------
    copies : int
        Noisy copies per spectrum (k).
    level : (float, float)
        Range of the noise level as a fraction of each spectrum's std.
    seed : int or None
        Seed of the noise. Each :meth:`transform` call starts from it, so the same
        input gives the same output; ``None`` draws fresh noise every call.
    include_original : bool
        Put the unchanged spectra first in the output.

    Attributes
    ----------
    n_pixels_ : int
        Pixels per spectrum seen in :meth:`fit`.

    Examples
    --------
    >>> aug = GaussianNoiseAugmenter(copies=2, level=(0.01, 0.05), seed=0)
    >>> x_aug, rows = aug.fit_transform(x_train)  # doctest: +SKIP
    >>> y_aug = y_train[rows]  # doctest: +SKIP
    """

    def __init__(
        self,
        *,
        copies: int = 2,
        level: tuple[float, float] = (0.01, 0.05),
        seed: int | None = None,
        include_original: bool = True,
    ) -> None:
        self.copies = copies
        self.level = level
        self.seed = seed
        self.include_original = include_original

    def _check(self) -> tuple[float, float]:
        if isinstance(self.copies, bool) or not isinstance(self.copies, (int, np.integer)) or self.copies < 0:
            raise ValueError(f"copies must be a non-negative integer, got {self.copies!r}")
        try:
            lo, hi = (float(v) for v in self.level)
        except (TypeError, ValueError):
            raise ValueError(f"level must be a pair (low, high) of fractions, got {self.level!r}") from None
        if not (0 <= lo <= hi and np.isfinite(hi)):
            raise ValueError(f"level must satisfy 0 <= low <= high, got {self.level!r}")
        if self.copies == 0 and not self.include_original:
            raise ValueError("copies=0 with include_original=False would return no spectra")
        return lo, hi

    def fit(self, flux: ArrayLike) -> GaussianNoiseAugmenter:
        """Check the settings and record the number of pixels of ``flux`` (n, L)."""
        self._check()
        self.n_pixels_ = _check_2d(flux, None, "GaussianNoiseAugmenter").shape[1]
        return self

    def transform(self, flux: ArrayLike) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        """Originals and noisy copies.

        Parameters
        ----------
        flux : array of shape (n, L)
            Training spectra.

        Returns
        -------
        flux : float32 array of shape (n * (copies + include_original), L)
            The originals (if kept), then copy 1 of every spectrum, then copy 2, ...
        rows : int64 array of shape (n * (copies + include_original),)
            Row of ``flux`` each output spectrum comes from: repeat targets with ``y[rows]``.
        """
        lo, hi = self._check()
        f = _check_2d(flux, getattr(self, "n_pixels_", None), "GaussianNoiseAugmenter")
        n = len(f)
        _, std = _row_stats(f, np.isfinite(f))
        rng = np.random.default_rng(self.seed)
        levels = rng.uniform(lo, hi, size=(self.copies, n))
        noisy = f[None] + rng.standard_normal((self.copies, *f.shape)) * (levels * std)[:, :, None]
        parts = ([f[None]] if self.include_original else []) + [noisy]
        out = np.concatenate(parts, axis=0).reshape(-1, f.shape[1]).astype(np.float32)
        rows = np.tile(np.arange(n, dtype=np.int64), self.copies + int(bool(self.include_original)))
        return out, rows

    def fit_transform(self, flux: ArrayLike) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        """:meth:`fit`, then :meth:`transform`."""
        return self.fit(flux).transform(flux)
