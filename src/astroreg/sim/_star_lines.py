"""Line list, atomic data and spectrum synthesis of the mock SDSS stellar spectra.

The survey around it (labels, noise, files) is :mod:`astroreg.sim._stars`; the physics
and its limits are described in ``docs/sdss-stars-mock.md``. The line list has two parts:

- 119 strong real lines: the Balmer series (H-alpha to H10) and Paschen lines
  P10-P16, Ca II H & K and the near-infrared triplet, Ca I 4227, Mg b and Mg II 4481,
  Na D and Na I 8183/8195, K I, Sr II, Ba II, O I 7774, Si II 6347/6371 and a few dozen
  strong Fe I, Fe II, Ti I/II, Cr I, Mn I, Al I and Ni I lines. Air wavelengths, lower-level
  excitation potentials and log gf are rounded values of the kind tabulated by NIST and
  VALD, entered by hand and not checked line by line against those databases: expect
  the wavelengths of the strong lines to be right to about 0.1 Angstrom and log gf and
  chi to be approximate (0.1-0.3 dex, 0.1 eV), which is enough for an emulator.
- A generated list of weaker lines (:data:`N_GENERATED` lines, Fe I 55 %, Fe II 10 %,
  Ti I 7 %, Ti II 6 %, Ni I 6 %, Cr I 5 %, Ca I 4 %, Si I 4 %, Mn I 3 %) drawn once from a
  fixed seed: wavelengths over 3800-9200 Angstrom with a density proportional to
  lambda^-3 (more lines in the blue, as in real spectra), excitation potentials uniform in
  0-5 eV (Fe II and Ti II: 2-4 eV, their real range), log gf normal with mean -1.9 and
  sigma 0.7, lowered by 0.6 dex per eV below 2 eV (the strong low-excitation lines are
  the real ones above), clipped to [-4.5, 0]. These are NOT real transitions; they give metal-line
  blanketing that scales as real lines do with Teff, [Fe/H] and log g.

All wavelengths are converted to vacuum (SDSS spectra are in vacuum wavelengths) with the
air-to-vacuum formula of N. Piskunov (VALD), which follows Ciddor (1996).
"""

from __future__ import annotations

import math
import types
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

N_GENERATED = 400
"""Number of generated (synthetic) metal lines."""
_GENERATED_SEED = 20150101  # fixed: the line list is part of the emulator, not of a run


@dataclass(frozen=True)
class Element:
    """Atomic data of one element for the Saha-Boltzmann populations.

    ``chi_ion`` are the first and second ionisation energies (eV), ``u`` the partition
    functions of the neutral, singly and doubly ionised stage (taken constant: their
    temperature dependence below 10,000 K is within a factor 2 for these elements, small
    against the exponentials), ``a_sun`` the solar abundance log eps (Asplund et al.
    2009) and ``mass`` the atomic mass (u), for the thermal Doppler width.
    """

    chi_ion: tuple[float, float]
    u: tuple[float, float, float]
    a_sun: float
    mass: float
    alpha: bool = False


ELEMENTS: Mapping[str, Element] = types.MappingProxyType({
    "H": Element((13.598, 1e9), (2.0, 1.0, 1.0), 12.00, 1.008),
    "O": Element((13.618, 35.12), (9.0, 4.0, 9.0), 8.69, 16.00, alpha=True),
    "Na": Element((5.139, 47.29), (2.0, 1.0, 6.0), 6.24, 22.99),
    "Mg": Element((7.646, 15.04), (1.0, 2.0, 1.0), 7.60, 24.31, alpha=True),
    "Al": Element((5.986, 18.83), (6.0, 1.0, 2.0), 6.45, 26.98),
    "Si": Element((8.152, 16.35), (10.0, 6.0, 1.0), 7.51, 28.09, alpha=True),
    "K": Element((4.341, 31.63), (2.0, 1.0, 6.0), 5.03, 39.10),
    "Ca": Element((6.113, 11.87), (1.0, 2.0, 1.0), 6.34, 40.08, alpha=True),
    "Ti": Element((6.828, 13.58), (30.0, 50.0, 20.0), 4.95, 47.87, alpha=True),
    "Cr": Element((6.767, 16.49), (9.0, 7.0, 20.0), 5.64, 52.00),
    "Mn": Element((7.434, 15.64), (6.0, 8.0, 6.0), 5.43, 54.94),
    "Fe": Element((7.902, 16.19), (25.0, 40.0, 25.0), 7.50, 55.85),
    "Ni": Element((7.640, 18.17), (30.0, 10.0, 20.0), 6.22, 58.69),
    "Sr": Element((5.695, 11.03), (1.0, 2.0, 1.0), 2.87, 87.62),
    "Ba": Element((5.212, 10.00), (2.0, 3.0, 1.0), 2.18, 137.33),
})
"""Elements of the line list, by symbol."""

# (element, ion stage 0=I 1=II, air wavelength A, chi_low eV, log gf, damping class)
# damping class: 0 plain (van der Waals of a weak line), 1 strong gravity-sensitive line
# (Mg b, Na D, the Ca triplet, Ca I 4227, Ca II H&K, ...: wide damping wings), 2 hydrogen (Stark).
# Hydrogen rows carry the upper level n in the damping column instead: 10 + n_upper.
_STRONG_LINES: tuple[tuple[str, int, float, float, float, int], ...] = (
    # Balmer series (lower level n = 2, 10.20 eV); class 10 + n_upper
    ("H", 0, 6562.80, 10.199, 0.710, 13), ("H", 0, 4861.33, 10.199, -0.020, 14),
    ("H", 0, 4340.46, 10.199, -0.447, 15), ("H", 0, 4101.73, 10.199, -0.753, 16),
    ("H", 0, 3970.07, 10.199, -0.993, 17), ("H", 0, 3889.05, 10.199, -1.192, 18),
    ("H", 0, 3835.38, 10.199, -1.362, 19), ("H", 0, 3797.90, 10.199, -1.511, 20),
    # Paschen series P10-P16 (lower level n = 3, 12.09 eV), near the Ca triplet in A and F stars
    ("H", 0, 9014.91, 12.088, -1.305, 20), ("H", 0, 8862.79, 12.088, -1.435, 21),
    ("H", 0, 8750.47, 12.088, -1.555, 22), ("H", 0, 8665.02, 12.088, -1.666, 23),
    ("H", 0, 8598.39, 12.088, -1.769, 24), ("H", 0, 8545.38, 12.088, -1.865, 25),
    ("H", 0, 8502.48, 12.088, -1.956, 26),
    # Ca II H & K and the near-infrared triplet
    ("Ca", 1, 3933.66, 0.000, 0.134, 1), ("Ca", 1, 3968.47, 0.000, -0.166, 1),
    ("Ca", 1, 8498.02, 1.692, -1.312, 1), ("Ca", 1, 8542.09, 1.700, -0.362, 1),
    ("Ca", 1, 8662.14, 1.692, -0.623, 1),
    # Ca I
    ("Ca", 0, 4226.73, 0.000, 0.244, 1), ("Ca", 0, 4454.78, 1.899, 0.260, 0),
    ("Ca", 0, 6122.22, 1.886, -0.316, 1), ("Ca", 0, 6162.17, 1.899, -0.090, 1),
    ("Ca", 0, 6439.08, 2.526, 0.390, 0), ("Ca", 0, 6717.69, 2.709, -0.524, 0),
    # Mg b, Mg I, Mg II
    ("Mg", 0, 5167.32, 2.709, -0.870, 1), ("Mg", 0, 5172.68, 2.712, -0.393, 1),
    ("Mg", 0, 5183.60, 2.717, -0.167, 1), ("Mg", 0, 3832.30, 2.709, 0.125, 1),
    ("Mg", 0, 3838.29, 2.717, 0.392, 1), ("Mg", 0, 4702.99, 4.346, -0.666, 0),
    ("Mg", 0, 8806.76, 4.346, -0.137, 1), ("Mg", 0, 5528.40, 4.346, -0.620, 0),
    ("Mg", 1, 4481.13, 8.864, 0.740, 0),
    # Na D and the Na I 8190 doublet, K I
    ("Na", 0, 5889.95, 0.000, 0.108, 1), ("Na", 0, 5895.92, 0.000, -0.194, 1),
    ("Na", 0, 8183.26, 2.102, 0.237, 1), ("Na", 0, 8194.82, 2.104, 0.492, 1),
    ("K", 0, 7664.90, 0.000, 0.135, 1), ("K", 0, 7698.96, 0.000, -0.168, 1),
    # Sr II, Ba II
    ("Sr", 1, 4077.71, 0.000, 0.151, 0), ("Sr", 1, 4215.52, 0.000, -0.145, 0),
    ("Ba", 1, 4554.03, 0.000, 0.170, 0), ("Ba", 1, 4934.08, 0.000, -0.150, 0),
    ("Ba", 1, 6141.71, 1.190, -0.076, 0), ("Ba", 1, 6496.90, 0.604, -0.377, 0),
    # O I triplet, Si II (strong in A and F stars), Si I
    ("O", 0, 7771.94, 9.146, 0.369, 0), ("O", 0, 7774.17, 9.146, 0.223, 0),
    ("O", 0, 7775.39, 9.146, 0.002, 0), ("Si", 1, 6347.11, 8.121, 0.149, 0),
    ("Si", 1, 6371.37, 8.121, -0.082, 0), ("Si", 1, 3856.02, 6.859, -0.406, 0),
    ("Si", 0, 3905.52, 1.909, -1.092, 0),
    # Al I, Mn I, Cr I, Ni I
    ("Al", 0, 3944.01, 0.000, -0.638, 1), ("Al", 0, 3961.52, 0.014, -0.336, 1),
    ("Mn", 0, 4030.75, 0.000, -0.480, 0), ("Mn", 0, 4033.06, 0.000, -0.618, 0),
    ("Mn", 0, 4034.48, 0.000, -0.811, 0), ("Cr", 0, 4254.33, 0.000, -0.114, 0),
    ("Cr", 0, 4274.80, 0.000, -0.231, 0), ("Cr", 0, 4289.72, 0.000, -0.361, 0),
    ("Cr", 0, 5206.04, 0.941, 0.019, 0), ("Cr", 0, 5208.42, 0.941, 0.158, 0),
    ("Ni", 0, 3858.30, 0.423, -0.951, 0), ("Ni", 0, 5476.90, 1.826, -0.890, 0),
    # Ti I, Ti II
    ("Ti", 0, 4981.73, 0.848, 0.560, 0), ("Ti", 0, 4991.07, 0.836, 0.436, 0),
    ("Ti", 0, 5210.38, 0.048, -0.820, 0), ("Ti", 1, 4443.80, 1.080, -0.710, 0),
    ("Ti", 1, 4468.49, 1.131, -0.600, 0), ("Ti", 1, 4501.27, 1.116, -0.770, 0),
    ("Ti", 1, 4395.03, 1.084, -0.540, 0), ("Ti", 1, 4571.97, 1.572, -0.310, 0),
    # Fe I
    ("Fe", 0, 3859.91, 0.000, -0.710, 1), ("Fe", 0, 3886.28, 0.052, -1.076, 0),
    ("Fe", 0, 4045.81, 1.485, 0.280, 1), ("Fe", 0, 4063.59, 1.558, 0.062, 0),
    ("Fe", 0, 4071.74, 1.608, -0.022, 0), ("Fe", 0, 4143.87, 1.557, -0.511, 0),
    ("Fe", 0, 4202.03, 1.485, -0.708, 0), ("Fe", 0, 4260.47, 2.399, 0.077, 0),
    ("Fe", 0, 4271.76, 1.485, -0.164, 0), ("Fe", 0, 4325.76, 1.608, 0.006, 0),
    ("Fe", 0, 4383.54, 1.485, 0.200, 1), ("Fe", 0, 4404.75, 1.557, -0.142, 0),
    ("Fe", 0, 4415.12, 1.608, -0.615, 0), ("Fe", 0, 4528.61, 2.176, -0.822, 0),
    ("Fe", 0, 4957.60, 2.808, 0.233, 0), ("Fe", 0, 5232.94, 2.940, -0.058, 0),
    ("Fe", 0, 5269.54, 0.859, -1.321, 1), ("Fe", 0, 5328.04, 0.915, -1.466, 0),
    ("Fe", 0, 5371.49, 0.958, -1.645, 0), ("Fe", 0, 5397.13, 0.915, -1.993, 0),
    ("Fe", 0, 5405.77, 0.990, -1.844, 0), ("Fe", 0, 5429.70, 0.958, -1.879, 0),
    ("Fe", 0, 5446.92, 0.990, -1.914, 0), ("Fe", 0, 6136.61, 2.453, -1.400, 0),
    ("Fe", 0, 6191.56, 2.433, -1.417, 0), ("Fe", 0, 6230.72, 2.559, -1.281, 0),
    ("Fe", 0, 6252.56, 2.404, -1.687, 0), ("Fe", 0, 6393.60, 2.433, -1.432, 0),
    ("Fe", 0, 6400.00, 3.603, -0.290, 0), ("Fe", 0, 6494.98, 2.404, -1.273, 0),
    ("Fe", 0, 6678.00, 2.692, -1.418, 0), ("Fe", 0, 8327.05, 2.198, -1.525, 0),
    ("Fe", 0, 8387.77, 2.176, -1.493, 0), ("Fe", 0, 8468.41, 2.223, -2.072, 0),
    ("Fe", 0, 8688.62, 2.176, -1.212, 0), ("Fe", 0, 8824.22, 2.198, -1.540, 0),
    # Fe II
    ("Fe", 1, 4233.17, 2.583, -1.809, 0), ("Fe", 1, 4549.47, 2.828, -1.750, 0),
    ("Fe", 1, 4583.84, 2.807, -1.860, 0), ("Fe", 1, 4923.93, 2.891, -1.320, 0),
    ("Fe", 1, 5018.44, 2.891, -1.220, 0), ("Fe", 1, 5169.03, 2.891, -1.303, 0),
    ("Fe", 1, 5316.62, 3.153, -1.850, 0), ("Fe", 1, 6456.38, 3.903, -2.075, 0),
    ("Fe", 1, 6516.08, 2.891, -3.380, 0),
)

# (element, stage, fraction, chi range) of the generated lines
_GENERATED_SPECIES = (
    ("Fe", 0, 0.55, (0.0, 5.0)), ("Fe", 1, 0.10, (2.0, 4.0)), ("Ti", 0, 0.07, (0.0, 2.5)),
    ("Ti", 1, 0.06, (1.0, 2.5)), ("Ni", 0, 0.06, (0.0, 4.5)), ("Cr", 0, 0.05, (0.0, 4.0)),
    ("Ca", 0, 0.04, (1.5, 4.5)), ("Si", 0, 0.04, (4.5, 6.0)), ("Mn", 0, 0.03, (0.0, 4.0)),
)


def air_to_vacuum(wave_air: NDArray[np.float64] | float) -> NDArray[np.float64]:
    """Vacuum wavelength (Angstrom) of an air wavelength (Angstrom), Piskunov's VALD formula."""
    w = np.asarray(wave_air, dtype=np.float64)
    s2 = (1e4 / w) ** 2
    n = 1 + 8.336624212083e-5 + 2.408926869968e-2 / (130.1065924522 - s2) + 1.599740894897e-4 / (38.92568793293 - s2)
    return w * n


@dataclass(frozen=True)
class LineList:
    """Arrays of the line list, one entry per line (length n_lines).

    Attributes
    ----------
    wave : ndarray of float64
        Vacuum rest wavelength, Angstrom.
    element : ndarray of str
        Element symbol (a key of :data:`ELEMENTS`).
    stage : ndarray of int
        Ionisation stage of the absorber: 0 neutral, 1 singly ionised.
    chi : ndarray of float64
        Excitation potential of the lower level, eV.
    loggf : ndarray of float64
        log10 of oscillator strength times statistical weight.
    kind : ndarray of int
        0 weak metal line, 1 strong metal line with damping wings, 2 hydrogen.
    n_upper : ndarray of int
        Upper level of hydrogen lines (0 for metals), for their Stark width.
    real : ndarray of bool
        A real transition (True) or a generated one (False).
    """

    wave: NDArray[np.float64]
    element: NDArray[np.str_]
    stage: NDArray[np.int64]
    chi: NDArray[np.float64]
    loggf: NDArray[np.float64]
    kind: NDArray[np.int64]
    n_upper: NDArray[np.int64]
    real: NDArray[np.bool_]

    def __len__(self) -> int:
        return int(self.wave.size)


def _generated_lines() -> list[tuple[str, int, float, float, float, int]]:
    rng = np.random.default_rng(_GENERATED_SEED)
    lo, hi = 3800.0, 9200.0
    # density ~ lambda^-3: inverse CDF of u -> lambda^-2 uniform between the ends
    u = rng.uniform(size=N_GENERATED)
    wave = (lo ** -2 + u * (hi ** -2 - lo ** -2)) ** -0.5
    fractions = np.array([f for *_, f, _ in _GENERATED_SPECIES])
    which = rng.choice(len(_GENERATED_SPECIES), size=N_GENERATED, p=fractions / fractions.sum())
    loggf = rng.normal(-1.9, 0.7, size=N_GENERATED)
    rows = []
    for k in range(N_GENERATED):
        el, stage, _, (c0, c1) = _GENERATED_SPECIES[which[k]]
        chi = rng.uniform(c0, c1)
        # low-excitation lines with large gf are few (they are the strong real lines listed above)
        gf = float(np.clip(loggf[k] - max(0.0, 2.0 - chi) * 0.6, -4.5, 0.0))
        rows.append((el, stage, float(wave[k]), float(chi), gf, 0))
    return rows


def build_line_list() -> LineList:
    """The emulator's line list: the strong real lines plus the generated metal lines.

    Returns
    -------
    LineList
        About 510 lines sorted by wavelength, vacuum wavelengths.

    Examples
    --------
    >>> lines = build_line_list()
    >>> bool((lines.kind == 2).sum() == 15)
    True
    """
    rows = [(*r, True) for r in _STRONG_LINES] + [(*r, False) for r in _generated_lines()]
    rows.sort(key=lambda r: r[2])
    el, stage, wave, chi, loggf, damp, real = zip(*rows)
    damp = np.asarray(damp)
    is_h = damp >= 10
    return LineList(
        wave=air_to_vacuum(np.asarray(wave)),
        element=np.asarray(el),
        stage=np.asarray(stage, dtype=np.int64),
        chi=np.asarray(chi, dtype=np.float64),
        loggf=np.asarray(loggf, dtype=np.float64),
        kind=np.where(is_h, 2, damp).astype(np.int64),
        n_upper=np.where(is_h, damp - 10, 0).astype(np.int64),
        real=np.asarray(real),
    )


# -- synthesis ------------------------------------------------------------------------------
C_KMS = 299792.458
"""Speed of light, km/s."""
LOGLAM_STEP = 1e-4
"""SDSS pixel size in log10(wavelength / Angstrom)."""
LOGLAM_RANGE = (3.5798, 3.9638)
"""First and last loglam of the mock spectra: 3800 to 9200 Angstrom (3841 pixels)."""
RESOLUTION = 2000.0
"""Instrumental resolving power lambda / FWHM."""
_R0, _R0_H = 0.15, 0.3  # residual intensity of saturated metal and hydrogen line cores at R ~ 2000
_XI_KMS = 2.0  # microturbulence
_K_OVER_U = 8.254e-3  # Boltzmann constant / atomic mass unit, (km/s)^2 / K
_HC_OVER_K = 1.4388e8  # Angstrom K
# log10 Pe (dyn/cm^2) of dwarfs (log g 4.44, solar metallicity) near tau = 1, rounded from
# Gray (2005) and MARCS/Kurucz models.
_PE_TEFF = np.array([3500.0, 4000, 5000, 5800, 7000, 8000, 9000, 10000, 11000])
_PE_LOG = np.array([-0.8, -0.3, 0.7, 1.3, 2.2, 2.75, 3.05, 3.25, 3.35])
# Calibration constants, set so that the Sun has EW(Fe I 6151.6) about 50 mA, EW(Mg b 5183)
# about 1.5 A, EW(Ca II K) about 20 A and EW(H-beta) about 4 A, and H-beta's equivalent width
# peaks near 9,000-10,000 K at about 16 A (A0 dwarfs: about 14 A).
_C_METAL = 10 ** 12.85
_C_H = 10 ** 12.2
_K_HBF = 10 ** 11.0  # H bound-free (n = 3) opacity against H-
_K_ES = 10 ** 5.0  # electron scattering against H-
_GAMMA_VDW = 0.002  # effective damping half width, Angstrom at 5000 A in the Sun
_GAMMA_STARK = 0.5  # Angstrom for H-beta in the Sun
_HALF_WINDOW = {0: 10, 1: 60, 2: 220}  # pixels each side of a line, by kind


def loglam_grid() -> NDArray[np.float64]:
    """The mock spectra's loglam pixels, shape (3841,): 3.5798 to 3.9638 in steps of 1e-4."""
    lo, hi = (int(round(v / LOGLAM_STEP)) for v in LOGLAM_RANGE)
    return np.arange(lo, hi + 1) * LOGLAM_STEP


@dataclass
class _Lines:
    """The line list with per-line atomic data expanded to arrays (built once per process)."""

    lines: LineList
    chi_ion: NDArray[np.float64] = field(init=False)  # (n, 2)
    u: NDArray[np.float64] = field(init=False)  # (n, 3)
    log_eps: NDArray[np.float64] = field(init=False)
    mass: NDArray[np.float64] = field(init=False)
    alpha: NDArray[np.bool_] = field(init=False)
    groups: list = field(init=False)

    def __post_init__(self) -> None:
        el = [ELEMENTS[e] for e in self.lines.element]
        self.chi_ion = np.array([e.chi_ion for e in el])
        self.u = np.array([e.u for e in el])
        self.log_eps = np.array([e.a_sun - 12.0 for e in el])
        self.mass = np.array([e.mass for e in el])
        self.alpha = np.array([e.alpha for e in el])
        self.groups = [(np.flatnonzero(self.lines.kind == k), np.arange(-w, w + 1)) for k, w in _HALF_WINDOW.items()]


_LINES: _Lines | None = None


def _line_data() -> _Lines:
    global _LINES
    if _LINES is None:
        _LINES = _Lines(build_line_list())
    return _LINES


def _gaussian_cog() -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """log10 tau0 and log10 F(tau0), F = integral of 1 - exp(-tau0 exp(-x^2)) dx (the Doppler curve of growth)."""
    log_tau = np.linspace(-4.0, 14.0, 181)
    x = np.linspace(0.0, 8.0, 4001)
    tau = 10.0 ** log_tau[:, None] * np.exp(-x[None, :] ** 2)
    f = 2.0 * np.trapezoid(-np.expm1(-tau), x, axis=1)
    return log_tau, np.log10(f)


_COG = _gaussian_cog()


def electron_pressure(teff: float, logg: float, feh: float) -> float:
    """log10 of the electron pressure (dyn/cm^2) of the line-forming layers, from a fit to model atmospheres."""
    w_hot = min(max((teff - 6000.0) / 2000.0, 0.0), 1.0)
    base = float(np.interp(teff, _PE_TEFF, _PE_LOG))
    return base + (0.33 + 0.27 * w_hot) * (logg - 4.44) + 0.5 * (1.0 - w_hot) * feh


def _stage_fractions(teff: float, log_pe: float, chi_ion: NDArray, u: NDArray) -> NDArray[np.float64]:
    """Saha fractions of the neutral, singly and doubly ionised stage, shape (n, 3)."""
    theta = 5040.0 / teff
    base = math.log10(0.6665) + 2.5 * math.log10(teff) - log_pe
    log_r1 = base + np.log10(u[:, 1] / u[:, 0]) - theta * chi_ion[:, 0]
    log_r2 = base + np.log10(u[:, 2] / u[:, 1]) - theta * chi_ion[:, 1]
    r1 = 10.0 ** np.minimum(log_r1, 30.0)
    r2 = 10.0 ** np.minimum(log_r2, 30.0)
    f0 = 1.0 / (1.0 + r1 + r1 * r2)
    return np.stack([f0, r1 * f0, r1 * r2 * f0], axis=1)


def line_strengths(teff: float, logg: float, feh: float) -> dict[str, NDArray[np.float64]]:
    """Integrated line opacity Sigma (Angstrom), Doppler and damping widths of every line.

    Parameters
    ----------
    teff : float
        Effective temperature, K.
    logg : float
        Surface gravity log10(g / cm s^-2).
    feh : float
        [Fe/H], dex.

    Returns
    -------
    dict
        ``sigma`` (integrated optical depth, Angstrom; in the weak-line limit the
        equivalent width), ``sigma_d`` (Doppler width, Angstrom) and ``gamma`` (damping
        half width, Angstrom), each of shape (n_lines,), in the line list's order.
    """
    d = _line_data()
    ln = d.lines
    theta = 5040.0 / teff
    log_pe = electron_pressure(teff, logg, feh)
    fr = _stage_fractions(teff, log_pe, d.chi_ion, d.u)
    stage = ln.stage
    f_stage = fr[np.arange(len(ln)), stage]
    u_stage = d.u[np.arange(len(ln)), stage]
    # hydrogen: neutral fraction (H is the first entry type with chi_ion 13.6)
    h = _stage_fractions(teff, log_pe, np.array([[13.598, 1e9]]), np.array([[2.0, 1.0, 1.0]]))[0]
    pe = 10.0 ** log_pe
    # H- (bound-free + free-free) rises to the red, about as lambda^1.5 over 4000-9000 A
    kappa = (pe * theta ** 2.5 * 10.0 ** (0.754 * theta) * (ln.wave / 5000.0) ** 1.5
             + _K_HBF * h[0] * 10.0 ** (-12.088 * theta)
             + _K_ES * h[1])
    alpha_fe = np.clip(-0.4 * feh, 0.0, 0.4)
    is_h = ln.kind == 2
    mh = np.where(is_h, 0.0, feh + np.where(d.alpha, alpha_fe, 0.0))
    log_sigma = (np.where(is_h, math.log10(_C_H), math.log10(_C_METAL)) + ln.loggf
                 + 2.0 * np.log10(ln.wave / 5000.0) + d.log_eps + mh + np.log10(np.maximum(f_stage, 1e-300))
                 - theta * ln.chi - np.log10(u_stage) - np.log10(kappa))
    sigma = 10.0 ** np.clip(log_sigma, -30.0, 30.0)
    sigma_d = ln.wave / C_KMS * np.sqrt(_K_OVER_U * teff / d.mass + 0.5 * _XI_KMS ** 2)
    g_rel = 10.0 ** (logg - 4.44)
    gamma_vdw = (ln.wave / 5000.0) ** 2 * (0.003 + _GAMMA_VDW * g_rel ** 0.4 * (teff / 5777.0) ** 0.3)
    n_l = np.where(ln.chi > 11.0, 3, 2)
    ne_rel = (pe / teff) / (10.0 ** 1.3 / 5777.0)
    gamma_h = (_GAMMA_STARK * (ln.wave / 4862.7) ** 2 * (ln.n_upper ** 2 - n_l ** 2) / 12.0 * ne_rel ** (2.0 / 3.0))
    gamma = np.where(is_h, gamma_h, gamma_vdw)
    return {"sigma": sigma, "sigma_d": sigma_d, "gamma": gamma}


# -- molecular bands ---------------------------------------------------------------------
@dataclass(frozen=True)
class MolecularBand:
    """One molecular band system, emulated as an opacity that decays away from its head.

    Attributes
    ----------
    name : str
        Molecule and band, e.g. ``"MgH A-X"``.
    head : float
        Band head, air wavelength in Angstrom.
    extent : float
        e-folding length of the opacity away from the head, Angstrom.
    to_red : bool
        True where the band degrades to the red (TiO), False to the blue (CH, CN, MgH).
    log_tau_ref : float
        log10 of the peak optical depth at theta = ``theta_ref`` (the Sun's 0.872, or 1.26
        for TiO), log g = 4.44 and solar abundances, before saturation.
    theta_ref : float
        5040 / Teff of the reference star.
    d_theta : float
        dex of optical depth per unit theta: the band's appearance with falling Teff
        (dissociation equilibrium and the neutral fraction of its atoms).
    d_logg : float
        dex per dex of log g: positive for bands that grow with pressure (MgH in K dwarfs),
        negative for those stronger in giants (CN).
    d_metal : float
        dex per dex of [M/H]: about 1 for hydrides, up to 2 for molecules of two metals.
    alpha : bool
        The band's metal follows [alpha/Fe] (Mg, Ti, O).
    """

    name: str
    head: float
    extent: float
    to_red: bool
    log_tau_ref: float
    theta_ref: float
    d_theta: float
    d_logg: float
    d_metal: float
    alpha: bool


#: The bands that matter at R ~ 2000 between 3800 and 9200 Angstrom for 4000-9500 K stars:
#: the CH G band, CN violet (giants), MgH (K dwarfs) and TiO (the coolest stars only).
#: Heads are air wavelengths; slopes are set so that each band appears at the temperatures
#: where SDSS spectra show it (G band down to F stars, MgH and CN below ~5,500 K, TiO
#: below ~4,500 K), not fitted to model atmospheres.
MOLECULAR_BANDS: tuple[MolecularBand, ...] = (
    MolecularBand("CH G band", 4314.0, 12.0, False, math.log10(0.35), 0.872, 6.0, -0.15, 1.0, False),
    MolecularBand("CN 3883", 3883.4, 25.0, False, math.log10(0.03), 0.872, 5.0, -0.35, 1.6, False),
    MolecularBand("CN 4216", 4216.0, 20.0, False, math.log10(0.015), 0.872, 5.0, -0.35, 1.6, False),
    MolecularBand("MgH A-X", 5211.0, 45.0, False, math.log10(0.05), 0.872, 6.0, 0.6, 1.0, True),
    MolecularBand("TiO 4955", 4954.6, 40.0, True, math.log10(0.25), 1.26, 12.0, 0.2, 1.6, True),
    MolecularBand("TiO 5167", 5166.7, 40.0, True, math.log10(0.3), 1.26, 12.0, 0.2, 1.6, True),
    MolecularBand("TiO 5448", 5448.0, 45.0, True, math.log10(0.3), 1.26, 12.0, 0.2, 1.6, True),
    MolecularBand("TiO 6159", 6158.7, 60.0, True, math.log10(0.35), 1.26, 12.0, 0.2, 1.6, True),
    MolecularBand("TiO 7054", 7053.9, 80.0, True, math.log10(0.45), 1.26, 12.0, 0.2, 1.6, True),
)


BAND_TAU_MAX = 1.5
"""Saturation of a band's mean optical depth (a band is a forest of unresolved lines)."""


def band_opacity(wave_rest: NDArray[np.float64], teff: float, logg: float, feh: float,
                 *, resolution: float = RESOLUTION) -> NDArray[np.float64]:
    """Optical depth of the molecular bands (:data:`MOLECULAR_BANDS`) at rest-frame vacuum wavelengths.

    Each band's depth scales as ``10^(log_tau_ref + d_theta (theta - theta_ref) + d_logg
    (log g - 4.44) + d_metal [M/H])``; its shape is an exponential decay away from the
    head, softened over the instrumental width at the head, with a fixed rotational
    texture (a few sines of 2-7 Angstrom period, 30 % deep) so that it is not a smooth
    ramp a continuum fit would absorb. The mean opacity saturates at
    :data:`BAND_TAU_MAX`.

    Parameters
    ----------
    wave_rest : ndarray
        Rest-frame vacuum wavelengths, Angstrom.
    teff, logg, feh : float
        K, dex, dex.
    resolution : float
        Instrumental resolving power (softens the head).

    Returns
    -------
    ndarray
        Optical depth, same shape as ``wave_rest``.
    """
    from scipy.special import ndtr

    theta = 5040.0 / teff
    alpha_fe = min(max(-0.4 * feh, 0.0), 0.4)
    tau = np.zeros_like(wave_rest)
    # a band is a forest of lines: its mean opacity saturates (at 1 - exp(-BAND_TAU_MAX) depth)
    # once the lines are strong, instead of blacking out the whole band
    for k, b in enumerate(MOLECULAR_BANDS):
        mh = feh + (alpha_fe if b.alpha else 0.0)
        log_tau = b.log_tau_ref + b.d_theta * (theta - b.theta_ref) + b.d_logg * (logg - 4.44) + b.d_metal * mh
        if log_tau < -4.0:
            continue
        head = float(air_to_vacuum(b.head))
        d = (wave_rest - head) if b.to_red else (head - wave_rest)  # >= 0 inside the band
        inside = (d > -5.0 * head / resolution) & (d < 8.0 * b.extent)
        if not inside.any():
            continue
        dd = d[inside]
        edge = ndtr(dd / (head / (2.3548 * resolution)))
        texture = 1.0 + 0.1 * (np.sin(2 * np.pi * dd / 2.3 + k) + np.sin(2 * np.pi * dd / 4.1 + 2 * k)
                               + np.sin(2 * np.pi * dd / 6.7 + 3 * k))
        tau[inside] += 10.0 ** log_tau * edge * np.exp(-np.maximum(dd, 0.0) / b.extent) * texture
    return BAND_TAU_MAX * -np.expm1(-tau / BAND_TAU_MAX)


def planck(wave: NDArray[np.float64], teff: float) -> NDArray[np.float64]:
    """B_lambda(T) up to a constant, at wavelengths in Angstrom."""
    return wave ** -5.0 / np.expm1(_HC_OVER_K / (wave * teff))


def synthesize(teff: float, logg: float, feh: float, rv: float = 0.0, *,
               resolution: float = RESOLUTION, loglam: NDArray[np.float64] | None = None
               ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Noiseless spectrum and continuum of a star on the SDSS pixels, arbitrary flux units.

    Parameters
    ----------
    teff, logg, feh : float
        Effective temperature (K), log surface gravity (cgs dex) and [Fe/H] (dex).
    rv : float
        Radial velocity, km/s (positive: receding), applied as a relativistic Doppler shift.
    resolution : float
        Instrumental resolving power lambda / FWHM.
    loglam : ndarray, optional
        Observed-frame loglam pixels on SDSS's 1e-4 grid; default :func:`loglam_grid`.

    Returns
    -------
    flux, continuum : ndarray of shape (n_pixels,)
        The spectrum with its lines and the line-free continuum (both in the same units;
        the continuum peaks near 1 for Teff above ~7,600 K, lower for cooler stars).

    Examples
    --------
    >>> flux, cont = synthesize(5777.0, 4.44, 0.0)
    >>> flux.shape, bool((flux <= cont + 1e-12).all())
    ((3841,), True)
    """
    if loglam is None:
        loglam = loglam_grid()
    beta = rv / C_KMS
    log_doppler = 0.5 * math.log10((1.0 + beta) / (1.0 - beta))
    wave_rest = 10.0 ** (loglam - log_doppler)
    cont = planck(wave_rest, teff) * 1e-20 * (1.0 - 0.15 * (4000.0 / wave_rest) ** 4
                                               * 10.0 ** min(feh, 0.5) * min((5500.0 / teff) ** 2, 2.0))
    cont /= planck(np.array([5000.0]), 9500.0)[0] * 1e-20
    d = _line_data()
    s = line_strengths(teff, logg, feh)
    tau = np.zeros(loglam.size)
    tau_h = np.zeros(loglam.size)
    pix0 = int(round(loglam[0] / LOGLAM_STEP))
    for idx, offsets in d.groups:
        w0 = d.lines.wave[idx]
        centre = (np.log10(w0) + log_doppler) / LOGLAM_STEP - pix0  # fractional pixel
        pix = np.rint(centre).astype(np.int64)[:, None] + offsets[None, :]
        dl = (pix - centre[:, None]) * (LOGLAM_STEP * math.log(10.0)) * w0[:, None]
        sig, sd, gam = s["sigma"][idx, None], s["sigma_d"][idx, None], s["gamma"][idx, None]
        s_inst = w0[:, None] / (2.3548 * resolution)
        s_obs = np.sqrt(s_inst ** 2 + sd ** 2)
        tau0 = sig / (math.sqrt(2.0 * math.pi) * sd)
        w_core = math.sqrt(2.0) * sd * 10.0 ** np.interp(np.log10(np.maximum(tau0, 1e-30)), *_COG,
                                                          left=-np.inf)
        w_core = np.where(tau0 < 1e-4, sig, w_core)
        a_core = w_core / (math.sqrt(2.0 * math.pi) * s_obs) * np.exp(-0.5 * (dl / s_obs) ** 2)
        t = -np.log1p(-np.minimum(a_core, 0.95))
        is_h = bool(idx.size) and d.lines.kind[idx[0]] == 2
        if is_h:
            t = t + sig * gam ** 1.5 / (2.3963 * (dl ** 2 + gam ** 2 + s_obs ** 2) ** 1.25)
        else:
            # Lorentzian wings tau = c / dlambda^2, their core softened so that, convolved with the
            # instrument, a weak wing keeps a depth ~ EW / (2.5 sigma) and a strong one saturates as a box
            c = sig * gam / math.pi
            t = t + c / (dl ** 2 + s_obs * np.sqrt(0.5 * c) + 1e-12)
        ok = (pix >= 0) & (pix < loglam.size)
        (tau_h if is_h else tau)[:] += np.bincount(pix[ok], weights=t[ok], minlength=loglam.size)
    tau += band_opacity(wave_rest, teff, logg, feh, resolution=resolution)
    flux = cont * (_R0 + (1.0 - _R0) * np.exp(-tau)) * (_R0_H + (1.0 - _R0_H) * np.exp(-tau_h))
    return flux, cont
