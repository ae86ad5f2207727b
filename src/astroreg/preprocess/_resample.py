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
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError

from astroreg.preprocess._spline import (
    _SOLVE_BLOCK,
    _as_batch,
    _bad_pixels,
    _resample_common_grid,
    resample_spectrum,
)
from astroreg.preprocess._wavelength import (
    PAPER_LOGLAM_GRID,
    WavelengthGrid,
    _check_redshift,
    doppler_loglam_shift,
    log_grid,
    loglam_grid,
    parse_grid,
    velocity_redshift,
)

_BAD_PIXELS = ("interpolate", "mask")

# The default bad mask bits of LogLamResampler: SDSS's spPixMask bits NOPLUG, BADTRACE,
# BADFLAT, BADARC, FULLREJECT, NODATA, COMBINEREJ and astroreg's padding bit 31, the value
# of astroreg.ingest.SDSS_BAD_PIXEL_BITS (a test keeps the two equal). Written out here
# because preprocess must not import the survey readers; SpectrumResampler's default is
# every bit, and the engine passes the dataset's own ``mask.attrs["bad_bits"]``.
_LEGACY_BAD_MASK_BITS = 0b1111 | 1 << 18 | 1 << 24 | 1 << 25 | 1 << 31


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
