"""Wavelength grids of spectra (segments uniform in wavelength or in log-wavelength) and Doppler shifts.

A :class:`WavelengthGrid` is what a recipe's ``grid`` (and a dataset resampled at ingest)
describes: SDSS's optical range uniform in ``log10(wavelength)``, Gaia XP's BP and RP
ranges uniform in wavelength, or any list of such segments. Wavelengths are in Angstrom.
:func:`parse_grid` reads the forms a recipe may give. Nothing here imports the rest of
astroreg: recipes, datasets and survey readers all use it. The relativistic Doppler
relations between radial velocity, redshift and the loglam shift of the rest frame are here
too (:func:`doppler_loglam_shift`, :func:`redshift_velocity`, :func:`velocity_redshift`).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

PAPER_LOGLAM_GRID: tuple[float, float, int] = (3.5754, 3.9670, 4000)
"""The paper's common grid: ``(loglam_min, loglam_max, n_pixels)``, 3762-9268 Angstrom."""

SPEED_OF_LIGHT_KMS = 299_792.458
"""Speed of light in vacuum, km/s."""

SCALES = ("log", "linear", "table")
"""Spacing of a segment's pixels: uniform in ``log10(wavelength)``, uniform in wavelength, or tabulated
(``wavelength: [...]``, any increasing values, e.g. Gaia XP samples equidistant in pseudo-wavelength)."""

UNITS = ("Angstrom", "nm")
"""Wavelength units a grid mapping may be given in (converted to Angstrom)."""

NAMED_GRIDS = ("gaia-xp",)
"""Grids a recipe may give by name: ``gaia-xp`` is paper 004's 186 kept Gaia BP/RP samples, 366-996 nm."""

_SEGMENT_KEYS = ("scale", "start", "stop", "n", "unit", "name", "wavelength")
_LOGLAM_RANGE = (2.0, 6.0)  # log10(Angstrom) of anything from far UV to far IR: 100 A - 100 micron

GRID_EXAMPLES = (
    "[3.5754, 3.9670, 4000] (log10 Angstrom: 4000 pixels uniform in log-wavelength, 3762-9268 Angstrom), "
    "{scale: linear, start: 336, stop: 1020, n: 343, unit: nm}, or a list of segments such as "
    "[{scale: linear, start: 330, stop: 680, n: 176, unit: nm, name: BP}, "
    "{scale: linear, start: 640, stop: 1050, n: 206, unit: nm, name: RP}], or gaia-xp (paper 004's BP/RP samples)"
)
"""Valid ``grid`` values, for error messages."""


@dataclass(frozen=True)
class GridSegment:
    """One stretch of a wavelength grid: ``n`` pixels from ``start`` to ``stop`` (both included).

    Parameters
    ----------
    start, stop : float
        First and last wavelength, Angstrom, ``0 < start < stop``.
    n : int
        Pixels, at least 2.
    scale : {"log", "linear", "table"}
        ``"log"``: uniform in ``log10(wavelength)`` (SDSS, BOSS, LAMOST); ``"linear"``:
        uniform in wavelength (DESI, Gaia XP calibrated sampling); ``"table"``: the pixel
        wavelengths are ``values`` (Gaia XP's BP/RP samples, equidistant in pseudo-wavelength).
    name : str, optional
        A label, e.g. ``"BP"``.
    values : tuple of float, optional
        ``scale="table"`` only: the strictly increasing pixel wavelengths in Angstrom;
        ``start``, ``stop`` and ``n`` must agree with them (use :meth:`tabulated`).

    Examples
    --------
    >>> s = GridSegment(3300.0, 6800.0, 176, "linear", "BP")
    >>> float(s.wavelength()[1])
    3320.0
    """

    start: float
    stop: float
    n: int
    scale: Literal["log", "linear", "table"] = "log"
    name: str | None = None
    values: tuple[float, ...] | None = None

    @classmethod
    def tabulated(cls, wavelength: ArrayLike, name: str | None = None) -> GridSegment:
        """A ``"table"`` segment with the given pixel wavelengths (Angstrom, strictly increasing).

        Examples
        --------
        >>> GridSegment.tabulated([3660.0, 3700.5, 3741.0], "BP").describe()
        'BP: 3 tabulated pixels, 3660.0-3741.0 Angstrom'
        """
        w = np.asarray(wavelength, dtype=np.float64).ravel()
        what = f"grid segment {name!r}" if name else "a tabulated grid segment"
        if w.size < 2 or not np.all(np.isfinite(w)) or not np.all(np.diff(w) > 0):
            raise ValueError(f"{what}: 'wavelength' must be at least 2 finite, strictly increasing values, "
                             f"got {w.size} value(s)")
        return cls(float(w[0]), float(w[-1]), int(w.size), "table", name, tuple(map(float, w)))

    def __post_init__(self) -> None:
        what = f"grid segment {self.name!r}" if self.name else "a grid segment"
        if (self.scale == "table") != (self.values is not None):
            raise ValueError(f"{what}: tabulated pixel wavelengths go with scale 'table' and only with it "
                             f"(scale {self.scale!r}, values {'given' if self.values is not None else 'missing'})")
        if self.values is not None and (len(self.values) != self.n or self.values[0] != self.start
                                        or self.values[-1] != self.stop):
            raise ValueError(f"{what}: start, stop and n must be the first, last and number of the tabulated "
                             "wavelengths; build it with GridSegment.tabulated(wavelength)")
        try:
            start, stop = float(self.start), float(self.stop)
        except (TypeError, ValueError):
            raise ValueError(f"{what}: start and stop must be wavelengths (numbers), got {self.start!r} and "
                             f"{self.stop!r}") from None
        if not (math.isfinite(start) and math.isfinite(stop) and 0.0 < start < stop):
            raise ValueError(f"{what}: needs 0 < start < stop (Angstrom), got start={self.start!r}, "
                             f"stop={self.stop!r}")
        if isinstance(self.n, bool) or not isinstance(self.n, (int, np.integer, float)) or self.n != int(self.n) \
                or self.n < 2:
            raise ValueError(f"{what}: n must be an integer >= 2 (pixels), got {self.n!r}")
        if self.scale not in SCALES:
            raise ValueError(f"{what}: scale is {self.scale!r}; allowed: {list(SCALES)}")
        if self.name is not None and not isinstance(self.name, str):
            raise ValueError(f"{what}: name must be a string or None, got {self.name!r}")
        object.__setattr__(self, "start", start)
        object.__setattr__(self, "stop", stop)
        object.__setattr__(self, "n", int(self.n))

    def coordinate(self) -> NDArray[np.float64]:
        """Pixel positions in the segment's own coordinate, array of shape (n,).

        ``log10(wavelength / Angstrom)`` for a log segment, wavelength in Angstrom for a
        linear one: the coordinate the spline of :class:`SpectrumResampler` runs in.
        """
        if self.scale == "log":
            return np.linspace(math.log10(self.start), math.log10(self.stop), self.n)
        if self.scale == "table":
            return np.array(self.values, dtype=np.float64)
        return np.linspace(self.start, self.stop, self.n)

    def wavelength(self) -> NDArray[np.float64]:
        """Pixel wavelengths in Angstrom, array of shape (n,)."""
        x = self.coordinate()
        return 10.0 ** x if self.scale == "log" else x

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready ``{"scale", "start", "stop", "n", "unit", "name"}`` (Angstrom); a table adds ``wavelength``."""
        if self.scale == "table":
            return {"scale": "table", "wavelength": list(self.values), "unit": "Angstrom", "name": self.name}
        return {"scale": self.scale, "start": self.start, "stop": self.stop, "n": self.n, "unit": "Angstrom",
                "name": self.name}

    def describe(self) -> str:
        """One line: ``"BP: 176 pixels linear in wavelength, 3300.0-6800.0 Angstrom"``."""
        how = "log-wavelength" if self.scale == "log" else "wavelength"
        label = f"{self.name}: " if self.name else ""
        if self.scale == "table":
            return f"{label}{self.n} tabulated pixels, {self.start:.1f}-{self.stop:.1f} Angstrom"
        return f"{label}{self.n} pixels uniform in {how}, {self.start:.1f}-{self.stop:.1f} Angstrom"


@dataclass(frozen=True)
class WavelengthGrid:
    """Where resampled spectra have their pixels: segments, concatenated in order.

    Segments may overlap (Gaia's BP and RP share 640-680 nm); each is resampled on its
    own and its pixels follow those of the segment before it.

    Parameters
    ----------
    segments : tuple of GridSegment
        At least one.

    Examples
    --------
    >>> g = parse_grid([3.5754, 3.9670, 4000])
    >>> g.n_pixels, round(float(g.wavelength()[0]))
    (4000, 3762)
    >>> WavelengthGrid.from_dict(g.to_dict()) == g
    True
    """

    segments: tuple[GridSegment, ...]

    def __post_init__(self) -> None:
        segments = self.segments
        if isinstance(segments, GridSegment):
            segments = (segments,)
        if isinstance(segments, (str, bytes)) or not isinstance(segments, Sequence) or not segments \
                or not all(isinstance(s, GridSegment) for s in segments):
            raise ValueError(f"a WavelengthGrid needs one or more GridSegment, got {self.segments!r}")
        object.__setattr__(self, "segments", tuple(segments))

    @property
    def n_pixels(self) -> int:
        """Pixels over all segments."""
        return sum(s.n for s in self.segments)

    def wavelength(self) -> NDArray[np.float64]:
        """Wavelength of every pixel in Angstrom, array of shape (n_pixels,), segments in order."""
        return np.concatenate([s.wavelength() for s in self.segments])

    def segment_slices(self) -> tuple[slice, ...]:
        """Where each segment's pixels are in a resampled spectrum, one slice per segment."""
        ends = np.cumsum([0] + [s.n for s in self.segments]).tolist()
        return tuple(slice(a, b) for a, b in itertools.pairwise(ends))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, ``{"segments": [segment.to_dict(), ...]}``; :meth:`from_dict` reads it."""
        return {"segments": [s.to_dict() for s in self.segments]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WavelengthGrid:
        """The grid of :meth:`to_dict` (or any form :func:`parse_grid` accepts)."""
        return parse_grid(data)

    def describe(self) -> str:
        """A short description for messages and reports."""
        return "; ".join(s.describe() for s in self.segments)

    def log_range(self) -> tuple[float, float, int] | None:
        """``(loglam_min, loglam_max, n)`` of a grid of one log segment, ``None`` for others."""
        if len(self.segments) != 1 or self.segments[0].scale != "log":
            return None
        s = self.segments[0]
        return math.log10(s.start), math.log10(s.stop), s.n


def parse_grid(value: Any) -> WavelengthGrid:
    """The :class:`WavelengthGrid` a recipe's ``grid`` (or a dataset attribute) describes.

    Parameters
    ----------
    value : WavelengthGrid, sequence or mapping
        One of

        - ``[loglam_min, loglam_max, n]``: ``n`` pixels uniform in ``log10(wavelength /
          Angstrom)`` (the form of astroreg before named inputs; the paper's grid is
          ``[3.5754, 3.9670, 4000]``);
        - a mapping ``{scale: log | linear, start, stop, n, unit: Angstrom | nm, name}``
          (``unit`` defaults to Angstrom, ``scale`` to log, ``name`` to none);
        - a list of such mappings, the segments in order (overlaps allowed);
        - ``{"segments": [...]}``, as :meth:`WavelengthGrid.to_dict` writes it;
        - a name in :data:`NAMED_GRIDS`: ``"gaia-xp"`` is paper 004's 80 BP + 106 RP Gaia XP
          samples (:mod:`astroreg.preprocess._xp_layout`).

    Returns
    -------
    WavelengthGrid

    Raises
    ------
    ValueError
        If the value is none of these; the message shows what was given and a valid example.

    Examples
    --------
    >>> parse_grid({"scale": "linear", "start": 330, "stop": 1050, "n": 361, "unit": "nm"}).describe()
    '361 pixels uniform in wavelength, 3300.0-10500.0 Angstrom'
    """
    if isinstance(value, WavelengthGrid):
        return value
    if isinstance(value, str) and value in NAMED_GRIDS:
        from astroreg.preprocess import _xp_layout  # imported here: it needs GaiaXPy's dispersion function

        return _xp_layout.xp_grid()
    if isinstance(value, GridSegment):
        return WavelengthGrid((value,))
    if isinstance(value, Mapping):
        if "segments" in value:
            extra = sorted(set(map(str, value)) - {"segments"})
            if extra:
                raise ValueError(f"grid {value!r} has keys {extra} beside 'segments'; valid grids: {GRID_EXAMPLES}")
            segs = value["segments"]
            if isinstance(segs, (str, bytes, Mapping)) or not isinstance(segs, Sequence) or not segs:
                raise ValueError(f"grid 'segments' must be a non-empty list of segments, got {segs!r}; "
                                 f"valid grids: {GRID_EXAMPLES}")
            return WavelengthGrid(tuple(_segment(s, i) for i, s in enumerate(segs)))
        return WavelengthGrid((_segment(value, None),))
    if isinstance(value, np.ndarray) and value.ndim == 1:
        value = value.tolist()
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise ValueError(f"grid is {value!r}; valid grids: {GRID_EXAMPLES}")
    items = list(value)
    if items and all(isinstance(s, Mapping) for s in items):
        return WavelengthGrid(tuple(_segment(s, i) for i, s in enumerate(items)))
    if len(items) == 3 and not any(isinstance(v, Mapping) for v in items):
        return WavelengthGrid((_loglam_segment(items),))
    raise ValueError(f"grid is {value!r}: neither [loglam_min, loglam_max, n] nor a list of segments; "
                     f"valid grids: {GRID_EXAMPLES}")


def log_grid(loglam_min: float, loglam_max: float, n: int) -> WavelengthGrid:
    """A one-segment grid uniform in ``log10(wavelength / Angstrom)`` from ``loglam_min`` to ``loglam_max``.

    Its pixels' coordinate is exactly ``numpy.linspace(loglam_min, loglam_max, n)`` (the
    grid of :class:`~astroreg.preprocess.LogLamResampler`): the ends are stored as the wavelengths whose
    ``log10`` gives back ``loglam_min`` and ``loglam_max`` bit for bit.
    """
    return WavelengthGrid((_loglam_segment([loglam_min, loglam_max, n]),))


def _loglam_segment(items: Sequence) -> GridSegment:
    lo, hi, n = items
    try:
        ok = float(lo) < float(hi) and not isinstance(n, bool) and float(n) == int(n) and int(n) >= 2
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok or not (math.isfinite(float(lo)) and math.isfinite(float(hi))):
        raise ValueError(f"grid [loglam_min, loglam_max, n] must have loglam_min < loglam_max and an integer "
                         f"n >= 2, got {list(items)!r}; e.g. [3.5754, 3.9670, 4000]")
    lo, hi = float(lo), float(hi)
    if hi > _LOGLAM_RANGE[1] or lo < _LOGLAM_RANGE[0]:
        raise ValueError(
            f"grid [{lo!r}, {hi!r}, {n!r}] looks like wavelengths, not log10(wavelength / Angstrom) "
            "(optical spectra have loglam 3.5-4.1): give np.log10 of the wavelengths, e.g. [3.5754, 3.9670, 4000], "
            f"or a mapping such as {{scale: log, start: {lo!r}, stop: {hi!r}, n: {n!r}, unit: Angstrom}}"
        )
    return GridSegment(_exact_pow10(lo), _exact_pow10(hi), int(n), "log")


def _exact_pow10(loglam: float) -> float:
    """A wavelength whose ``math.log10`` is ``loglam`` exactly (several doubles map onto each loglam)."""
    w = 10.0 ** loglam
    for _ in range(64):
        got = math.log10(w)
        if got == loglam:
            return w
        w = float(np.nextafter(w, np.inf if got < loglam else -np.inf))
    return 10.0 ** loglam  # unreachable for loglam in [2, 6]; the grid is then off by one ulp


def _segment(value: Any, index: int | None) -> GridSegment:
    where = "grid" if index is None else f"grid segment {index}"
    if not isinstance(value, Mapping):
        raise ValueError(f"{where} is {value!r}, not a mapping; valid grids: {GRID_EXAMPLES}")
    unknown = sorted(str(k) for k in value if k not in _SEGMENT_KEYS)
    if unknown:
        raise ValueError(f"{where} has unknown keys {unknown}; allowed: {list(_SEGMENT_KEYS)}; "
                         f"valid grids: {GRID_EXAMPLES}")
    if value.get("scale") == "table" or "wavelength" in value:
        return _table_segment(value, where)
    missing = [k for k in ("start", "stop", "n") if k not in value]
    if missing:
        raise ValueError(f"{where} {dict(value)!r} lacks {missing}; valid grids: {GRID_EXAMPLES}")
    unit = value.get("unit", "Angstrom")
    if unit not in UNITS:
        raise ValueError(f"{where}: unit is {unit!r}; allowed: {list(UNITS)}")
    start, stop = value["start"], value["stop"]
    if unit != "Angstrom":
        start, stop = _to_angstrom(start, unit, where), _to_angstrom(stop, unit, where)
    try:
        return GridSegment(start, stop, value["n"], value.get("scale", "log"), value.get("name"))
    except ValueError as err:
        raise ValueError(f"{where}: {err}; valid grids: {GRID_EXAMPLES}") from None


def _table_segment(value: Mapping, where: str) -> GridSegment:
    if value.get("scale", "table") != "table" or "wavelength" not in value:
        raise ValueError(f"{where}: tabulated pixels need scale: table and a 'wavelength' list, got "
                         f"{ {k: value[k] for k in value if k != 'wavelength'} !r}")
    extra = sorted(str(k) for k in ("start", "stop", "n") if k in value)
    if extra:
        raise ValueError(f"{where}: a table segment takes its ends and size from 'wavelength'; drop {extra}")
    unit = value.get("unit", "Angstrom")
    if unit not in UNITS:
        raise ValueError(f"{where}: unit is {unit!r}; allowed: {list(UNITS)}")
    w = value["wavelength"]
    try:
        w = np.asarray(w, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: 'wavelength' must be a list of numbers") from None
    if unit != "Angstrom":
        import astropy.units as u

        w = (w * u.Unit(unit)).to_value(u.AA)
    try:
        return GridSegment.tabulated(w, value.get("name"))
    except ValueError as err:
        raise ValueError(f"{where}: {err}") from None


def _to_angstrom(v: Any, unit: str, where: str) -> float:
    import astropy.units as u  # imported here: astropy takes ~0.3 s, and most grids are in Angstrom

    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
        raise ValueError(f"{where}: start and stop must be numbers, got {v!r}")
    return float((float(v) * u.Unit(unit)).to_value(u.AA))


# -- Doppler shifts ------------------------------------------------------------------------------
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
    :meth:`SpectrumResampler.transform` (or pass ``rv_kms=`` there, which does both).

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
