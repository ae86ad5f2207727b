"""Resampling spectra onto a common wavelength grid, with bad pixels and a rest-frame shift.

:class:`SpectrumResampler` puts every spectrum on a :class:`~astroreg.preprocess._wavelength.WavelengthGrid`
(one or more segments, each uniform in wavelength or in log-wavelength) by cubic-spline
interpolation in the segment's own coordinate, with the flux clamped to its edge values
outside a spectrum's coverage; given redshifts (or radial velocities) it shifts to the rest
frame in the same interpolation. :class:`LogLamResampler` is the one-segment log grid of
the stellar-parameter paper (``001_*.txt`` in ``../shared/seeds/``: 4000 points,
3.5754-3.9670 in ``log10(wavelength / Angstrom)``), kept under its name so that run folders
naming it still load; both give the same numbers on such a grid.

Nothing here knows a survey: mask bits, file layouts and column names belong to the
readers (:mod:`astroreg.ingest`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.interpolate import CubicSpline
from scipy.linalg import solve_banded
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError

from astroreg.preprocess._wavelength import WavelengthGrid, log_grid, parse_grid

PAPER_LOGLAM_GRID: tuple[float, float, int] = (3.5754, 3.9670, 4000)
"""The paper's common grid: ``(loglam_min, loglam_max, n_pixels)``, 3762-9268 Angstrom."""

SPEED_OF_LIGHT_KMS = 299_792.458
"""Speed of light in vacuum, km/s."""

_BAD_PIXELS = ("interpolate", "mask")

# The default bad mask bits of LogLamResampler: SDSS's spPixMask bits NOPLUG, BADTRACE,
# BADFLAT, BADARC, FULLREJECT, NODATA, COMBINEREJ and astroreg's padding bit 31, the value
# of astroreg.ingest.SDSS_BAD_PIXEL_BITS (a test keeps the two equal). Written out here
# because preprocess must not import the survey readers; SpectrumResampler's default is
# every bit, and the engine passes the dataset's own ``mask.attrs["bad_bits"]``.
_LEGACY_BAD_MASK_BITS = 0b1111 | 1 << 18 | 1 << 24 | 1 << 25 | 1 << 31

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

def velocity_redshift(rv_kms: ArrayLike) -> NDArray[np.float64]:
    """Redshift of a radial velocity, relativistic: ``1 + z = sqrt((1 + beta) / (1 - beta))``, ``beta = v / c``.

    The inverse of :func:`redshift_velocity`; ``log10(1 + z)`` is the loglam shift of
    :func:`doppler_loglam_shift`.

    Parameters
    ----------
    rv_kms : float or array of shape (n,)
        Radial velocities in km/s (positive: receding), ``|rv| < c``.

    Returns
    -------
    float or array of shape (n,)
        Redshift z (dimensionless).

    Examples
    --------
    >>> round(float(velocity_redshift(299.643)), 6)
    0.001
    """
    doppler_loglam_shift(rv_kms)  # the same check and message
    beta = np.asarray(rv_kms, dtype=np.float64) / SPEED_OF_LIGHT_KMS
    return np.sqrt((1.0 + beta) / (1.0 - beta)) - 1.0


def _check_redshift(z: ArrayLike) -> NDArray[np.float64]:
    z = np.asarray(z, dtype=np.float64)
    bad = ~np.isfinite(z) | (z <= -1.0)
    if bad.any():
        where = np.flatnonzero(bad.ravel())[:5].tolist()
        raise ValueError(
            f"redshifts must be finite and above -1; {int(bad.sum())} are not (positions {where}, values "
            f"{z.ravel()[where].tolist()}); drop those spectra or fill the missing redshifts"
        )
    return z



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



class SpectrumResampler(BaseEstimator):
    """Resample spectra onto a common wavelength grid by cubic spline, optionally in the rest frame.

    Each segment of the grid is resampled on its own, in its own coordinate:
    ``log10(wavelength / Angstrom)`` for a log segment, wavelength for a linear one. Each
    spectrum is interpolated with a not-a-knot cubic spline (the numbers of
    :class:`scipy.interpolate.CubicSpline`) through its good pixels, in that coordinate;
    outside its good coverage the flux is clamped to the edge value (so no output pixel is
    undefined) and the output ``ivar`` is 0. Segments may overlap: each output pixel comes
    from the input pixels around its wavelength, whatever the other segments hold.

    Bad input pixels (non-finite flux, ``ivar <= 0``, or a bit of ``bad_mask_bits`` in the
    mask) are left out of the spline. ``bad_pixels="interpolate"`` fills the output pixels
    that depend on them with the spline through the good neighbours; ``"mask"`` sets their
    flux to NaN (:class:`SpectrumStandardizer` fills NaN with 0, the spectrum's mean).
    Either way their output ``ivar`` is 0.

    The output ``ivar`` is an approximation: the variance ``1 / ivar`` of the two input
    pixels around each output pixel, linearly interpolated. It ignores the correlation
    between neighbouring output pixels that interpolation introduces and the small
    variance reduction of averaging, so it is close for output grids with a spacing near
    the input's and too small (pessimistic) when the output grid is much coarser.

    The rest frame: ``lambda_rest = lambda_obs / (1 + z)``, done within the interpolation
    (once, rather than resample and shift and resample again). On a log segment it is the
    additive shift ``log10(1 + z)`` of the input pixels; radial velocities (``rv_kms=``)
    give it with the relativistic Doppler relation (:func:`doppler_loglam_shift`).

    Parameters
    ----------
    grid : WavelengthGrid, or any value :func:`parse_grid` accepts
        The output grid, e.g. ``[3.5754, 3.9670, 4000]`` (paper 001, log10 Angstrom) or
        ``[{scale: linear, start: 330, stop: 680, n: 176, unit: nm, name: BP}, {...}]``.
    bad_pixels : {"interpolate", "mask"}
        What becomes of output pixels next to bad input pixels (see above).
    bad_mask_bits : int or None
        Mask bits that make a pixel bad. ``None`` (default): every bit; ``0``: the mask is
        ignored. For a dataset, ``ds.spectra["mask"].attrs["bad_bits"]``, which its reader
        wrote (for SDSS, :data:`astroreg.ingest.SDSS_BAD_PIXEL_BITS`).
    resample : bool
        ``False``: the input is already on ``grid`` (its number of pixels is checked, and
        its wavelengths when given); only the bad pixels are handled (interpolated over
        within their segment, or masked). No rest-frame shift is possible then.

    Attributes
    ----------
    wavelength_grid_ : WavelengthGrid
        The parsed ``grid``.
    wavelength_ : array of shape (n_pixels,)
        Output wavelengths in Angstrom (a property of the fitted grid).

    Examples
    --------
    >>> res = SpectrumResampler([3.5754, 3.9670, 4000]).fit()
    >>> flux, ivar = res.transform(ds_flux, wavelength=ds_wavelength, ivar=ds_ivar,  # doctest: +SKIP
    ...                            redshift=z, return_ivar=True)
    >>> flux.shape  # doctest: +SKIP
    (n_spectra, 4000)
    """

    _x_name = "wavelength"  # the input coordinate, as error messages call it

    def __init__(
        self,
        grid: WavelengthGrid | Any,
        *,
        bad_pixels: Literal["interpolate", "mask"] = "interpolate",
        bad_mask_bits: int | None = None,
        resample: bool = True,
    ) -> None:
        self.grid = grid
        self.bad_pixels = bad_pixels
        self.bad_mask_bits = bad_mask_bits
        self.resample = resample

    def _check_settings(self) -> None:
        if self.bad_pixels not in _BAD_PIXELS:
            raise ValueError(f"bad_pixels is {self.bad_pixels!r}; allowed: {list(_BAD_PIXELS)}")
        bits = self.bad_mask_bits
        if bits is not None and (isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) or bits < 0):
            raise ValueError(f"bad_mask_bits must be a non-negative integer (a bit mask) or None (every bit), "
                             f"got {bits!r}")
        if not isinstance(self.resample, (bool, np.bool_)):
            raise ValueError(f"resample must be True or False, got {self.resample!r}")

    def fit(self, flux: ArrayLike | None = None, *, wavelength: ArrayLike | None = None,
            ivar: ArrayLike | None = None, mask: ArrayLike | None = None) -> SpectrumResampler:
        """Check the settings and parse the grid; the spectra, if given, are not used.

        Returns
        -------
        SpectrumResampler
            ``self``.
        """
        self._check_settings()
        self.wavelength_grid_ = parse_grid(self.grid)
        return self

    @property
    def wavelength_(self) -> NDArray[np.float64]:
        """Output wavelengths in Angstrom, array of shape (n_pixels,)."""
        return self._fitted_grid().wavelength()

    def _fitted_grid(self) -> WavelengthGrid:
        grid = getattr(self, "wavelength_grid_", None)
        if grid is None:
            raise RuntimeError(f"{type(self).__name__} is not fitted; call fit() first")
        return grid

    def _plan(self) -> list[tuple[slice, str, NDArray[np.float64]]]:
        """``(output slice, scale, pixel coordinates)`` of each segment."""
        g = self._fitted_grid()
        return [(sl, s.scale, s.coordinate()) for sl, s in zip(g.segment_slices(), g.segments)]

    def transform(
        self,
        flux: ArrayLike,
        *,
        wavelength: ArrayLike | None = None,
        ivar: ArrayLike | None = None,
        mask: ArrayLike | None = None,
        redshift: ArrayLike | None = None,
        rv_kms: ArrayLike | None = None,
        return_ivar: bool = False,
        loglam: ArrayLike | None = None,
    ) -> tuple[NDArray[np.float32], NDArray[np.float32] | None]:
        """Resample spectra onto the grid, in the rest frame when ``redshift`` or ``rv_kms`` is given.

        Parameters
        ----------
        flux : array of shape (n, L)
            Flux in any unit. A list of n 1-D arrays of different lengths is accepted too
            (then ``wavelength``, ``ivar`` and ``mask`` are lists alike).
        wavelength : array of shape (L,) or (n, L)
            Wavelengths of the input pixels in Angstrom (the grid's medium), increasing:
            one grid shared by all spectra, or one per spectrum. Optional with
            ``resample=False`` (then checked against the grid when given).
        ivar : array of shape (n, L), optional
            Inverse variance of the flux; 0 marks a pixel without data.
        mask : integer array of shape (n, L), optional
            Bit mask; bits in ``bad_mask_bits`` mark bad pixels.
        redshift : float or array of shape (n,), optional
            Redshifts z: the spectra are moved to the rest frame, ``lambda / (1 + z)``.
        rv_kms : float or array of shape (n,), optional
            Radial velocities in km/s instead (relativistic Doppler: ``1 + z =
            sqrt((1 + beta) / (1 - beta))``); on a log segment the shift is
            :func:`doppler_loglam_shift`, the arithmetic of paper 001's recipe.
        return_ivar : bool
            Propagate ``ivar`` to the output. ``False`` (default) skips that work and
            returns ``None`` for it; ``ivar`` still marks the bad input pixels.
        loglam : array of shape (L,) or (n, L), optional
            ``log10(wavelength / Angstrom)`` of the input pixels instead of ``wavelength``,
            for readers that have it (SDSS): log segments use it as it is.

        Spectra on one common input grid (a 1-D ``wavelength``) are resampled together on
        log segments: one block-tridiagonal spline solve for many spectra and vectorised
        evaluation, with the same results as one :class:`~scipy.interpolate.CubicSpline`
        per spectrum, about 3 times faster. Linear segments with a rest-frame shift take
        one spline per spectrum.

        Returns
        -------
        flux : float32 array of shape (n, n_pixels)
            Segments in the grid's order; finite everywhere with ``bad_pixels="interpolate"``.
        ivar : float32 array of shape (n, n_pixels), or None
            Propagated inverse variance (see the class notes); ``None`` without ``ivar``
            or with ``return_ivar=False``.

        Raises
        ------
        ValueError
            If the shapes disagree, the wavelengths do not increase, a redshift is not
            above -1 or a velocity not below c, or (``resample=False``) the spectra are
            not on the grid.
        """
        plan = self._plan()
        if redshift is not None and rv_kms is not None:
            raise ValueError("give redshift= or rv_kms= for the rest frame, not both")
        if not self.resample:
            if redshift is not None or rv_kms is not None:
                raise ValueError("resample=False keeps the spectra's own pixels, so it cannot shift them to the "
                                 "rest frame; set resample=True or drop redshift=/rv_kms=")
            return self._on_grid(flux, wavelength if loglam is None else _pow10(loglam), ivar, mask, return_ivar)
        if (wavelength is None) == (loglam is None):
            raise ValueError("give the input pixels as wavelength= (Angstrom, shape (L,) or (n, L)) or loglam=, "
                             "one of them; with spectra already on the grid, set resample=False")
        shift_name = "redshift" if redshift is not None else "rv_kms"
        parts = []
        for sl, scale, coord in plan:
            if scale == "log":
                x = loglam if wavelength is None else _log10(wavelength)
                parts.append(self._resample(coord, flux, x, ivar, mask, _loglam_shift(redshift, rv_kms),
                                            return_ivar, shift_name))
            else:
                x = wavelength if loglam is None else _pow10(loglam)
                if redshift is not None or rv_kms is not None:
                    z = _check_redshift(redshift) if redshift is not None else velocity_redshift(rv_kms)
                    x = _rest_wavelength(x, 1.0 + z, len(flux), shift_name)
                parts.append(self._resample(coord, flux, x, ivar, mask, None, return_ivar, shift_name))
        if len(parts) == 1:
            return parts[0]
        out = np.concatenate([p[0] for p in parts], axis=1)
        with_ivar = all(p[1] is not None for p in parts)
        return out, (np.concatenate([p[1] for p in parts], axis=1) if with_ivar else None)

    def fit_transform(self, flux: ArrayLike, **kwargs: Any) -> tuple[NDArray[np.float32], NDArray[np.float32] | None]:
        """:meth:`fit`, then :meth:`transform` with the same keyword arguments."""
        return self.fit().transform(flux, **kwargs)

    def coverage(
        self,
        flux: ArrayLike,
        *,
        wavelength: ArrayLike | None = None,
        ivar: ArrayLike | None = None,
        mask: ArrayLike | None = None,
        redshift: ArrayLike | None = None,
        rv_kms: ArrayLike | None = None,
        loglam: ArrayLike | None = None,
    ) -> NDArray[np.float64]:
        """Fraction of good pixels on the grid of each spectrum, array of shape (n,), without resampling the flux.

        A grid pixel is good where its resampled ``ivar`` would be positive: inside the
        spectrum's coverage (in the rest frame with ``redshift``/``rv_kms``) with both
        neighbouring input pixels good (finite flux, ``ivar > 0``, no bad mask bit). With
        ``resample=False``, the fraction of good pixels. The arguments are those of
        :meth:`transform` (arrays of shape (n, L); ``wavelength`` or ``loglam`` (L,) or (n, L)).
        """
        f = np.asarray(flux, dtype=np.float64)
        if f.ndim != 2:
            raise ValueError(f"flux must have shape (n_spectra, n_pixels), got {f.shape}")
        good = ~_bad_pixels(f, None if ivar is None else np.asarray(ivar), mask, self.bad_mask_bits)
        plan = self._plan()
        if not self.resample:
            return good.mean(axis=1, dtype=np.float64)
        if (wavelength is None) == (loglam is None):
            raise ValueError("give the input pixels as wavelength= (Angstrom) or loglam=, one of them")
        if redshift is not None and rv_kms is not None:
            raise ValueError("give redshift= or rv_kms= for the rest frame, not both")
        n = len(f)
        wl = np.asarray(wavelength if loglam is None else _pow10(loglam), dtype=np.float64)
        if wl.shape not in (f.shape[1:], f.shape):
            raise ValueError(f"wavelength has shape {wl.shape}; expected ({f.shape[1]},) or {f.shape} like flux")
        count = np.zeros(n, np.int64)
        for _, scale, coord in plan:
            if scale == "log":
                x = _log10(wl) if loglam is None else np.asarray(loglam, dtype=np.float64)
                shift = _loglam_shift(redshift, rv_kms)
                shift = np.zeros(n) if shift is None else _per_spectrum(shift, n, "redshift or rv_kms")
            else:
                x = wl
                z = np.zeros(n)
                if redshift is not None or rv_kms is not None:
                    z = _check_redshift(redshift) if redshift is not None else velocity_redshift(rv_kms)
                factor = _per_spectrum(1.0 + z, n, "redshift or rv_kms")
            for i in range(n):
                xi = x[i] if x.ndim == 2 else x
                ok = np.isfinite(xi)
                xi = xi[ok] - shift[i] if scale == "log" else xi[ok] / factor[i]
                # Linear interpolation of the good-pixel indicator is 1 exactly where both neighbours are good.
                frac = np.interp(coord, xi, good[i][ok].astype(np.float64), left=0.0, right=0.0)
                count[i] += np.count_nonzero(frac >= 1.0)
        return count / float(sum(c.size for _, _, c in plan))

    # -- the work ------------------------------------------------------------------------------
    def _on_grid(self, flux, wavelength, ivar, mask, return_ivar):
        """``resample=False``: spectra already on the grid; bad pixels interpolated over or masked."""
        grid = self._fitted_grid()
        f = np.asarray(flux, dtype=np.float64)
        if f.ndim != 2 or f.shape[1] != grid.n_pixels:
            raise ValueError(
                f"resample=False needs spectra already on the grid ({grid.n_pixels} pixels: {grid.describe()}), "
                f"got flux of shape {f.shape}; set resample=True to resample them")
        if wavelength is not None:
            w = np.asarray(wavelength, dtype=np.float64)
            expect = grid.wavelength()
            if w.shape not in (expect.shape, f.shape) or not np.allclose(w, expect, rtol=1e-6, atol=0.0):
                raise ValueError(
                    f"resample=False needs spectra on the grid ({grid.describe()}), but their wavelengths "
                    f"(shape {w.shape}) differ from it; set resample=True to resample them")
        iv = None if ivar is None else np.asarray(ivar, dtype=np.float64)
        for a, name in ((iv, "ivar"), (mask, "mask")):
            if a is not None and np.shape(a) != f.shape:
                raise ValueError(f"{name} has shape {np.shape(a)}; expected {f.shape} like flux")
        bad = _bad_pixels(f, iv, mask, self.bad_mask_bits)
        out = f.astype(np.float32)
        if self.bad_pixels == "mask":
            out[bad] = np.nan
        else:
            plan = self._plan()
            for i in np.flatnonzero(bad.any(axis=1)):
                for sl, _, coord in plan:
                    b = bad[i, sl]
                    if b.any():
                        # The spline through the segment's good pixels, evaluated at its bad ones.
                        values, _, _ = resample_spectrum(coord, np.where(b, 0.0, f[i, sl]), coord[b], bad=b)
                        out[i, sl][b] = values
        out_ivar = None if (iv is None or not return_ivar) else np.where(bad, 0.0, iv).astype(np.float32)
        return out, out_ivar

    def _resample(self, grid, flux, x, ivar, mask, shift, return_ivar, shift_name="rv_kms"):
        """Spectra onto ``grid`` (in the input coordinate ``x``, shifted by ``shift``): flux and ivar."""
        common = self._common_grid(flux, x, ivar, mask, shift, grid, return_ivar, shift_name)
        if common is not None:
            return common
        f, xs, iv, m = _as_batch(flux, x, ivar, mask, self._x_name)
        if shift is not None:
            shift = np.broadcast_to(shift, (len(f),)) if shift.ndim == 0 else shift
            if shift.shape != (len(f),):
                raise ValueError(f"{shift_name} has shape {shift.shape}; expected one value per spectrum, "
                                 f"({len(f)},)")
            xs = [xi - s for xi, s in zip(xs, shift)]
        out = np.empty((len(f), grid.size), np.float32)
        out_ivar = None if iv is None else np.empty_like(out)
        for i in range(len(f)):
            xi = xs[i]
            if xi.shape != f[i].shape:
                raise ValueError(f"spectrum {i}: {self._x_name} has shape {xi.shape} but flux {f[i].shape}")
            if xi.size < 2 or not np.all(np.diff(xi) > 0):
                raise ValueError(
                    f"spectrum {i}: {self._x_name} must increase strictly over at least 2 pixels; sort the pixels "
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

    def _common_grid(self, flux, x, ivar, mask, shift, grid, return_ivar, shift_name="rv_kms"):
        """The batched path for spectra on one 1-D input grid ``x``; ``None`` when it does not apply."""
        if not isinstance(flux, np.ndarray) or flux.ndim != 2 or np.ndim(x) != 1:
            return None
        x = np.asarray(x, dtype=np.float64)
        n, size = flux.shape
        if x.shape != (size,) or size < 2 or not np.all(np.diff(x) > 0):
            return None  # the per-spectrum path raises the precise error
        if shift is not None:
            shift = np.broadcast_to(shift, (n,)) if shift.ndim == 0 else shift
            if shift.shape != (n,):
                raise ValueError(f"{shift_name} has shape {shift.shape}; expected one value per spectrum, ({n},)")
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


class LogLamResampler(SpectrumResampler):
    """:class:`SpectrumResampler` on one segment uniform in log-wavelength, set by its ends in loglam.

    The resampler of paper 001 (4000 points, 3.5754-3.9670 in ``log10(wavelength /
    Angstrom)``), under the name that run folders of astroreg before named inputs store:
    the same numbers as ``SpectrumResampler(log_grid(loglam_min, loglam_max, n_pixels))``.
    Its input is ``loglam = log10(wavelength / Angstrom)`` (or ``wavelength=``).

    Parameters
    ----------
    loglam_min, loglam_max : float or None
        Grid ends in ``log10(wavelength / Angstrom)``. ``None``: learned by :meth:`fit`,
        the smallest (largest) good loglam over the training spectra, as in the paper.
        Default: the paper's 3.5754 and 3.9670 (3762-9268 Angstrom).
    n_pixels : int
        Grid points, default 4000.
    bad_pixels : {"interpolate", "mask"}
        What becomes of output pixels next to bad input pixels (see :class:`SpectrumResampler`).
    bad_mask_bits : int or None
        Mask bits that make a pixel bad. Default: SDSS's NOPLUG, BADTRACE, BADFLAT,
        BADARC, FULLREJECT, NODATA, COMBINEREJ and astroreg's padding bit
        (:data:`astroreg.ingest.SDSS_BAD_PIXEL_BITS`); bits such as BRIGHTSKY or
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

    _x_name = "loglam"
    resample = True  # not a parameter: a LogLamResampler always resamples

    def __init__(
        self,
        *,
        loglam_min: float | None = PAPER_LOGLAM_GRID[0],
        loglam_max: float | None = PAPER_LOGLAM_GRID[1],
        n_pixels: int = PAPER_LOGLAM_GRID[2],
        bad_pixels: Literal["interpolate", "mask"] = "interpolate",
        bad_mask_bits: int | None = _LEGACY_BAD_MASK_BITS,
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
        self._check_settings()
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

    def _fitted_grid(self) -> WavelengthGrid:
        g = self._grid()
        return log_grid(float(g[0]), float(g[-1]), g.size)

    @property
    def wavelength_grid_(self) -> WavelengthGrid:
        """The grid as a :class:`WavelengthGrid` (one log segment), as :class:`SpectrumResampler` has it."""
        try:
            return self._fitted_grid()
        except RuntimeError as err:
            raise NotFittedError(str(err)) from None

    def _plan(self) -> list[tuple[slice, str, NDArray[np.float64]]]:
        g = self._grid()
        return [(slice(0, g.size), "log", g)]

    def transform(
        self,
        flux: ArrayLike,
        *,
        loglam: ArrayLike | None = None,
        wavelength: ArrayLike | None = None,
        ivar: ArrayLike | None = None,
        mask: ArrayLike | None = None,
        rv_kms: ArrayLike | None = None,
        redshift: ArrayLike | None = None,
        return_ivar: bool = True,
    ) -> tuple[NDArray[np.float32], NDArray[np.float32] | None]:
        """Resample spectra onto the grid (in the rest frame when ``rv_kms`` or ``redshift`` is given).

        Parameters
        ----------
        flux : array of shape (n, L)
            Flux, e.g. in 1e-17 erg/s/cm^2/Angstrom. A list of n 1-D arrays of different
            lengths is accepted too (then ``loglam``, ``ivar`` and ``mask`` are lists alike).
        loglam : array of shape (L,) or (n, L)
            ``log10(wavelength / Angstrom)`` of the input pixels, increasing. Or give
            ``wavelength`` (Angstrom) instead, as to :class:`SpectrumResampler`.
        ivar : array of shape (n, L), optional
            Inverse variance of the flux; 0 marks a pixel without data.
        mask : integer array of shape (n, L), optional
            Bit mask (e.g. SDSS ``and_mask``); bits in ``bad_mask_bits`` mark bad pixels.
        rv_kms : array of shape (n,), optional
            Radial velocities in km/s: the spectra are moved to the rest frame
            (:func:`rest_frame_shift`) within the same interpolation. The paper
            interpolated twice (resample, then shift and interpolate back); once is as
            good and blurs less. Or ``redshift`` (z) instead.
        return_ivar : bool
            Propagate ``ivar`` to the output (default). ``False`` skips that work and
            returns ``None`` for it; ``ivar`` still marks the bad input pixels.

        Returns
        -------
        flux : float32 array of shape (n, n_pixels)
            Finite everywhere with ``bad_pixels="interpolate"``.
        ivar : float32 array of shape (n, n_pixels), or None
            Propagated inverse variance (see the class notes); ``None`` without ``ivar``.
        """
        return super().transform(flux, loglam=loglam, wavelength=wavelength, ivar=ivar, mask=mask,
                                 rv_kms=rv_kms, redshift=redshift, return_ivar=return_ivar)

    def fit_transform(self, flux: ArrayLike, *, loglam: ArrayLike, ivar: ArrayLike | None = None,
                      mask: ArrayLike | None = None, rv_kms: ArrayLike | None = None):
        """:meth:`fit`, then :meth:`transform` on the same spectra."""
        return self.fit(flux, loglam=loglam, ivar=ivar, mask=mask).transform(
            flux, loglam=loglam, ivar=ivar, mask=mask, rv_kms=rv_kms)


def _log10(wavelength: ArrayLike) -> NDArray[np.float64] | list[NDArray[np.float64]]:
    """``log10`` of wavelengths, an array or a ragged list of arrays (non-positive ones give NaN or -inf)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        if isinstance(wavelength, np.ndarray) or not isinstance(wavelength, Sequence):
            return np.log10(np.asarray(wavelength, dtype=np.float64))
        if wavelength and all(np.ndim(w) == 0 for w in wavelength):
            return np.log10(np.asarray(wavelength, dtype=np.float64))
        return [np.log10(np.asarray(w, dtype=np.float64)) for w in wavelength]


def _pow10(loglam: ArrayLike) -> NDArray[np.float64] | list[NDArray[np.float64]]:
    """Wavelengths in Angstrom of ``log10`` values, an array or a ragged list of arrays."""
    if isinstance(loglam, np.ndarray) or not isinstance(loglam, Sequence) or all(np.ndim(x) == 0 for x in loglam):
        return 10.0 ** np.asarray(loglam, dtype=np.float64)
    return [10.0 ** np.asarray(x, dtype=np.float64) for x in loglam]


def _loglam_shift(redshift: ArrayLike | None, rv_kms: ArrayLike | None) -> NDArray[np.float64] | None:
    """The additive loglam shift of the rest frame, ``log10(1 + z)``; from velocities as paper 001 computed it."""
    if rv_kms is not None:
        return doppler_loglam_shift(rv_kms)
    if redshift is not None:
        return np.log10(1.0 + _check_redshift(redshift))
    return None


def _rest_wavelength(wavelength: ArrayLike, factor: NDArray[np.float64], n: int, name: str):
    """Rest-frame wavelengths ``wavelength / factor`` per spectrum: array (n, L) or a ragged list."""
    factor = _per_spectrum(factor, n, name)
    if isinstance(wavelength, np.ndarray) or not isinstance(wavelength, Sequence) \
            or all(np.ndim(w) == 0 for w in wavelength):
        w = np.asarray(wavelength, dtype=np.float64)
        if w.ndim == 1:
            return w[None, :] / factor[:, None]
        if w.ndim == 2 and len(w) == n:
            return w / factor[:, None]
        raise ValueError(f"wavelength has shape {w.shape}; expected (L,) or ({n}, L)")
    if len(wavelength) != n:
        raise ValueError(f"wavelength has {len(wavelength)} spectra but flux has {n}")
    return [np.asarray(w, dtype=np.float64) / f for w, f in zip(wavelength, factor)]


def _per_spectrum(values: NDArray[np.float64], n: int, name: str) -> NDArray[np.float64]:
    """A scalar or (n,) array as shape (n,)."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 0:
        return np.broadcast_to(values, (n,))
    if values.shape != (n,):
        raise ValueError(f"{name} has shape {values.shape}; expected one value per spectrum, ({n},)")
    return values


def _as_batch(flux, loglam, ivar, mask, x_name: str = "loglam") -> tuple[list[NDArray], list[NDArray], list[NDArray] | None, list | None]:
    """Per-spectrum lists of 1-D arrays from (n, L) arrays or ragged lists; ``loglam`` may be one (L,) array."""
    if isinstance(flux, np.ndarray) or not isinstance(flux, Sequence):
        f = np.asarray(flux, dtype=np.float64)
        if f.ndim != 2:
            raise ValueError(f"flux must have shape (n_spectra, n_pixels), got {f.shape}; use flux[None] for one")
        rows = list(f)
    else:
        rows = [np.asarray(r, dtype=np.float64) for r in flux]
    n = len(rows)

    def per_row(a, name, dtype, shared=False):
        if a is None:
            return None
        if isinstance(a, np.ndarray) or not isinstance(a, Sequence):
            arr = np.asarray(a, dtype=dtype)
            if shared and arr.ndim == 1:
                return [arr] * n
            if arr.ndim != 2 or arr.shape[0] != n:
                raise ValueError(f"{name} has shape {arr.shape}; expected ({n}, n_pixels) like flux")
            return list(arr)
        if len(a) != n:
            raise ValueError(f"{name} has {len(a)} spectra but flux has {n}")
        return [np.asarray(r, dtype=dtype) for r in a]

    m = None if mask is None else per_row(mask, "mask", None)
    return rows, per_row(loglam, x_name, np.float64, shared=True), per_row(ivar, "ivar", np.float64), m
