"""Mock ugriz catalogue of galaxies with star-formation-rate surface densities (seed paper 000).

A flux-limited population is drawn from published scaling relations, given SDSS-like
photometry from empirical templates, and written as a Parquet catalogue or an astroreg
dataset. The physics, the numbers and their sources are in ``docs/galaxy-photometry-mock.md``.

- redshift: comoving volume (Planck18) times the number of galaxies above the survey's
  mass limit at that redshift, in ``z_range``;
- stellar mass: double Schechter function of Baldry et al. (2012), 10^8-10^12 M_sun;
- quenched fraction: mass quenching of Peng et al. (2010) plus a mass-independent floor;
- SFR: the main sequence of Speagle et al. (2014) with 0.2 dex scatter; quenched galaxies
  lie 0.7 dex + Gamma(2.5, 0.4 dex) below it;
- half-light radius: van der Wel et al. (2014) for late and early types;
- Sigma_SFR = SFR / (2 pi R_e^2), R_e in proper kpc from the angular size (Planck18);
- photometry: the CWW E, Sbc, Scd and Im templates shipped with GalSim, mixed by specific
  SFR, attenuated with the Calzetti et al. (2000) curve by an amount that grows with SFR,
  redshifted, integrated through the SDSS filters and scaled to the stellar mass by the
  colour-M/L relation of Bell et al. (2003); errors from the magnitude-error relation of
  Ivezic et al. (2019) at SDSS depth; S/N below ``detection_snr`` is a non-detection.
"""

from __future__ import annotations

import functools
import os
import types
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

BANDS = ("u", "g", "r", "i", "z")
"""SDSS bands of the mock, blue to red."""

DEPTH_5SIGMA: Mapping[str, float] = types.MappingProxyType(
    {"u": 22.0, "g": 22.2, "r": 22.2, "i": 21.3, "z": 20.5})
"""SDSS imaging depth (AB mag; 95% completeness for point sources, Abazajian et al. 2009), used as 5-sigma limits."""

CALIBRATION_FLOOR: Mapping[str, float] = types.MappingProxyType(
    {"u": 0.02, "g": 0.01, "r": 0.01, "i": 0.01, "z": 0.01})
"""Error floor per band, mag (SDSS photometric calibration, Padmanabhan et al. 2008)."""

PHOTOMETRY_BANDS = BANDS
SDSS_DEPTH_5SIGMA = DEPTH_5SIGMA

_GAMMA = {"u": 0.038, "g": 0.039, "r": 0.039, "i": 0.039, "z": 0.039}  # Ivezic et al. 2019, eq. 5

MISSING = 99.0
"""Magnitude and error of a non-detection in the Parquet catalogue (read as missing by ``ingest catalog``)."""

TEMPLATES = ("E", "Sbc", "Scd", "Im")
"""Coleman, Wu & Weedman (1980) templates (GalSim's ``CWW_*_ext.sed``), red to blue."""

TEMPLATE_LOG_SSFR = (-11.7, -10.3, -9.8, -9.2)
"""log10 specific SFR (1/yr) at which each template is used alone; mixed linearly in between."""

M_SUN_R = 4.65
"""Absolute AB magnitude of the Sun in SDSS r (Willmer 2018)."""

_BELL_R = (-0.306, 1.097)  # log10(M/L_r) = a + b (g - r), Bell et al. 2003 Table 7 (diet Salpeter)
_KROUPA = -0.15  # dex, Bell et al. 2003: diet Salpeter -> Kroupa IMF (that of Speagle et al. 2014)
# Baldry et al. 2012 (GAMA, z < 0.06), per dex per Mpc^3
_SMF = {"log_mstar": 10.66, "phi1": 3.96e-3, "alpha1": -0.35, "phi2": 0.79e-3, "alpha2": -1.47}
_LOG_M_RANGE = (8.0, 12.0)
_LOG_M_QUENCH = 10.6  # Peng et al. 2010: mass-quenching efficiency 1 - exp(-M / 10^10.6)
_ENV_QUENCHED = 0.10  # floor of the quenched fraction (environment quenching, satellites)
_MS_SCATTER = 0.2  # dex, Speagle et al. 2014 (true scatter)
_SED_SCATTER = 0.15  # dex of log sSFR: star-formation histories that give other colours at one sSFR
# van der Wel et al. 2014, z = 0.25: log10(R_e / kpc) = log A + alpha log10(M / 5e10 M_sun), scatter,
# and (1 + z)^beta evolution; early types flatten below 2e10 M_sun (slope 0.1 there, our choice).
_SIZE_LATE = {"log_a": 0.86, "alpha": 0.25, "scatter": 0.16, "beta": -0.75}
_SIZE_EARLY = {"log_a": 0.60, "alpha": 0.75, "scatter": 0.10, "beta": -1.48, "log_m_break": np.log10(2e10),
               "alpha_low": 0.1}
_PSF_RE = 0.7  # arcsec: half of the SDSS r seeing FWHM (1.4 arcsec), where sizes become hard to measure
_R_V = 4.05  # Calzetti et al. 2000
_STARS_TO_GAS = 0.44  # A_V(stars) = 0.44 A_V(gas), Calzetti et al. 2000
_A_MAX = 3.0
_Z_STEP, _A_STEP = 0.002, 0.05
_BATCH = 50_000
_FILTER_FILE = "SLOAN_SDSS.{band}.dat"
_FILTER_ENV = "ASTROREG_SDSS_FILTERS"
_SHARED_FILTERS = Path("data") / "sdss"

UNITS: Mapping[str, str] = types.MappingProxyType({
    **{f"mag_{b}": "mag(AB)" for b in BANDS}, **{f"magerr_{b}": "mag" for b in BANDS},
    **{f"mag_{b}_true": "mag(AB)" for b in BANDS},
    "redshift": "", "z_spec": "", "r_e_arcsec": "arcsec", "r_e_arcsec_true": "arcsec", "r_e_kpc": "kpc",
    "log_mstar": "dex(M_sun)", "log_sfr": "dex(M_sun/yr)", "log_sigma_sfr": "dex(M_sun/yr/kpc^2)",
    "log_ssfr": "dex(1/yr)", "delta_ms": "dex", "quenched": "", "a_v": "mag", "g_r_rest": "mag",
    "log_ml_r": "dex(M_sun/L_sun)",
})
"""Unit of every catalogue column."""


def calzetti_k(wavelength: ArrayLike) -> NDArray[np.float64]:
    """Calzetti et al. (2000) attenuation curve k'(lambda) = A(lambda) / E_s(B-V), R'_V = 4.05.

    ``dust_extinction`` has extinction curves only (its attenuation companion,
    ``dust_attenuation``, is not a dependency), so the two published polynomials are
    evaluated here (Calzetti et al. 2000, eq. 4).

    Parameters
    ----------
    wavelength : array_like
        Rest-frame wavelength, Angstrom, within 1200-22000.

    Returns
    -------
    numpy.ndarray
        k'(lambda), same shape; A(lambda) / A_V is ``k / 4.05``.

    Examples
    --------
    >>> round(float(calzetti_k(5500.0)), 2)
    4.05
    """
    lam = np.asarray(wavelength, dtype=np.float64) / 1e4
    if np.any((lam < 0.12) | (lam > 2.2)):
        raise ValueError(f"Calzetti curve defined for 1200-22000 Angstrom; got {lam.min() * 1e4:.0f}-"
                         f"{lam.max() * 1e4:.0f}: keep the redshift range within the filters' reach")
    blue = 2.659 * (-2.156 + 1.509 / lam - 0.198 / lam**2 + 0.011 / lam**3) + _R_V
    red = 2.659 * (-1.857 + 1.040 / lam) + _R_V
    return np.where(lam < 0.63, blue, red)


def _filter_dirs(filter_dir: str | os.PathLike | None) -> list[Path]:
    if filter_dir is not None:
        return [Path(filter_dir)]
    out = [Path(os.environ[_FILTER_ENV])] if os.environ.get(_FILTER_ENV) else []
    out.append(Path.cwd().parent / "shared" / _SHARED_FILTERS)
    out.append(Path(__file__).resolve().parents[3].parent / "shared" / _SHARED_FILTERS)  # a source checkout
    return out


def sdss_filters(filter_dir: str | os.PathLike | None = None) -> dict[str, NDArray[np.float64]]:
    """The SDSS u, g, r, i, z response curves (SVO ``SLOAN_SDSS.<band>.dat`` files).

    No installed package ships SDSS filter curves (GalSim has LSST, ACS and WFC3 ones), so
    they are read from ``filter_dir``; without it from ``$ASTROREG_SDSS_FILTERS``, then
    ``../shared/data/sdss`` beside the working folder or the source checkout.

    Parameters
    ----------
    filter_dir : path-like, optional
        Folder holding ``SLOAN_SDSS.u.dat`` ... ``SLOAN_SDSS.z.dat`` (two columns:
        wavelength in Angstrom, response per photon).

    Returns
    -------
    dict of str to numpy.ndarray
        Band to an array of shape (n_points, 2): wavelength (Angstrom), response.

    Raises
    ------
    ValueError
        When no folder holds all five files; the message lists the folders tried.
    """
    tried = _filter_dirs(filter_dir)
    for folder in tried:
        files = {b: folder / _FILTER_FILE.format(band=b) for b in BANDS}
        if all(f.is_file() for f in files.values()):
            out = {}
            for b, f in files.items():
                curve = np.loadtxt(f, dtype=np.float64, ndmin=2)
                if curve.shape[1] < 2 or curve.shape[0] < 5 or np.any(np.diff(curve[:, 0]) <= 0):
                    raise ValueError(f"{f} is not a filter curve (two columns, wavelength in Angstrom "
                                     f"increasing, response): replace it with the SVO file")
                out[b] = curve[:, :2]
            return out
    raise ValueError(
        "SDSS filter curves SLOAN_SDSS.{u,g,r,i,z}.dat not found in "
        + ", ".join(str(p) for p in tried)
        + "; download them from the SVO Filter Profile Service (SLOAN/SDSS.u ... SLOAN/SDSS.z) into a folder "
        f"and pass it as filter_dir= (--filters DIR), or set ${_FILTER_ENV}"
    )


def _template(name: str) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    import galsim  # only for its share folder

    path = Path(galsim.meta_data.share_dir) / "SEDs" / f"CWW_{name}_ext.sed"
    data = np.loadtxt(path)
    return data[:, 0], data[:, 1]  # Angstrom, f_lambda


class SedGrid:
    """Band fluxes of the templates on a grid of redshift and attenuation.

    ``flux[k, b, i, j]`` is the AB flux density of template ``k`` through band ``b`` at
    redshift ``z[i]`` behind ``A_V = a_v[j]`` of Calzetti dust, for a template scaled to
    unit rest-frame r-band flux at 10 pc, so that
    ``m_b = M_r - 2.5 log10(flux) + distance modulus``.

    Parameters
    ----------
    filters : mapping of str to array of shape (n_points, 2)
        :func:`sdss_filters`.
    z_max : float
        Largest redshift of the grid.
    """

    def __init__(self, filters: Mapping[str, NDArray[np.float64]], z_max: float) -> None:
        lo = min(float(f[0, 0]) for f in filters.values())
        hi = max(float(f[-1, 0]) for f in filters.values())
        lam = np.arange(lo, hi + 5.0, 5.0)
        # photon-counting AB flux: <f_nu> = int f_lambda T lambda dlam / int (c / lambda^2) T lambda dlam
        resp = np.stack([np.interp(lam, filters[b][:, 0], filters[b][:, 1], left=0.0, right=0.0) for b in BANDS])
        weight = resp * lam * np.gradient(lam)
        weight /= (weight * 2.99792458e18 / lam**2).sum(axis=1, keepdims=True)
        self.z = np.arange(0.0, z_max + 2 * _Z_STEP, _Z_STEP)
        self.a_v = np.arange(0.0, _A_MAX + _A_STEP / 2, _A_STEP)
        seds = [_template(t) for t in TEMPLATES]
        flux = np.empty((len(TEMPLATES), len(BANDS), len(self.z), len(self.a_v)))
        for i, z in enumerate(self.z):
            rest = lam / (1 + z)
            trans = 10.0 ** (-0.4 * np.outer(self.a_v, calzetti_k(rest) / _R_V))  # (A, L)
            f = np.stack([np.interp(rest, w, s) for w, s in seds]) / (1 + z)  # (K, L)
            flux[:, :, i, :] = np.einsum("kl,al,bl->kba", f, trans, weight)
        flux /= flux[:, BANDS.index("r"), 0, 0][:, None, None, None]
        self.flux = flux

    def fluxes(self, weights: NDArray, z: NDArray, a_v: NDArray) -> NDArray[np.float64]:
        """Band fluxes of template mixtures, array of shape (n, 5), bilinear in z and A_V.

        Parameters
        ----------
        weights : array of shape (n, 4)
            Fraction of the rest-frame r-band light from each template (rows sum to 1).
        z, a_v : arrays of shape (n,)
            Redshift and continuum attenuation A_V (mag).
        """
        zi = np.clip((np.asarray(z) - self.z[0]) / _Z_STEP, 0, len(self.z) - 1.000001)
        ai = np.clip(np.asarray(a_v) / _A_STEP, 0, len(self.a_v) - 1.000001)
        i0, j0 = zi.astype(int), ai.astype(int)
        tz, ta = (zi - i0)[:, None, None], (ai - j0)[:, None, None]
        g = self.flux.transpose(2, 3, 0, 1)  # (Z, A, K, B)
        per_template = ((1 - tz) * (1 - ta) * g[i0, j0] + tz * (1 - ta) * g[i0 + 1, j0]
                        + (1 - tz) * ta * g[i0, j0 + 1] + tz * ta * g[i0 + 1, j0 + 1])
        return np.einsum("nk,nkb->nb", weights, per_template)

    def rest_g_minus_r(self, weights: NDArray) -> NDArray[np.float64]:
        """Intrinsic rest-frame g - r (AB mag) of template mixtures, array of shape (n,)."""
        g = weights @ self.flux[:, BANDS.index("g"), 0, 0]
        return -2.5 * np.log10(g)


@functools.lru_cache(maxsize=4)
def _grid(filter_key: str, z_max: float) -> SedGrid:
    return SedGrid(sdss_filters(filter_key or None), z_max)


def sed_grid(filter_dir: str | os.PathLike | None = None, z_max: float = 0.5) -> SedGrid:
    """The :class:`SedGrid` of the SDSS filters (cached per folder and ``z_max``)."""
    return _grid(str(filter_dir) if filter_dir is not None else "", float(z_max))


@functools.lru_cache(maxsize=1)
def _cosmo_table() -> dict[str, NDArray[np.float64]]:
    """Planck18 quantities on a log-spaced redshift grid (astropy integrates each point: too slow per galaxy)."""
    from astropy.cosmology import Planck18

    z = np.geomspace(1e-4, 1.0, 800)
    return {"z": z, "distmod": Planck18.distmod(z).value, "age": Planck18.age(z).to_value("Gyr"),
            "dvdz": Planck18.differential_comoving_volume(z).value,
            "kpc_per_arcsec": Planck18.kpc_proper_per_arcmin(z).to_value("kpc/arcmin") / 60.0}


def _cosmo(name: str, z: ArrayLike) -> NDArray[np.float64]:
    t = _cosmo_table()
    return np.interp(z, t["z"], t[name])


def sigma_sfr(sfr: ArrayLike, r_e_arcsec: ArrayLike, z: ArrayLike) -> NDArray[np.float64]:
    """Star-formation-rate surface density inside the half-light radius, M_sun/yr/kpc^2.

    Sigma_SFR = SFR / (2 pi R_e^2): half the SFR inside the circle of radius R_e, with
    R_e in proper kpc from the angular size and the Planck18 angular-diameter distance.

    Parameters
    ----------
    sfr : array_like
        Star-formation rate, M_sun/yr.
    r_e_arcsec : array_like
        Half-light radius, arcsec.
    z : array_like
        Redshift.

    Returns
    -------
    numpy.ndarray
        Sigma_SFR, M_sun/yr/kpc^2, broadcast shape of the inputs.

    Examples
    --------
    >>> round(float(sigma_sfr(1.0, 2.0, 0.1)), 4)  # 2 arcsec at z = 0.1: R_e = 3.81 kpc
    0.0109
    """
    from astropy import units as u
    from astropy.cosmology import Planck18

    scale = Planck18.kpc_proper_per_arcmin(np.asarray(z, dtype=np.float64)).to(u.kpc / u.arcsec)
    r_e = (np.asarray(r_e_arcsec, dtype=np.float64) * u.arcsec * scale).to(u.kpc)
    out = np.asarray(sfr, dtype=np.float64) * (u.M_sun / u.yr) / (2 * np.pi * r_e**2)
    return np.asarray(out.to_value(u.M_sun / u.yr / u.kpc**2))


def main_sequence(log_mstar: ArrayLike, z: ArrayLike) -> NDArray[np.float64]:
    """log10 SFR (M_sun/yr) of the star-forming main sequence, Speagle et al. (2014) eq. 28.

    log SFR = (0.84 - 0.026 t) log M - (6.51 - 0.11 t), t the age of the Universe in Gyr
    (Planck18), Kroupa IMF.
    """
    z = np.asarray(z, dtype=np.float64)
    t = _cosmo("age", z)
    return (0.84 - 0.026 * t) * np.asarray(log_mstar) - (6.51 - 0.11 * t)


def quenched_fraction(log_mstar: ArrayLike) -> NDArray[np.float64]:
    """Fraction of quenched galaxies at a stellar mass: 1 - 0.9 exp(-M / 10^10.6) (Peng et al. 2010 + floor)."""
    m = 10.0 ** (np.asarray(log_mstar, dtype=np.float64) - _LOG_M_QUENCH)
    return 1.0 - (1.0 - _ENV_QUENCHED) * np.exp(-m)


def template_weights(log_ssfr: ArrayLike) -> NDArray[np.float64]:
    """Weights of the E, Sbc, Scd, Im templates (rest r-band light), array of shape (n, 4).

    Linear in log sSFR between the anchors :data:`TEMPLATE_LOG_SSFR`, one template alone
    beyond the ends.
    """
    s = np.atleast_1d(np.asarray(log_ssfr, dtype=np.float64))
    anchors = np.asarray(TEMPLATE_LOG_SSFR)
    pos = np.interp(s, anchors, np.arange(len(anchors)))
    lo = np.minimum(pos.astype(int), len(anchors) - 2)
    t = pos - lo
    w = np.zeros((s.size, len(anchors)))
    w[np.arange(s.size), lo] = 1 - t
    w[np.arange(s.size), lo + 1] += t
    return w


def dust_attenuation(log_sfr: ArrayLike) -> NDArray[np.float64]:
    """Median stellar-continuum A_V (mag) at a SFR: 0.535 max(0, 0.9 + 0.6 log SFR).

    A_Halpha = 0.9 + 0.6 log10(SFR / M_sun/yr) (about 1 mag at 1 M_sun/yr, rising with SFR,
    as Balmer decrements of SDSS star-forming galaxies do: Hopkins et al. 2001, Garn & Best
    2010), converted to the continuum with Calzetti et al. (2000): A_V = 0.44 A_Halpha 4.05 / 3.33.
    """
    a_halpha = np.maximum(0.0, 0.9 + 0.6 * np.asarray(log_sfr, dtype=np.float64))
    return _STARS_TO_GAS * _R_V / float(calzetti_k(6563.0)) * a_halpha


def half_light_radius(log_mstar: ArrayLike, z: ArrayLike, quenched: ArrayLike) -> NDArray[np.float64]:
    """Median half-light radius (proper kpc) of van der Wel et al. (2014), late or early types."""
    m = np.asarray(log_mstar, dtype=np.float64)
    zp = np.log10((1 + np.asarray(z, dtype=np.float64)) / 1.25)
    late = _SIZE_LATE["log_a"] + _SIZE_LATE["alpha"] * (m - np.log10(5e10)) + _SIZE_LATE["beta"] * zp
    e = _SIZE_EARLY
    mb = np.maximum(m, e["log_m_break"])
    early = (e["log_a"] + e["alpha"] * (mb - np.log10(5e10)) + e["alpha_low"] * np.minimum(m - e["log_m_break"], 0)
             + e["beta"] * zp)
    return 10.0 ** np.where(np.asarray(quenched, dtype=bool), early, late)


def model_magnitudes(log_mstar: ArrayLike, z: ArrayLike, log_ssfr_sed: ArrayLike, a_v: ArrayLike, *,
                     grid: SedGrid | None = None) -> tuple[NDArray[np.float64], NDArray[np.float64],
                                                          NDArray[np.float64]]:
    """Noise-free ugriz AB magnitudes of galaxies.

    Parameters
    ----------
    log_mstar, z, log_ssfr_sed, a_v : arrays of shape (n,)
        log10 stellar mass (M_sun), redshift, the log10 sSFR (1/yr) that sets the template
        mixture (:func:`template_weights`), and continuum attenuation A_V (mag, 0-3).
    grid : SedGrid, optional
        Default: :func:`sed_grid` of the SDSS filters.

    Returns
    -------
    mags : array of shape (n, 5)
        u, g, r, i, z AB magnitudes.
    g_r_rest : array of shape (n,)
        Intrinsic rest-frame g - r, mag.
    log_ml_r : array of shape (n,)
        log10 of the r-band mass-to-light ratio (M_sun/L_sun), Bell et al. (2003), Kroupa IMF.
    """
    z = np.atleast_1d(np.asarray(z, dtype=np.float64))
    grid = grid or sed_grid(z_max=max(0.5, float(z.max())))
    w = template_weights(log_ssfr_sed)
    g_r = grid.rest_g_minus_r(w)
    log_ml = _BELL_R[0] + _BELL_R[1] * g_r + _KROUPA
    abs_r = M_SUN_R - 2.5 * (np.asarray(log_mstar, dtype=np.float64) - log_ml)
    flux = grid.fluxes(w, z, np.clip(a_v, 0.0, _A_MAX))
    dm = _cosmo("distmod", z)
    return abs_r[:, None] + dm[:, None] - 2.5 * np.log10(flux), g_r, log_ml


def magnitude_error(mag: ArrayLike, band: str) -> NDArray[np.float64]:
    """Expected 1-sigma magnitude error at a true magnitude (SDSS depth).

    sigma^2 = floor^2 + (0.04 - gamma) x + gamma x^2, x = 10^(0.4 (m - m_5)) (Ivezic et al.
    2019, eq. 5), m_5 from :data:`DEPTH_5SIGMA`, floor from :data:`CALIBRATION_FLOOR`.
    """
    x = 10.0 ** (0.4 * (np.asarray(mag, dtype=np.float64) - DEPTH_5SIGMA[band]))
    gamma = _GAMMA[band]
    return np.sqrt(CALIBRATION_FLOOR[band] ** 2 + (0.04 - gamma) * x + gamma * x**2)


def observe_magnitudes(true_mags: NDArray, rng: np.random.Generator, *, detection_snr: float = 3.0
                       ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.bool_]]:
    """Add flux noise to true magnitudes; measured S/N below ``detection_snr`` is a non-detection.

    Parameters
    ----------
    true_mags : array of shape (n, 5)
        u, g, r, i, z AB magnitudes.
    rng : numpy.random.Generator
    detection_snr : float
        Measured S/N (flux over its error) below which a band is not detected.

    Returns
    -------
    mags, errors : arrays of shape (n, 5)
        Measured magnitudes and their errors (1.0857 / measured S/N), :data:`MISSING` (99)
        where not detected.
    detected : bool array of shape (n, 5)
    """
    true_mags = np.asarray(true_mags, dtype=np.float64)
    sigma = np.stack([magnitude_error(true_mags[:, k], b) for k, b in enumerate(BANDS)], axis=1)
    flux = 10.0 ** (-0.4 * true_mags)
    flux_err = flux * sigma / 1.0857362
    measured = flux + flux_err * rng.standard_normal(flux.shape)
    snr = measured / flux_err
    detected = snr >= detection_snr
    safe = np.where(detected, measured, 1.0)
    mags = np.where(detected, -2.5 * np.log10(safe), MISSING)
    errors = np.where(detected, 1.0857362 / np.where(detected, snr, 1.0), MISSING)
    return mags, errors, detected


def _mass_function(log_m: NDArray) -> NDArray[np.float64]:
    """Baldry et al. (2012) double Schechter function, per dex per Mpc^3."""
    s = _SMF
    x = 10.0 ** (log_m - s["log_mstar"])
    return np.log(10) * np.exp(-x) * (s["phi1"] * x ** (s["alpha1"] + 1) + s["phi2"] * x ** (s["alpha2"] + 1))


class _Sampler:
    """Inverse-CDF draws of (z, log M) for a flux-limited survey."""

    def __init__(self, grid: SedGrid, z_range: tuple[float, float], r_limit: float) -> None:
        self.log_m = np.linspace(*_LOG_M_RANGE, 2001)
        dens = _mass_function(self.log_m)
        cum = np.concatenate([[0.0], np.cumsum(0.5 * (dens[1:] + dens[:-1]) * np.diff(self.log_m))])
        self.cum = cum / cum[-1]
        self.z = np.linspace(*z_range, 1001)
        # The brightest r per unit mass any template can give (bluest, no dust, lowest M/L): galaxies
        # less massive than that, 1.5 mag beyond the limit, are never selected and are not drawn.
        brightest = np.full(self.z.size, np.inf)
        for k in range(len(TEMPLATES)):
            m, _, _ = model_magnitudes(np.zeros(self.z.size), self.z, np.full(self.z.size, TEMPLATE_LOG_SSFR[k]),
                                       np.zeros(self.z.size), grid=grid)
            brightest = np.minimum(brightest, m[:, BANDS.index("r")])
        self.log_m_min = np.clip((brightest - (r_limit + 1.5)) / 2.5, *_LOG_M_RANGE)
        above = 1.0 - np.interp(self.log_m_min, self.log_m, self.cum)
        pz = _cosmo("dvdz", self.z) * above
        cz = np.concatenate([[0.0], np.cumsum(0.5 * (pz[1:] + pz[:-1]) * np.diff(self.z))])
        self.cz = cz / cz[-1]

    def draw(self, n: int, rng: np.random.Generator) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        z = np.interp(rng.random(n), self.cz, self.z)
        lo = np.interp(np.interp(z, self.z, self.log_m_min), self.log_m, self.cum)
        log_m = np.interp(lo + (1 - lo) * rng.random(n), self.cum, self.log_m)
        return z, log_m


def _draw_batch(n: int, rng: np.random.Generator, sampler: _Sampler, grid: SedGrid, *,
                r_limit: float, detection_snr: float) -> pd.DataFrame:
    z, log_m = sampler.draw(n, rng)
    quenched = rng.random(n) < quenched_fraction(log_m)
    ms = main_sequence(log_m, z)
    offset = np.where(quenched, -(0.7 + rng.gamma(2.5, 0.4, n)), _MS_SCATTER * rng.standard_normal(n))
    log_sfr = ms + offset
    log_ssfr = log_sfr - log_m
    a_v = np.clip(dust_attenuation(log_sfr) * 10.0 ** (0.15 * rng.standard_normal(n)), 0.0, _A_MAX)
    sed_ssfr = log_ssfr + _SED_SCATTER * rng.standard_normal(n)
    size = half_light_radius(log_m, z, quenched)
    scatter = np.where(quenched, _SIZE_EARLY["scatter"], _SIZE_LATE["scatter"])
    r_e_kpc = size * 10.0 ** (scatter * rng.standard_normal(n))
    true_mags, g_r, log_ml = model_magnitudes(log_m, z, sed_ssfr, a_v, grid=grid)
    mags, errs, det = observe_magnitudes(true_mags, rng, detection_snr=detection_snr)
    theta = r_e_kpc / _cosmo("kpc_per_arcsec", z)
    # a measured size: worse for faint galaxies and for those smaller than the seeing
    sig_r = np.sqrt(0.03**2 + (0.5 * magnitude_error(true_mags[:, 2], "r")) ** 2
                    + (0.1 * _PSF_RE / (theta + _PSF_RE)) ** 2)
    theta_obs = theta * 10.0 ** (sig_r * rng.standard_normal(n))
    r = BANDS.index("r")
    keep = det[:, r] & (mags[:, r] <= r_limit)
    cols = {"redshift": z}
    cols.update({f"mag_{b}": mags[:, k] for k, b in enumerate(BANDS)})
    cols.update({f"magerr_{b}": errs[:, k] for k, b in enumerate(BANDS)})
    cols.update(r_e_arcsec=theta_obs, log_mstar=log_m, log_sfr=log_sfr,
                log_sigma_sfr=np.full(n, np.nan), quenched=quenched)
    cols.update({f"mag_{b}_true": true_mags[:, k] for k, b in enumerate(BANDS)})
    cols.update(r_e_arcsec_true=theta, r_e_kpc=r_e_kpc, log_ssfr=log_ssfr, delta_ms=offset, a_v=a_v,
                g_r_rest=g_r, log_ml_r=log_ml)
    return pd.DataFrame(cols)[keep]


def simulate_galaxy_photometry(
    n: int,
    *,
    seed: int = 0,
    z_range: tuple[float, float] = (0.02, 0.3),
    r_limit: float = 20.5,
    detection_snr: float = 3.0,
    filter_dir: str | os.PathLike | None = None,
) -> pd.DataFrame:
    """Draw a flux-limited mock ugriz catalogue with true SFR, mass, size and Sigma_SFR.

    Parameters
    ----------
    n : int
        Galaxies in the catalogue (after the flux limit).
    seed : int
        Seed of every random draw; candidates are drawn in fixed blocks of 50,000, so a
        smaller ``n`` gives the first rows of a larger one.
    z_range : (float, float)
        Redshift range, within (0, 0.5].
    r_limit : float
        Flux limit: measured r (AB mag) at most this, and r detected.
    detection_snr : float
        Measured S/N below which a band is a non-detection (magnitude and error 99).
    filter_dir : path-like, optional
        Folder of the SDSS filter curves (see :func:`sdss_filters`).

    Returns
    -------
    pandas.DataFrame
        One row per galaxy, columns (units in :data:`UNITS`): ``id``, ``redshift``,
        ``mag_<b>``, ``magerr_<b>`` (99 when not detected), ``r_e_arcsec`` (measured),
        ``log_mstar``, ``log_sfr``, ``log_sigma_sfr``, ``quenched``, and the truths
        ``mag_<b>_true``, ``r_e_arcsec_true``, ``r_e_kpc``, ``log_ssfr``, ``delta_ms``
        (offset from the main sequence), ``a_v``, ``g_r_rest``, ``log_ml_r``.

    Examples
    --------
    >>> cat = simulate_galaxy_photometry(1000, seed=1)  # doctest: +SKIP
    >>> cat[["mag_r", "log_sigma_sfr"]].describe()  # doctest: +SKIP
    """
    if int(n) < 1:
        raise ValueError(f"n must be a positive number of galaxies; got {n}")
    z_lo, z_hi = (float(v) for v in z_range)
    if not 0 < z_lo < z_hi <= 0.5:
        raise ValueError(f"z_range must satisfy 0 < z_min < z_max <= 0.5 (the mass function and main sequence "
                         f"used are for the local Universe); got {z_range}")
    if not 14.0 <= r_limit <= DEPTH_5SIGMA["r"] + 1:
        raise ValueError(f"r_limit {r_limit} is outside 14-{DEPTH_5SIGMA['r'] + 1} mag (the r depth is "
                         f"{DEPTH_5SIGMA['r']}); give a flux limit such as 21")
    if detection_snr <= 0:
        raise ValueError(f"detection_snr must be positive (e.g. 3); got {detection_snr}")
    grid = sed_grid(filter_dir, max(0.5, z_hi))
    sampler = _Sampler(grid, (z_lo, z_hi), r_limit)
    rng = np.random.default_rng(seed)
    parts, have = [], 0
    for _ in range(10_000):
        if have >= n:
            break
        part = _draw_batch(_BATCH, rng, sampler, grid, r_limit=r_limit, detection_snr=detection_snr)
        parts.append(part)
        have += len(part)
    else:
        raise ValueError(f"only {have} of {n} galaxies pass r <= {r_limit} in z {z_range}; loosen the limits")
    cat = pd.concat(parts, ignore_index=True).iloc[:n].reset_index(drop=True)
    cat["log_sigma_sfr"] = np.log10(sigma_sfr(10.0 ** cat["log_sfr"].to_numpy(), cat["r_e_arcsec_true"].to_numpy(),
                                              cat["redshift"].to_numpy()))
    cat.insert(0, "id", [f"gp{i:07d}" for i in range(len(cat))])
    return cat

