"""Spectrum preprocessing: log-wavelength resampling, rest-frame shift, standardisation, augmentation.

The steps of the stellar-parameter paper (``001_*.txt`` in ``../shared/seeds/``), each a
fitted, picklable transform with the scikit-learn contract (``__init__`` stores keyword
arguments, ``fit`` validates and returns ``self``, learned state ends in ``_``):

1. :class:`LogLamResampler` puts every spectrum on one grid, uniform in
   ``loglam = log10(wavelength / Angstrom)`` (the paper: 4000 points, 3.5754-3.9670), by
   cubic-spline interpolation with the flux clamped to its edge values outside a
   spectrum's coverage. Given radial velocities, it shifts to the rest frame in the same
   interpolation (:func:`rest_frame_shift`).
2. :class:`SpectrumStandardizer` subtracts each spectrum's mean and divides by its
   standard deviation.
3. :class:`GaussianNoiseAugmenter` adds noisy copies of the training spectra.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.interpolate import CubicSpline
from scipy.linalg import solve_banded
from sklearn.base import BaseEstimator

from astroreg.data._ingest_spectra import SDSS_BAD_PIXEL_BITS

PAPER_LOGLAM_GRID: tuple[float, float, int] = (3.5754, 3.9670, 4000)
"""The paper's common grid: ``(loglam_min, loglam_max, n_pixels)``, 3762-9268 Angstrom."""

SPEED_OF_LIGHT_KMS = 299_792.458
"""Speed of light in vacuum, km/s."""

_BAD_PIXELS = ("interpolate", "mask")


def loglam_grid(loglam_min: float, loglam_max: float, n_pixels: int) -> NDArray[np.float64]:
    """A grid uniform in ``log10(wavelength / Angstrom)``, array of shape (n_pixels,).

    Examples
    --------
    >>> g = loglam_grid(3.5754, 3.9670, 4000)
    >>> round(10 ** g[0]), round(10 ** g[-1])
    (3762, 9268)
    """
    return np.linspace(float(loglam_min), float(loglam_max), int(n_pixels))


def doppler_loglam_shift(rv_kms: ArrayLike) -> NDArray[np.float64]:
    """Relativistic Doppler shift in loglam, ``log10(sqrt((1 + beta) / (1 - beta)))``.

    Parameters
    ----------
    rv_kms : float or array of shape (n,)
        Radial velocities in km/s (positive: receding), ``|rv| < c``.

    Returns
    -------
    float or array of shape (n,)
        The additive shift: ``loglam_observed - loglam_rest``.
    """
    rv = np.asarray(rv_kms, dtype=np.float64)
    bad = ~np.isfinite(rv) | (np.abs(rv) >= SPEED_OF_LIGHT_KMS)
    if bad.any():
        where = np.flatnonzero(bad.ravel())[:5].tolist()
        raise ValueError(
            f"radial velocities must be finite and below c = {SPEED_OF_LIGHT_KMS} km/s in size; "
            f"{int(bad.sum())} are not (positions {where}, values {rv.ravel()[where].tolist()}); "
            "drop those spectra or fill missing RVs (e.g. RV_ADOP = -9999 is stored as NaN)"
        )
    beta = rv / SPEED_OF_LIGHT_KMS
    return 0.5 * np.log10((1.0 + beta) / (1.0 - beta))


def redshift_velocity(z: ArrayLike) -> NDArray[np.float64]:
    """Radial velocity in km/s of a redshift, ``v = c ((1+z)^2 - 1) / ((1+z)^2 + 1)``.

    The inverse of the relativistic Doppler relation of :func:`doppler_loglam_shift`
    (``1 + z = sqrt((1 + beta) / (1 - beta))``): for SDSS stars, the pipeline redshift
    ``Z`` of HDU 2 as a velocity, the fallback for a missing ``RV_ADOP``.

    Examples
    --------
    >>> round(float(redshift_velocity(1e-3)), 3)
    299.643
    """
    q = (1.0 + np.asarray(z, dtype=np.float64)) ** 2
    return SPEED_OF_LIGHT_KMS * (q - 1.0) / (q + 1.0)


def rest_frame_shift(loglam: ArrayLike, rv_kms: ArrayLike) -> NDArray[np.float64]:
    """Move log-wavelengths to the rest frame with the relativistic Doppler relation.

    ``lambda_rest = lambda_obs * sqrt((1 - beta) / (1 + beta))`` with ``beta = rv / c``,
    which in log-wavelength is an additive shift,
    ``loglam_rest = loglam - log10(sqrt((1 + beta) / (1 - beta)))`` (Bolton et al. 2012).
    The flux is unchanged; re-interpolate it onto a common grid with
    :meth:`LogLamResampler.transform` (or pass ``rv_kms=`` there, which does both).

    Parameters
    ----------
    loglam : array of shape (L,) or (n, L)
        Observed ``log10(wavelength / Angstrom)``.
    rv_kms : float or array of shape (n,)
        Heliocentric radial velocities in km/s, e.g. SSPP's ``RV_ADOP``.

    Returns
    -------
    array
        Rest-frame loglam: shape (L,) for a scalar RV, (n, L) for n RVs.

    Raises
    ------
    ValueError
        If an RV is NaN, infinite or not below the speed of light, or the shapes disagree.

    Examples
    --------
    >>> lam = rest_frame_shift(np.log10([6564.61 * np.sqrt((1 + 1e-3) / (1 - 1e-3))]), 299.792458)
    >>> float(np.round(10 ** lam[0], 6))
    6564.61
    """
    loglam = np.asarray(loglam, dtype=np.float64)
    shift = doppler_loglam_shift(rv_kms)
    if shift.ndim == 0:
        return loglam - shift
    if shift.ndim != 1 or loglam.ndim not in (1, 2):
        raise ValueError(
            f"rv_kms has shape {shift.shape} and loglam {loglam.shape}; expected one RV per spectrum, "
            "shape (n,), with loglam of shape (L,) or (n, L)"
        )
    if loglam.ndim == 2 and loglam.shape[0] != shift.shape[0]:
        raise ValueError(f"loglam has {loglam.shape[0]} spectra but rv_kms has {shift.shape[0]} values")
    return (loglam[None, :] if loglam.ndim == 1 else loglam) - shift[:, None]


def _bad_pixels(flux: NDArray, ivar: NDArray | None, mask: NDArray | None, bad_mask_bits: int | None) -> NDArray:
    bad = ~np.isfinite(flux)
    if ivar is not None:
        bad |= ~(ivar > 0)
    if mask is not None:
        m = np.asarray(mask)
        if not np.issubdtype(m.dtype, np.integer):
            raise TypeError(f"mask must be an integer (bit) array, got dtype {m.dtype}")
        bits = np.iinfo(np.uint64).max if bad_mask_bits is None else int(bad_mask_bits)
        bad |= (m.astype(np.uint64) & np.uint64(bits)) != 0
    return bad


def resample_spectrum(
    loglam: NDArray,
    flux: NDArray,
    grid: NDArray,
    *,
    ivar: NDArray | None = None,
    bad: NDArray | None = None,
    bad_pixels: str = "interpolate",
) -> tuple[NDArray[np.float64], NDArray[np.float64] | None, NDArray[np.bool_]]:
    """Resample one spectrum onto ``grid`` (see :class:`LogLamResampler`).

    Parameters
    ----------
    loglam, flux : arrays of shape (L,)
        Input pixels; ``loglam`` strictly increasing.
    grid : array of shape (M,)
        Output loglam.
    ivar : array of shape (L,), optional
        Inverse variance of ``flux``.
    bad : bool array of shape (L,), optional
        Pixels left out of the spline.
    bad_pixels : {"interpolate", "mask"}
        What output pixels next to a bad input pixel get: the spline value, or NaN.

    Returns
    -------
    flux : array of shape (M,)
    ivar : array of shape (M,) or None
        ``None`` when no ``ivar`` was given.
    no_data : bool array of shape (M,)
        Output pixels outside the good coverage or next to a bad input pixel.
    """
    bad = np.zeros(flux.shape, bool) if bad is None else np.asarray(bad, bool)
    good = ~bad
    xg, yg = loglam[good], flux[good]
    if xg.size >= 2:
        # Clamping: outside the good pixels the flux keeps its edge value (the paper's choice).
        out = CubicSpline(xg, yg)(np.clip(grid, xg[0], xg[-1]))
        inside = (grid >= xg[0]) & (grid <= xg[-1])
    elif xg.size == 1:
        out = np.full(grid.shape, float(yg[0]))
        inside = grid == xg[0]
    else:
        out = np.zeros(grid.shape)
        inside = np.zeros(grid.shape, bool)
    # Each output pixel lies between input pixels k and k + 1 (weight t on k + 1); it has
    # data only when the pixels it depends on do (t == 0 or 1 means it sits on a node).
    k = np.clip(np.searchsorted(loglam, grid, side="right") - 1, 0, max(loglam.size - 2, 0))
    k1 = np.minimum(k + 1, loglam.size - 1)
    step = loglam[k1] - loglam[k]
    t = np.clip(np.divide(grid - loglam[k], step, out=np.zeros_like(grid), where=step > 0), 0.0, 1.0)
    no_data = ~inside | (bad[k] & (t < 1)) | (bad[k1] & (t > 0))
    if bad_pixels == "mask":
        out = np.where(no_data & inside, np.nan, out)
    ivar_out = None
    if ivar is not None:
        var = np.divide(1.0, ivar, out=np.zeros(ivar.shape), where=good & (ivar > 0))
        v = (1.0 - t) * var[k] + t * var[k1]
        ivar_out = np.divide(1.0, v, out=np.zeros_like(v), where=~no_data & (v > 0))
    return out, ivar_out, no_data


# Spectra per block (one tridiagonal solve, then the evaluation): small enough for the
# block's (16, 4000) float64 temporaries to stay in a 2 MiB L2 cache. On the 2-core EPYC
# machines 8-16 gave ~7,300 spectra/s on one core, 128 gave 2,500; two threads over blocks
# gained nothing (the many small numpy calls hold the GIL).
_SOLVE_BLOCK = 16
_ROW_BLOCK = 64  # spectra per block of SpectrumStandardizer.transform, for the same reason


def _resample_common_grid(
    loglam: NDArray[np.float64],
    flux: NDArray[np.float64],
    grid: NDArray[np.float64],
    shift: NDArray[np.float64] | None,
    bad: NDArray[np.bool_],
    ivar: NDArray[np.float64] | None,
    bad_pixels: str,
    with_ivar: bool,
) -> tuple[NDArray[np.float32], NDArray[np.float32] | None, NDArray[np.bool_]]:
    """:func:`resample_spectrum` for many spectra on one input grid, without a Python loop per spectrum.

    The same numbers as calling :func:`resample_spectrum` on each row (not-a-knot cubic spline
    through each spectrum's good pixels, evaluated at the clamped grid): the spline systems of
    all spectra are one block-tridiagonal system, solved in one LAPACK ``gtsv`` call per
    :data:`_SOLVE_BLOCK` spectra as :class:`scipy.interpolate.CubicSpline` solves one, and the
    polynomial pieces are evaluated with vectorised gathers.

    Parameters
    ----------
    loglam : array of shape (L,)
        Common, strictly increasing input loglam (observed frame).
    flux : array of shape (n, L)
    grid : array of shape (M,)
    shift : array of shape (n,) or None
        Rest-frame shift subtracted from ``loglam`` per spectrum.
    bad : bool array of shape (n, L)
    ivar : array of shape (n, L) or None
    bad_pixels : {"interpolate", "mask"}
    with_ivar : bool
        Compute the output ivar (needs ``ivar``).

    Returns
    -------
    flux : float32 array (n, M); ivar : float32 array (n, M) or None; done : bool array (n,)
        ``done`` is False for spectra with fewer than 4 good pixels, left to the caller.
    """
    n, size = flux.shape
    shift = np.zeros(n) if shift is None else shift
    out = np.zeros((n, grid.size), np.float32)
    out_ivar = np.zeros((n, grid.size), np.float32) if (with_ivar and ivar is not None) else None
    good = ~bad
    n_good = good.sum(axis=1)
    done = n_good >= 4
    rows_all = np.flatnonzero(done)
    index = _grid_index(loglam)

    def block(rows: NDArray[np.intp]) -> None:
        g_rows = good[rows]
        ng = n_good[rows]
        start = np.concatenate([[0], np.cumsum(ng)[:-1]])
        last = start + ng - 1
        # Knots and values of every spectrum, one after the other (row-major order keeps each
        # spectrum's good pixels together and increasing).
        x_rows = loglam[None, :] - shift[rows, None]
        xg = x_rows[g_rows]
        yg = flux[rows][g_rows]
        total = xg.size
        dx = np.diff(xg)
        slope = np.diff(yg) / np.where(dx != 0, dx, 1.0)
        # Left / right interval width and slope of every knot (garbage across block ends, unused).
        dl = np.concatenate([[1.0], dx])
        dr = np.concatenate([dx, [1.0]])
        sl = np.concatenate([[0.0], slope])
        sr = np.concatenate([slope, [0.0]])
        ab = np.zeros((3, total))
        b = 3.0 * (dr * sl + dl * sr)
        ab[1] = 2.0 * (dl + dr)
        ab[0, 1:] = dl[:-1]          # upper diagonal of row j (column j + 1): dx[j - 1]
        ab[2, :-1] = dr[1:]          # lower diagonal of row j (column j - 1): dx[j]
        # Not-a-knot ends, as scipy.interpolate.CubicSpline writes them.
        f, e = start, last
        d0 = xg[f + 2] - xg[f]
        ab[1, f] = dr[f + 1]
        ab[0, f + 1] = d0
        b[f] = ((dr[f] + 2 * d0) * dr[f + 1] * sr[f] + dr[f] ** 2 * sr[f + 1]) / d0
        d1 = xg[e] - xg[e - 2]
        ab[1, e] = dl[e - 1]
        ab[2, e - 1] = d1
        b[e] = (dl[e] ** 2 * sl[e - 1] + (2 * d1 + dl[e]) * dl[e - 1] * sl[e]) / d1
        # No coupling between consecutive spectra.
        ab[0, f[1:]] = 0.0
        ab[2, e[:-1]] = 0.0
        s = solve_banded((1, 1), ab, b, overwrite_ab=True, overwrite_b=True, check_finite=False)
        # Polynomial pieces on [xg[j], xg[j + 1]] (scipy's CubicHermiteSpline coefficients).
        t = (s[:-1] + s[1:] - 2.0 * slope) / dr[:-1]
        coef = np.empty((4, total))
        coef[0, :-1] = t / dr[:-1]
        coef[1, :-1] = (slope - s[:-1]) / dr[:-1] - t
        coef[2, :-1] = s[:-1]
        coef[3] = yg
        coef[:3, -1] = 0.0
        # Interval of every output pixel: the last good knot at or before it, in [0, ng - 2].
        lo, hi = xg[f], xg[e]
        q = np.clip(grid[None, :], lo[:, None], hi[:, None])
        k_full = index(q + shift[rows, None])
        np.clip(k_full, 0, size - 1, out=k_full)
        k_full += (np.arange(len(rows)) * size)[:, None]
        # Interval (global index into coef) of each input pixel's last good knot at or before it.
        rank = np.cumsum(g_rows, axis=1) - 1
        np.clip(rank, 0, (ng - 2)[:, None], out=rank)
        rank += start[:, None]
        m = rank.ravel().take(k_full)
        dq = q
        dq -= xg.take(m)
        val = coef[0].take(m)  # Horner, in place
        for j in (1, 2, 3):
            val *= dq
            val += coef[j].take(m)
        if bad_pixels == "mask" or out_ivar is not None:
            inside = (grid[None, :] >= lo[:, None]) & (grid[None, :] <= hi[:, None])
            # As resample_spectrum: the input pixels k, k + 1 around each output pixel.
            k = np.clip(index(grid[None, :] + shift[rows, None]), 0, size - 2)
            xk, xk1 = x_rows[np.arange(len(rows))[:, None], k], x_rows[np.arange(len(rows))[:, None], k + 1]
            step = xk1 - xk
            tw = np.clip(np.divide(grid[None, :] - xk, step, out=np.zeros_like(step), where=step > 0), 0.0, 1.0)
            bad_r = bad[rows]
            no_data = (~inside | (np.take_along_axis(bad_r, k, 1) & (tw < 1))
                       | (np.take_along_axis(bad_r, k + 1, 1) & (tw > 0)))
            if bad_pixels == "mask":
                val = np.where(no_data & inside, np.nan, val)
            if out_ivar is not None:
                iv = ivar[rows]
                var = np.divide(1.0, iv, out=np.zeros(iv.shape), where=g_rows & (iv > 0))
                v = (1.0 - tw) * np.take_along_axis(var, k, 1) + tw * np.take_along_axis(var, k + 1, 1)
                out_ivar[rows] = np.divide(1.0, v, out=np.zeros_like(v), where=~no_data & (v > 0))
        out[rows] = val

    for b in range(0, rows_all.size, _SOLVE_BLOCK):
        block(rows_all[b:b + _SOLVE_BLOCK])
    return out, out_ivar, done


def _grid_index(loglam: NDArray[np.float64]):
    """``searchsorted(loglam, v, side="right") - 1``, by arithmetic when ``loglam`` is uniform.

    On a uniform grid the index may be off by one only when ``v`` sits on a node to within
    rounding, where the spline and the linear weights are continuous: the results agree.
    """
    step = (loglam[-1] - loglam[0]) / (loglam.size - 1)
    if np.max(np.abs(np.diff(loglam) - step)) < 1e-6 * step:
        x0, inv = loglam[0], 1.0 / step

        def index(v):  # v is a temporary: overwritten
            v -= x0
            v *= inv
            np.floor(v, out=v)
            return v.astype(np.intp)
        return index
    return lambda v: np.searchsorted(loglam, v, side="right") - 1


class LogLamResampler(BaseEstimator):
    """Resample spectra onto a common grid uniform in log-wavelength, by cubic spline.

    Each spectrum is interpolated with :class:`scipy.interpolate.CubicSpline` through its
    good pixels. Outside its good coverage the flux is clamped to the edge value (the
    paper's choice, so no output pixel is undefined) and the output ``ivar`` is 0.

    Bad input pixels (non-finite flux, ``ivar <= 0``, or a bad mask bit) are left out of
    the spline. ``bad_pixels="interpolate"`` fills the output pixels that depend on them
    with the spline through the good neighbours; ``"mask"`` sets their flux to NaN
    (:class:`SpectrumStandardizer` fills NaN with 0, the spectrum's mean). Either way
    their output ``ivar`` is 0.

    The output ``ivar`` is an approximation: the variance ``1 / ivar`` of the two input
    pixels around each output pixel, linearly interpolated. It ignores the correlation
    between neighbouring output pixels that interpolation introduces and the small
    variance reduction of averaging, so it is close for output grids with a spacing near
    the input's (the paper's grid, 0.98e-4 in loglam, over SDSS's 1e-4) and too small
    (pessimistic) when the output grid is much coarser.

    Parameters
    ----------
    loglam_min, loglam_max : float or None
        Grid ends in ``log10(wavelength / Angstrom)``. ``None``: learned by :meth:`fit`,
        the smallest (largest) good loglam over the training spectra, as in the paper.
        Default: the paper's 3.5754 and 3.9670 (3762-9268 Angstrom).
    n_pixels : int
        Grid points, default 4000.
    bad_pixels : {"interpolate", "mask"}
        What becomes of output pixels next to bad input pixels (see above).
    bad_mask_bits : int or None
        Mask bits that make a pixel bad. Default: SDSS's NOPLUG, BADTRACE, BADFLAT,
        BADARC, FULLREJECT, NODATA, COMBINEREJ and astroreg's padding bit
        (:data:`~astroreg.data.SDSS_BAD_PIXEL_BITS`); bits such as BRIGHTSKY or
        MANYBADCOLUMNS, set on pixels with good data, are kept. ``None``: every bit;
        ``0``: the mask is ignored. For a dataset, ``ds.spectra["mask"].attrs["bad_bits"]``.

    Attributes
    ----------
    grid_ : array of shape (n_pixels,)
        Output loglam.
    wavelength_ : array of shape (n_pixels,)
        Output vacuum (or the input's medium) wavelength in Angstrom, ``10 ** grid_``.

    Examples
    --------
    >>> res = LogLamResampler().fit()
    >>> flux, ivar = res.transform(ds_flux, loglam=np.log10(ds_wavelength), ivar=ds_ivar)  # doctest: +SKIP
    >>> flux.shape  # doctest: +SKIP
    (n_spectra, 4000)
    """

    def __init__(
        self,
        *,
        loglam_min: float | None = PAPER_LOGLAM_GRID[0],
        loglam_max: float | None = PAPER_LOGLAM_GRID[1],
        n_pixels: int = PAPER_LOGLAM_GRID[2],
        bad_pixels: Literal["interpolate", "mask"] = "interpolate",
        bad_mask_bits: int | None = SDSS_BAD_PIXEL_BITS,
    ) -> None:
        self.loglam_min = loglam_min
        self.loglam_max = loglam_max
        self.n_pixels = n_pixels
        self.bad_pixels = bad_pixels
        self.bad_mask_bits = bad_mask_bits

    def fit(
        self,
        flux: ArrayLike | None = None,
        *,
        loglam: ArrayLike | None = None,
        ivar: ArrayLike | None = None,
        mask: ArrayLike | None = None,
    ) -> LogLamResampler:
        """Check the settings and fix the grid.

        Parameters
        ----------
        flux : array of shape (n, L), optional
            Training spectra; needed only when ``loglam_min`` or ``loglam_max`` is ``None``.
        loglam : array of shape (L,) or (n, L), optional
            Their ``log10(wavelength / Angstrom)``.
        ivar, mask : arrays of shape (n, L), optional
            Inverse variance and bit mask, to find the good coverage.

        Returns
        -------
        LogLamResampler
            ``self``.
        """
        if self.bad_pixels not in _BAD_PIXELS:
            raise ValueError(f"bad_pixels is {self.bad_pixels!r}; allowed: {list(_BAD_PIXELS)}")
        if isinstance(self.n_pixels, bool) or not isinstance(self.n_pixels, (int, np.integer)) or self.n_pixels < 2:
            raise ValueError(f"n_pixels must be an integer >= 2, got {self.n_pixels!r}")
        lo, hi = self.loglam_min, self.loglam_max
        if lo is None or hi is None:
            if flux is None or loglam is None:
                raise ValueError(
                    "loglam_min or loglam_max is None, so fit() learns it from the training spectra: "
                    "call fit(flux, loglam=..., ivar=...) or set both ends"
                )
            f, x, iv, m = _as_batch(flux, loglam, ivar, mask)
            ends = []
            for i in range(len(f)):
                bad = _bad_pixels(f[i], None if iv is None else iv[i], None if m is None else m[i],
                                  self.bad_mask_bits) | ~np.isfinite(x[i])
                if not bad.all():
                    ends += [x[i][~bad].min(), x[i][~bad].max()]
            if not ends:
                raise ValueError("no good pixel in the training spectra; cannot learn the grid ends")
            lo = float(min(ends)) if lo is None else lo
            hi = float(max(ends)) if hi is None else hi
        if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
            raise ValueError(f"the grid needs loglam_min < loglam_max, got {lo!r} and {hi!r}")
        if hi > 6 or lo < 2:
            raise ValueError(
                f"loglam_min={lo!r}, loglam_max={hi!r} look like wavelengths, not log10(wavelength / Angstrom) "
                "(optical spectra have loglam 3.5-4.1); pass np.log10 of the wavelengths"
            )
        self.grid_ = loglam_grid(lo, hi, self.n_pixels)
        return self

    @property
    def wavelength_(self) -> NDArray[np.float64]:
        """Output wavelengths in Angstrom, array of shape (n_pixels,)."""
        return 10.0 ** self._grid()

    def _grid(self) -> NDArray[np.float64]:
        grid = getattr(self, "grid_", None)
        if grid is None:
            raise RuntimeError("LogLamResampler is not fitted; call fit() first")
        return grid

    def transform(
        self,
        flux: ArrayLike,
        *,
        loglam: ArrayLike,
        ivar: ArrayLike | None = None,
        mask: ArrayLike | None = None,
        rv_kms: ArrayLike | None = None,
        return_ivar: bool = True,
    ) -> tuple[NDArray[np.float32], NDArray[np.float32] | None]:
        """Resample spectra onto the grid (in the rest frame when ``rv_kms`` is given).

        Parameters
        ----------
        flux : array of shape (n, L)
            Flux, e.g. in 1e-17 erg/s/cm^2/Angstrom. A list of n 1-D arrays of different
            lengths is accepted too (then ``loglam``, ``ivar`` and ``mask`` are lists alike).
        loglam : array of shape (L,) or (n, L)
            ``log10(wavelength / Angstrom)`` of the input pixels, increasing.
        ivar : array of shape (n, L), optional
            Inverse variance of the flux; 0 marks a pixel without data.
        mask : integer array of shape (n, L), optional
            Bit mask (e.g. SDSS ``and_mask``); bits in ``bad_mask_bits`` mark bad pixels.
        rv_kms : array of shape (n,), optional
            Radial velocities in km/s: the spectra are moved to the rest frame
            (:func:`rest_frame_shift`) within the same interpolation. The paper
            interpolated twice (resample, then shift and interpolate back); once is as
            good and blurs less.
        return_ivar : bool
            Propagate ``ivar`` to the output (default). ``False`` skips that work and
            returns ``None`` for it; ``ivar`` still marks the bad input pixels.

        Spectra on one common input grid (a 1-D ``loglam``, as astroreg datasets store
        them) are resampled together: one block-tridiagonal spline solve for many spectra
        and vectorised evaluation, with the same results as one
        :class:`~scipy.interpolate.CubicSpline` per spectrum, about 3 times faster.

        Returns
        -------
        flux : float32 array of shape (n, n_pixels)
            Finite everywhere with ``bad_pixels="interpolate"``.
        ivar : float32 array of shape (n, n_pixels), or None
            Propagated inverse variance (see the class notes); ``None`` without ``ivar``.
        """
        grid = self._grid()
        shift = None
        if rv_kms is not None:
            shift = doppler_loglam_shift(rv_kms)
        common = self._common_grid(flux, loglam, ivar, mask, shift, grid, return_ivar)
        if common is not None:
            return common
        f, x, iv, m = _as_batch(flux, loglam, ivar, mask)
        if shift is not None:
            shift = np.broadcast_to(shift, (len(f),)) if shift.ndim == 0 else shift
            if shift.shape != (len(f),):
                raise ValueError(f"rv_kms has shape {shift.shape}; expected one RV per spectrum, ({len(f)},)")
            x = [xi - s for xi, s in zip(x, shift)]
        out = np.empty((len(f), grid.size), np.float32)
        out_ivar = None if iv is None else np.empty_like(out)
        for i in range(len(f)):
            xi = x[i]
            if xi.shape != f[i].shape:
                raise ValueError(f"spectrum {i}: loglam has shape {xi.shape} but flux {f[i].shape}")
            if xi.size < 2 or not np.all(np.diff(xi) > 0):
                raise ValueError(
                    f"spectrum {i}: loglam must increase strictly over at least 2 pixels; sort the pixels "
                    "or drop repeated wavelengths"
                )
            bad = _bad_pixels(f[i], None if iv is None else iv[i], None if m is None else m[i], self.bad_mask_bits)
            flux_i, ivar_i, _ = resample_spectrum(
                xi, np.where(bad, 0.0, f[i]).astype(np.float64), grid,
                ivar=None if iv is None else iv[i].astype(np.float64), bad=bad, bad_pixels=self.bad_pixels,
            )
            out[i] = flux_i
            if out_ivar is not None:
                out_ivar[i] = ivar_i
        return out, (out_ivar if return_ivar else None)

    def _common_grid(self, flux, loglam, ivar, mask, shift, grid, return_ivar):
        """The batched path for spectra on one 1-D ``loglam``; ``None`` when it does not apply."""
        if not isinstance(flux, np.ndarray) or flux.ndim != 2 or np.ndim(loglam) != 1:
            return None
        x = np.asarray(loglam, dtype=np.float64)
        n, size = flux.shape
        if x.shape != (size,) or size < 2 or not np.all(np.diff(x) > 0):
            return None  # the per-spectrum path raises the precise error
        if shift is not None:
            shift = np.broadcast_to(shift, (n,)) if shift.ndim == 0 else shift
            if shift.shape != (n,):
                raise ValueError(f"rv_kms has shape {shift.shape}; expected one RV per spectrum, ({n},)")
        for a, name in ((ivar, "ivar"), (mask, "mask")):
            if a is not None and np.shape(a) != flux.shape:
                raise ValueError(f"{name} has shape {np.shape(a)}; expected {flux.shape} like flux")
        out = np.empty((n, grid.size), np.float32)
        out_ivar = np.empty_like(out) if (return_ivar and ivar is not None) else None
        # Row blocks, so that the float64 copies and masks stay in the cache.
        for b in range(0, n, _SOLVE_BLOCK):
            rows = slice(b, min(b + _SOLVE_BLOCK, n))
            f = np.asarray(flux[rows], dtype=np.float64)
            iv = None if ivar is None else np.asarray(ivar[rows], dtype=np.float64)
            bad = _bad_pixels(f, iv, None if mask is None else np.asarray(mask[rows]), self.bad_mask_bits)
            sh = None if shift is None else shift[rows]
            o, o_iv, done = _resample_common_grid(
                x, np.where(bad, 0.0, f), grid, sh, bad, iv, self.bad_pixels, return_ivar)
            for i in np.flatnonzero(~done):  # fewer than 4 good pixels: the per-spectrum spline
                o[i], ivar_i, _ = resample_spectrum(
                    x if sh is None else x - sh[i], np.where(bad[i], 0.0, f[i]), grid,
                    ivar=None if iv is None else iv[i], bad=bad[i], bad_pixels=self.bad_pixels)
                if o_iv is not None:
                    o_iv[i] = ivar_i
            out[rows] = o
            if out_ivar is not None:
                out_ivar[rows] = o_iv
        return out, out_ivar

    def fit_transform(self, flux: ArrayLike, *, loglam: ArrayLike, ivar: ArrayLike | None = None,
                      mask: ArrayLike | None = None, rv_kms: ArrayLike | None = None):
        """:meth:`fit`, then :meth:`transform` on the same spectra."""
        return self.fit(flux, loglam=loglam, ivar=ivar, mask=mask).transform(
            flux, loglam=loglam, ivar=ivar, mask=mask, rv_kms=rv_kms)


def _as_batch(flux, loglam, ivar, mask) -> tuple[list[NDArray], list[NDArray], list[NDArray] | None, list | None]:
    """Per-spectrum lists of 1-D arrays from (n, L) arrays or ragged lists."""
    if isinstance(flux, np.ndarray) or not isinstance(flux, Sequence):
        f = np.asarray(flux, dtype=np.float64)
        if f.ndim != 2:
            raise ValueError(f"flux must have shape (n_spectra, n_pixels), got {f.shape}; use flux[None] for one")
        rows = list(f)
    else:
        rows = [np.asarray(r, dtype=np.float64) for r in flux]
    n = len(rows)

    def per_row(a, name, dtype):
        if a is None:
            return None
        if isinstance(a, np.ndarray) or not isinstance(a, Sequence):
            arr = np.asarray(a, dtype=dtype)
            if name == "loglam" and arr.ndim == 1:
                return [arr] * n
            if arr.ndim != 2 or arr.shape[0] != n:
                raise ValueError(f"{name} has shape {arr.shape}; expected ({n}, n_pixels) like flux")
            return list(arr)
        if len(a) != n:
            raise ValueError(f"{name} has {len(a)} spectra but flux has {n}")
        return [np.asarray(r, dtype=dtype) for r in a]

    m = None if mask is None else per_row(mask, "mask", None)
    return rows, per_row(loglam, "loglam", np.float64), per_row(ivar, "ivar", np.float64), m


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
