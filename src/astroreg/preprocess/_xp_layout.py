"""Where Gaia XP (BP/RP) spectra are sampled, and which samples paper 004 keeps.

Gaia's Apsis chain samples each internally calibrated BP and RP spectrum at 120 pixels
(SMSgen, Gaia DR3 documentation section 11.3.1), roughly equidistant in pseudo-wavelength
over the wavelengths where the band transmits. Paper 004 (after the Unresolved Galaxy
Classifier) drops the first 34 and last 6 BP samples and the first 4 and last 10 RP samples
and concatenates the rest: 80 BP + 106 RP = 186 fluxes from 366 to 996 nm.

The table of SMSgen's sampling wavelengths is not bundled with GaiaXPy, so astroreg uses
120 samples equidistant in pseudo-wavelength between 325 and 680 nm (BP) and 620 and
1050 nm (RP), mapped to wavelengths by GaiaXPy's dispersion function. With the paper's
truncation these keep 365.7-631.3 nm (BP) and 628.2-996.7 nm (RP): the paper's 366-996 nm.
Samples are ordered by increasing wavelength in both bands.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from functools import lru_cache
from types import ModuleType

import numpy as np
from numpy.typing import NDArray

from astroreg.preprocess._wavelength import GridSegment, WavelengthGrid

XP_SAMPLES = 120
"""Samples per band, as SMSgen."""

BANDS = ("BP", "RP")

SAMPLING_RANGE_NM: dict[str, tuple[float, float]] = {"BP": (325.0, 680.0), "RP": (620.0, 1050.0)}
"""First and last sampling wavelength of each band, nm (equidistant in pseudo-wavelength between)."""


def _band(band: str) -> str:
    b = str(band).upper()
    if b not in BANDS:
        raise ValueError(f"Gaia XP band {band!r}: use BP or RP")
    return b


@dataclass(frozen=True)
class XpTruncation:
    """How many samples to drop at the blue (first) and red (last) end of each band.

    Parameters
    ----------
    bp_first, bp_last, rp_first, rp_last : int
        Samples dropped; the paper's layout is ``XpTruncation(34, 6, 4, 10)``.

    Examples
    --------
    >>> XpTruncation.parse("34,6,4,10").n_kept
    186
    """

    bp_first: int = 34
    bp_last: int = 6
    rp_first: int = 4
    rp_last: int = 10

    def __post_init__(self) -> None:
        for band in BANDS:
            first, last = self.drop(band)
            if min(first, last) < 0 or first + last > XP_SAMPLES - 2:
                raise ValueError(f"Gaia XP truncation of {band}: dropping {first} first and {last} last samples "
                                 f"of {XP_SAMPLES} must leave at least 2 and drop none negative")

    @classmethod
    def parse(cls, text: str) -> XpTruncation:
        """Read ``"BP_FIRST,BP_LAST,RP_FIRST,RP_LAST"`` (e.g. ``"34,6,4,10"``, the paper's)."""
        parts = [p for p in re.split(r"[,\s]+", str(text).strip()) if p]
        if len(parts) != 4 or not all(p.isdigit() for p in parts):
            raise ValueError(f"Gaia XP truncation {text!r}: give four whole numbers BP_FIRST,BP_LAST,RP_FIRST,RP_LAST "
                             "(samples dropped at each end of BP and RP), e.g. 34,6,4,10 (paper 004)")
        return cls(*map(int, parts))

    def drop(self, band: str) -> tuple[int, int]:
        """``(first, last)`` samples dropped from ``band`` (``"BP"`` or ``"RP"``)."""
        return (self.bp_first, self.bp_last) if _band(band) == "BP" else (self.rp_first, self.rp_last)

    def kept(self, band: str) -> slice:
        """The kept samples of ``band`` among its :data:`XP_SAMPLES`."""
        first, last = self.drop(band)
        return slice(first, XP_SAMPLES - last)

    @property
    def n_kept(self) -> int:
        """Samples kept over both bands (186 for the paper's)."""
        return sum(XP_SAMPLES - sum(self.drop(b)) for b in BANDS)

    def __str__(self) -> str:
        return f"{self.bp_first},{self.bp_last},{self.rp_first},{self.rp_last}"


PAPER_TRUNCATION = XpTruncation()
"""Paper 004's layout: 80 BP + 106 RP samples, 366-996 nm."""


def import_gaiaxpy(module: str = "gaiaxpy") -> ModuleType:
    """Import a GaiaXPy module without letting it change matplotlib's settings.

    GaiaXPy's plotter sets ``text.usetex = True`` when it is imported, which makes every
    later figure fail on a machine without LaTeX; the import runs inside
    :func:`matplotlib.rc_context`, which restores the settings. GaiaXPy takes ~2 s to import.
    """
    import matplotlib

    with matplotlib.rc_context():
        return importlib.import_module(module)


@lru_cache(maxsize=None)
def _sampling(band: str) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    dispersion = import_gaiaxpy("gaiaxpy.core.dispersion_function")
    pwl_to_wl, wl_to_pwl = dispersion.pwl_to_wl, dispersion.wl_to_pwl
    lo, hi = SAMPLING_RANGE_NM[band]
    pwl = np.linspace(float(wl_to_pwl(band, lo)), float(wl_to_pwl(band, hi)), XP_SAMPLES)
    wl = np.asarray(pwl_to_wl(band, pwl), dtype=np.float64)
    pwl.setflags(write=False)
    wl.setflags(write=False)
    return pwl, wl


def pseudo_wavelengths(band: str) -> NDArray[np.float64]:
    """The :data:`XP_SAMPLES` pseudo-wavelengths (pixels) of ``band``, in order of increasing wavelength.

    BP's pseudo-wavelength falls as wavelength rises, so BP's come out decreasing.
    """
    return _sampling(_band(band))[0]


def sample_wavelengths(band: str) -> NDArray[np.float64]:
    """Wavelengths in nm of the :data:`XP_SAMPLES` samples of ``band``, increasing."""
    return _sampling(_band(band))[1]


def kept_wavelengths(truncation: XpTruncation = PAPER_TRUNCATION) -> dict[str, NDArray[np.float64]]:
    """Wavelengths in nm of the kept samples, ``{"BP": ..., "RP": ...}``."""
    return {b: sample_wavelengths(b)[truncation.kept(b)] for b in BANDS}


def xp_grid(truncation: XpTruncation = PAPER_TRUNCATION) -> WavelengthGrid:
    """The grid of concatenated kept BP and RP samples: two tabulated segments named BP and RP.

    Examples
    --------
    >>> g = xp_grid()
    >>> g.n_pixels, [s.n for s in g.segments]
    (186, [80, 106])
    """
    kept = kept_wavelengths(truncation)
    return WavelengthGrid(tuple(GridSegment.tabulated(kept[b] * 10.0, b) for b in BANDS))
