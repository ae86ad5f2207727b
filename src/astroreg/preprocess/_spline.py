"""The numerics of resampling spectra: cubic splines through each spectrum's good pixels.

:func:`resample_spectrum` resamples one spectrum (a :class:`scipy.interpolate.CubicSpline`
through its good pixels, clamped ends, bad-pixel bookkeeping, ``ivar`` propagation);
:func:`_resample_common_grid` gives the same numbers for many spectra on one input grid
without a Python loop per spectrum. :class:`~astroreg.preprocess.SpectrumResampler` drives
them, segment by segment, in each segment's own coordinate (``x`` below: loglam or
wavelength).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray
from scipy.interpolate import CubicSpline
from scipy.linalg import solve_banded


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
    """Resample one spectrum onto ``grid`` (see :class:`~astroreg.preprocess.SpectrumResampler`).

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
