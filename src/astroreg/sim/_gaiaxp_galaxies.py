"""Mock Gaia BP/RP (XP) spectra of galaxies with known redshift (seed paper 004).

Galaxies are drawn with the redshift distribution of paper 004's SDSS x Gaia sample, given
template spectra with emission lines and dust, redshifted, seen at Gaia XP resolution on
the paper's 186 kept samples (:func:`astroreg.preprocess._xp_layout.xp_grid`), scaled to a
G magnitude and given photon noise. The physics, the numbers and their sources are in
``docs/gaia-xp-mock.md``.

- redshift: a gamma distribution (shape 3.2, scale 0.044) truncated to [0, 0.6]: mean
  0.142, median 0.126, std 0.078, skewness 1.1, as paper 004's Figure 9 reports;
- continuum: two adjacent Coleman, Wu & Weedman (1980) templates (GalSim's ``CWW_*_ext.sed``:
  E, Sbc, Scd, Im) mixed by their light at 550 nm rest;
- emission lines: [O II] 3727, H-beta, [O III] 4959/5007, H-alpha, [N II] 6548/6583,
  [S II] 6716/6731, rest equivalent widths tied to the type (none for E, strongest for Im),
  with a common and a per-line log-normal scatter;
- dust: the Calzetti et al. (2000) curve (``calzetti_k``) with a random stellar E(B-V);
  lines behind E(B-V)_gas = E(B-V)_stars / 0.44;
- redshift: lambda_obs = (1 + z) lambda_rest, f_lambda / (1 + z);
- instrument: a Gaussian line-spread function whose FWHM is the diffraction-limited image
  (1.03 lambda / D, D = 1.45 m along scan) plus the 1-pixel box, in pixels, times
  GaiaXPy's dispersion dlambda/du: R = 15-90 in BP (highest at its blue end), 25-60 in RP;
- brightness: G uniform in ``g_range``; G of the noiseless spectrum through a passband
  R_BP + R_RP (GaiaXPy's instrument responses), Vega system (Vega = 0.03 mag);
- noise: electrons per sample from GaiaXPy's instrument model, n_e = P A R(lambda)
  n_photons(lambda) dlambda/du t, with t = 30 transits of 4.42 s and a sky as bright as a
  G = 19 source, plus a 1 % calibration floor; flux in units of 1e-17 W m^-2 nm^-1.
"""

from __future__ import annotations

import functools
import types
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from astroreg.preprocess._xp_layout import import_gaiaxpy
from astroreg.sim._galaxy_photometry import calzetti_k

TEMPLATES = ("E", "Sbc", "Scd", "Im")
"""Coleman, Wu & Weedman (1980) templates (GalSim's ``CWW_*_ext.sed``), red to blue."""

Z_MAX = 0.6
"""Upper limit of redshift, as paper 004 (SDSS DR16 galaxies seen by Gaia, 0 <= z <= 0.6)."""
Z_GAMMA_SHAPE = 3.2
Z_GAMMA_SCALE = 0.044
"""Gamma distribution of z (truncated at :data:`Z_MAX`): mean 0.142, median 0.126, std 0.078, skew 1.1."""

G_RANGE = (17.0, 21.0)
"""Default range of G magnitude (Vega), drawn uniformly."""

LINES: Mapping[str, float] = types.MappingProxyType({
    "OII_3727": 372.71, "Hbeta": 486.13, "OIII_4959": 495.89, "OIII_5007": 500.68, "NII_6548": 654.80,
    "Halpha": 656.28, "NII_6583": 658.34, "SII_6716": 671.64, "SII_6731": 673.08,
})
"""Emission lines: rest wavelength in nm (air)."""

LINE_EW: Mapping[str, tuple[float, float, float, float]] = types.MappingProxyType({
    # rest equivalent width in Angstrom for the pure E, Sbc, Scd, Im templates (typical SDSS values
    # by type: Kennicutt 1992; Brinchmann et al. 2004); [O III] 4959 and [N II] 6548 are 1/3 of
    # their partners (atomic physics)
    "OII_3727": (0.0, 8.0, 20.0, 50.0),
    "Hbeta": (0.0, 3.0, 7.0, 25.0),
    "OIII_4959": (0.0, 1.0, 3.3, 27.0),
    "OIII_5007": (0.0, 3.0, 10.0, 80.0),
    "NII_6548": (0.0, 2.0, 3.3, 3.3),
    "Halpha": (0.0, 15.0, 35.0, 100.0),
    "NII_6583": (0.0, 6.0, 10.0, 10.0),
    "SII_6716": (0.0, 3.0, 5.0, 9.0),
    "SII_6731": (0.0, 2.0, 3.5, 6.0),
})
"""Rest-frame equivalent width (Angstrom) of each line in each pure template."""

_EW_SCATTER_COMMON = 0.3  # dex: star-formation activity at one continuum type
_EW_SCATTER_LINE = 0.1  # dex: line ratios (metallicity, ionisation)
_GAS_TO_STARS = 0.44  # E(B-V)_stars = 0.44 E(B-V)_gas, Calzetti et al. 2000
_EBV_MEAN = (0.03, 0.10, 0.15, 0.20)  # mean stellar E(B-V) (exponential) of each pure template
_EBV_MAX = 0.6
_R_V = 4.05
_NORM_NM = 550.0  # the templates are mixed by their rest f_lambda here

TELESCOPE_PUPIL_AREA_M2 = 0.7278
"""Gaia's pupil area (GaiaXPy ``core.satellite``), m^2."""
APERTURE_AL_M = 1.45
"""Along-scan length of Gaia's primary mirror, m (the diffraction width of the along-scan LSF)."""
PIXEL_AL_MAS = 58.9
"""Along-scan pixel size, mas."""
TRANSIT_S = 4.42
"""Integration time of one BP/RP transit (a CCD crossing), s."""
N_TRANSITS = 30
"""Transits averaged in a mean spectrum: DR3 requires more than 15; about 40 over its 34 months."""
SKY_G_MAG = 19.0
"""The sky in a BP/RP window, as the G magnitude of a source with a flat f_lambda (our choice; see the docs)."""
FLOOR = 0.01
"""Relative error floor of every sample (calibration), fraction of the flux."""
VEGA_G_MAG = 0.03
"""Vega's G magnitude (Gaia DR3, Vega system)."""

FLUX_SCALE = 1e-17
FLUX_UNIT = "1e-17 W m-2 nm-1"
"""Unit of the stored flux: GaiaXPy's calibrated W m^-2 nm^-1 times 1e17 (the inverse variance of a
G = 17 spectrum in W m^-2 nm^-1, ~1e42, does not fit the dataset's float32)."""

_FINE_NM = (320.0, 1060.0, 0.5)  # observed-frame grid of the continuum, nm
_REST_STEP = 2e-4  # log10 step of the rest-frame template grid
_BATCH = 2000  # galaxies a chunk: ~ 10 arrays of 2000 x 1481 float64 at once

_HC_J_NM = 6.62607015e-34 * 2.99792458e8 * 1e9  # h c, J nm
_ERG_CM2 = 1e-7 * 1e4  # erg s-1 cm-2 nm-1 -> W m-2 nm-1


def _share_sed(name: str) -> NDArray[np.float64]:
    import galsim  # only for its share folder

    path = Path(galsim.meta_data.share_dir) / "SEDs" / name
    return np.loadtxt(path)


@functools.lru_cache(maxsize=1)
def _responses() -> dict[str, tuple[NDArray[np.float64], NDArray[np.float64]]]:
    """GaiaXPy's BP and RP instrument responses R(lambda) (dimensionless): band to (wavelength nm, R)."""
    config_path = import_gaiaxpy("gaiaxpy.config.paths").config_path

    out = {}
    for band, stem in (("BP", "bpC03_v375wi"), ("RP", "rpC03_v142r")):
        table = np.genfromtxt(Path(config_path) / f"{stem}_response.csv", delimiter=",")
        out[band] = (table[0], np.clip(table[1], 0.0, None))
    return out


def response(band: str, wavelength_nm: ArrayLike) -> NDArray[np.float64]:
    """GaiaXPy's instrument response R(lambda) of ``band`` ("BP" or "RP"), linear between its points.

    R is the fraction of photons reaching the telescope pupil that are detected in the
    band (Gaia DR3 documentation, section 5.3.5): n_e(u) = P_A int n_p(lambda) L(u - D(lambda))
    R(lambda) dlambda.

    Examples
    --------
    >>> 0.5 < float(response("RP", 750.0)) < 0.8  # doctest: +SKIP
    True
    """
    lam, r = _responses()[str(band).upper()]
    return np.interp(np.asarray(wavelength_nm, dtype=np.float64), lam, r, left=0.0, right=0.0)


def lsf_fwhm_nm(band: str, wavelength_nm: ArrayLike) -> NDArray[np.float64]:
    """FWHM (nm) of the Gaussian line-spread function at a wavelength of ``band``.

    The along-scan image is diffraction-limited (FWHM 1.03 lambda / D, D = 1.45 m) and
    integrated over 1-pixel boxes (std 1/sqrt(12) pixel), converted to nm with GaiaXPy's
    dispersion function: FWHM = w_pix |dlambda/du|.

    Parameters
    ----------
    band : {"BP", "RP"}
    wavelength_nm : array_like
        Wavelength, nm.

    Returns
    -------
    numpy.ndarray
        FWHM, nm; the resolving power is ``wavelength_nm / lsf_fwhm_nm(...)``.
    """
    wl_to_pwl = import_gaiaxpy("gaiaxpy.core.dispersion_function").wl_to_pwl

    lam = np.atleast_1d(np.asarray(wavelength_nm, dtype=np.float64))
    h = 0.5
    dudl = (np.asarray(wl_to_pwl(band, lam + h), float) - np.asarray(wl_to_pwl(band, lam - h), float)) / (2 * h)
    diffraction_pix = 1.03 * lam * 1e-9 / APERTURE_AL_M * 206264806.247 / PIXEL_AL_MAS
    w_pix = np.sqrt(diffraction_pix**2 + (2.3548 / np.sqrt(12.0)) ** 2)
    return w_pix / np.abs(dudl)


def dispersion_nm_per_pixel(band: str, wavelength_nm: ArrayLike) -> NDArray[np.float64]:
    """|dlambda/du| of ``band``, nm per along-scan pixel (GaiaXPy's dispersion function)."""
    wl_to_pwl = import_gaiaxpy("gaiaxpy.core.dispersion_function").wl_to_pwl

    lam = np.atleast_1d(np.asarray(wavelength_nm, dtype=np.float64))
    h = 0.5
    dudl = (np.asarray(wl_to_pwl(band, lam + h), float) - np.asarray(wl_to_pwl(band, lam - h), float)) / (2 * h)
    return 1.0 / np.abs(dudl)


def draw_redshifts(n: int, rng: np.random.Generator) -> NDArray[np.float64]:
    """Redshifts of paper 004's sample: Gamma(3.2, 0.044) truncated to [0, 0.6], array of shape (n,).

    Drawn by inverting the truncated distribution's CDF (scipy), so each draw uses one
    uniform number whatever the truncation.

    Examples
    --------
    >>> z = draw_redshifts(100_000, np.random.default_rng(0))
    >>> round(float(z.mean()), 2), round(float(np.median(z)), 2)
    (0.14, 0.13)
    """
    from scipy import stats

    dist = stats.gamma(Z_GAMMA_SHAPE, scale=Z_GAMMA_SCALE)
    top = dist.cdf(Z_MAX)
    return dist.ppf(rng.random(int(n)) * top)


@dataclass(frozen=True)
class XpInstrument:
    """Everything that does not depend on the galaxy: templates, dust, LSF, passband, noise model.

    Attributes
    ----------
    wavelength_nm : array of shape (186,)
        The kept samples (BP then RP, increasing), nm.
    fwhm_nm : array of shape (186,)
        LSF FWHM at each sample, nm.
    lsf : array of shape (n_fine, 186)
        Gaussian LSF of each sample on the observed-frame fine grid, each column summing to
        1 (a flux density in, a flux density out).
    fine_nm : array of shape (n_fine,)
        Observed-frame fine grid, nm.
    electrons_per_flux : array of shape (186,)
        Electrons collected per sample (over the mean spectrum's exposure) per W m^-2 nm^-1.
    sky_electrons : array of shape (186,)
        Electrons of the sky in each sample over the exposure.
    g_weight : array of shape (n_fine,)
        Photon-counting G passband on the fine grid, normalised so that
        ``G = -2.5 log10(f @ g_weight) + VEGA_G_MAG`` for f_lambda in W m^-2 nm^-1.
    rest_log_nm0 : float
        log10 of the first wavelength (nm) of the rest-frame grid, whose step is 2e-4 dex.
    templates : array of shape (4, n_rest)
        E, Sbc, Scd, Im rest-frame f_lambda on that grid, 1 at 550 nm.
    dust_k : array of shape (n_rest,)
        Calzetti k'(lambda) on that grid.
    """

    wavelength_nm: NDArray[np.float64]
    n_bp: int
    fwhm_nm: NDArray[np.float64]
    lsf: NDArray[np.float64]
    fine_nm: NDArray[np.float64]
    electrons_per_flux: NDArray[np.float64]
    sky_electrons: NDArray[np.float64]
    g_weight: NDArray[np.float64]
    rest_log_nm0: float
    templates: NDArray[np.float64]
    dust_k: NDArray[np.float64]

    @property
    def resolving_power(self) -> NDArray[np.float64]:
        """lambda / FWHM at each sample."""
        return self.wavelength_nm / self.fwhm_nm


@functools.lru_cache(maxsize=1)
def xp_instrument() -> XpInstrument:
    """The :class:`XpInstrument` of the paper's 186-sample layout (built once, ~1 s)."""
    from astroreg.preprocess._xp_layout import kept_wavelengths

    kept = kept_wavelengths()
    lam = np.concatenate([kept["BP"], kept["RP"]])
    n_bp = kept["BP"].size
    fwhm = np.concatenate([lsf_fwhm_nm("BP", kept["BP"]), lsf_fwhm_nm("RP", kept["RP"])])
    lo, hi, step = _FINE_NM
    fine = np.arange(lo, hi + step / 2, step)
    sigma = fwhm / (2.0 * np.sqrt(2.0 * np.log(2.0)))
    lsf = np.exp(-0.5 * ((fine[:, None] - lam[None, :]) / sigma[None, :]) ** 2)
    lsf /= lsf.sum(axis=0, keepdims=True)  # f @ lsf: the LSF-weighted mean of f around each sample
    # electrons per sample: P_A R(lambda) lambda / (h c) f_lambda dlambda/du t (per W m-2 nm-1)
    r = np.concatenate([response("BP", kept["BP"]), response("RP", kept["RP"])])
    disp = np.concatenate([dispersion_nm_per_pixel("BP", kept["BP"]), dispersion_nm_per_pixel("RP", kept["RP"])])
    e_per_flux = TELESCOPE_PUPIL_AREA_M2 * r * lam / _HC_J_NM * disp * TRANSIT_S * N_TRANSITS
    # G passband: photon counting through R_BP + R_RP, Vega-normalised
    g_pass = response("BP", fine) + response("RP", fine)
    photon = g_pass * fine / _HC_J_NM * step
    vega = _share_sed("vega.txt")
    vega_flux = np.interp(fine, vega[:, 0], vega[:, 1]) * _ERG_CM2
    g_weight = photon / float(vega_flux @ photon)
    sky_flux = 10.0 ** (-0.4 * (SKY_G_MAG - VEGA_G_MAG)) / float(g_weight.sum())  # flat f_lambda of G = SKY_G_MAG
    sky_e = sky_flux * e_per_flux
    # rest-frame templates on a log grid reaching the fine grid's ends at z = 0 and z = Z_MAX
    log0 = np.log10(lo / (1 + Z_MAX)) - 2 * _REST_STEP
    rest = 10.0 ** np.arange(log0, np.log10(hi) + 2 * _REST_STEP, _REST_STEP)
    temps = []
    for t in TEMPLATES:
        sed = _share_sed(f"CWW_{t}_ext.sed")
        w_nm, f = sed[:, 0] / 10.0, sed[:, 1]
        temps.append(np.interp(rest, w_nm, f) / np.interp(_NORM_NM, w_nm, f))
    return XpInstrument(
        wavelength_nm=lam, n_bp=n_bp, fwhm_nm=fwhm, lsf=lsf, fine_nm=fine, electrons_per_flux=e_per_flux,
        sky_electrons=sky_e, g_weight=g_weight, rest_log_nm0=float(log0), templates=np.stack(temps),
        dust_k=calzetti_k(rest * 10.0),
    )


def template_weights(type_index: ArrayLike) -> NDArray[np.float64]:
    """Weights of E, Sbc, Scd, Im (light at 550 nm rest) for a continuous type in [0, 3], shape (n, 4).

    Type 1.25 is 75 % Sbc and 25 % Scd: two adjacent templates, mixed linearly.
    """
    t = np.clip(np.atleast_1d(np.asarray(type_index, dtype=np.float64)), 0.0, len(TEMPLATES) - 1.0)
    lo = np.minimum(t.astype(int), len(TEMPLATES) - 2)
    frac = t - lo
    w = np.zeros((t.size, len(TEMPLATES)))
    w[np.arange(t.size), lo] = 1.0 - frac
    w[np.arange(t.size), lo + 1] += frac
    return w


@dataclass(frozen=True)
class GalaxyParameters:
    """True parameters of a batch of galaxies (arrays of shape (n,) unless said)."""

    z: NDArray[np.float64]
    type_index: NDArray[np.float64]
    ebv: NDArray[np.float64]
    g_mag: NDArray[np.float64]
    line_ew: NDArray[np.float64]  # (n, n_lines): rest equivalent widths, Angstrom, before dust

    @property
    def weights(self) -> NDArray[np.float64]:
        return template_weights(self.type_index)


def draw_parameters(n: int, rng: np.random.Generator, g_range: tuple[float, float] = G_RANGE) -> GalaxyParameters:
    """Draw redshift, type, dust, G magnitude and line strengths of ``n`` galaxies."""
    z = draw_redshifts(n, rng)
    type_index = rng.uniform(0.0, len(TEMPLATES) - 1.0, n)
    w = template_weights(type_index)
    ebv = np.minimum(rng.exponential(1.0, n) * (w @ np.asarray(_EBV_MEAN)), _EBV_MAX)
    g_mag = rng.uniform(g_range[0], g_range[1], n)
    ew_table = np.asarray(list(LINE_EW.values()))  # (n_lines, 4)
    # EW of a mixture: the line luminosities add, the continuum at the line is that of the mixture;
    # approximated by the light-weighted EWs (the templates are normalised at 550 nm)
    base = w @ ew_table.T
    scatter = _EW_SCATTER_COMMON * rng.standard_normal((n, 1)) + _EW_SCATTER_LINE * rng.standard_normal(base.shape)
    line_ew = base * 10.0**scatter
    return GalaxyParameters(z=z, type_index=type_index, ebv=ebv, g_mag=g_mag, line_ew=line_ew)


def observe(params: GalaxyParameters, rng: np.random.Generator | None, *,
            instrument: XpInstrument | None = None) -> dict[str, NDArray[np.float64]]:
    """Gaia XP spectra of galaxies: flux, its error and the noiseless flux on the 186 kept samples.

    Parameters
    ----------
    params : GalaxyParameters
    rng : numpy.random.Generator or None
        Noise draws; None: no noise added (``flux`` is the noiseless flux).
    instrument : XpInstrument, optional
        Default :func:`xp_instrument`.

    Returns
    -------
    dict
        ``flux``, ``flux_error``, ``flux_true``: arrays of shape (n, 186), W m^-2 nm^-1;
        ``snr_median``: median S/N over the samples, shape (n,).
    """
    ins = instrument or xp_instrument()
    z = np.asarray(params.z, dtype=np.float64)
    n = z.size
    fine = ins.fine_nm
    # rest-frame log index of every fine pixel for every galaxy; linear interpolation by hand on the
    # uniform log grid is what np.interp would do per galaxy, without the Python loop
    pos = (np.log10(fine)[None, :] - np.log10(1.0 + z)[:, None] - ins.rest_log_nm0) / _REST_STEP
    i0 = pos.astype(np.intp)
    frac = pos - i0
    cont = np.zeros((n, fine.size))
    w = params.weights
    for k in range(len(TEMPLATES)):
        tk = ins.templates[k]
        cont += w[:, k:k + 1] * (tk[i0] * (1.0 - frac) + tk[i0 + 1] * frac)
    k_rest = ins.dust_k[i0] * (1.0 - frac) + ins.dust_k[i0 + 1] * frac
    cont *= 10.0 ** (-0.4 * params.ebv[:, None] * k_rest)
    cont /= (1.0 + z)[:, None]
    # lines: flux = EW x continuum at the line (rest, dust-free), behind the gas's dust, then
    # added analytically through each sample's Gaussian LSF (a line is narrower than any LSF)
    line_rest = np.asarray(list(LINES.values()))
    rest_cont = np.zeros((n, line_rest.size))
    lpos = (np.log10(line_rest)[None, :] - ins.rest_log_nm0) / _REST_STEP
    li = lpos.astype(np.intp)
    lf = lpos - li
    for k in range(len(TEMPLATES)):
        tk = ins.templates[k]
        rest_cont += w[:, k:k + 1] * (tk[li] * (1.0 - lf) + tk[li + 1] * lf)
    k_line = calzetti_k(line_rest * 10.0)
    line_flux = params.line_ew / 10.0 * rest_cont * 10.0 ** (-0.4 * (params.ebv / _GAS_TO_STARS)[:, None] * k_line)
    # redshifting keeps a line's integrated flux: f_lambda / (1 + z) spread over (1 + z) times the width
    obs_line = line_rest[None, :] * (1.0 + z)[:, None]  # (n, L)
    sigma = ins.fwhm_nm / (2.0 * np.sqrt(2.0 * np.log(2.0)))  # (S,)
    # sampled flux = continuum through the LSF + lines through the LSF
    sampled = cont @ ins.lsf
    gauss = np.exp(-0.5 * ((ins.wavelength_nm[None, None, :] - obs_line[:, :, None]) / sigma) ** 2)
    sampled += np.einsum("nl,nls->ns", line_flux, gauss / (np.sqrt(2 * np.pi) * sigma))
    # G of the noiseless spectrum (continuum on the fine grid + line fluxes at their wavelengths)
    g_pass_lines = np.interp(obs_line, fine, ins.g_weight / (fine[1] - fine[0]))
    g_flux = cont @ ins.g_weight + np.sum(line_flux * g_pass_lines, axis=1)
    scale = 10.0 ** (-0.4 * (params.g_mag - VEGA_G_MAG)) / g_flux
    flux_true = sampled * scale[:, None]
    electrons = np.clip(flux_true, 0.0, None) * ins.electrons_per_flux
    var_e = electrons + ins.sky_electrons
    error = np.sqrt(var_e) / ins.electrons_per_flux
    error = np.sqrt(error**2 + (FLOOR * np.abs(flux_true)) ** 2)
    flux = flux_true if rng is None else flux_true + error * rng.standard_normal(flux_true.shape)
    return {"flux": flux, "flux_error": error, "flux_true": flux_true,
            "snr_median": np.median(np.abs(flux_true) / error, axis=1)}


CATALOG_UNITS: Mapping[str, str] = types.MappingProxyType({
    "z": "", "g_mag": "mag(Vega)", "type_index": "", **{f"w_{t}": "" for t in TEMPLATES}, "ebv": "mag",
    **{f"ew_{name}": "Angstrom" for name in LINES}, "snr_median": "",
})
"""Unit of every column of the table of true parameters."""


def simulate_gaiaxp_galaxies(
    n: int,
    *,
    seed: int = 0,
    g_range: tuple[float, float] = G_RANGE,
    progress: bool = False,
):
    """Draw mock Gaia XP galaxy spectra on paper 004's 186 samples, chunk by chunk.

    Parameters
    ----------
    n : int
        Number of galaxies, at least 1.
    seed : int
        Seed of every draw; chunks of :data:`_BATCH` galaxies take their own child seeds, so a
        smaller ``n`` gives the first rows of a larger one.
    g_range : (float, float)
        Range of G magnitude (Vega), drawn uniformly; within 10-22.
    progress : bool
        Show a tqdm progress bar.

    Yields
    ------
    spectra : dict of arrays
        :func:`observe`'s output for one chunk.
    table : pandas.DataFrame
        True parameters of the chunk, columns :data:`CATALOG_UNITS`.

    Raises
    ------
    ValueError
        If ``n`` or ``g_range`` is out of range.

    Examples
    --------
    >>> for spectra, table in simulate_gaiaxp_galaxies(100, seed=1):  # doctest: +SKIP
    ...     spectra["flux"].shape
    (100, 186)
    """
    check_arguments(n, g_range)
    from tqdm.auto import tqdm

    ins = xp_instrument()
    seeds = np.random.SeedSequence(int(seed))
    with tqdm(total=int(n), disable=not progress, unit="galaxy", desc="gaia-xp-galaxies") as bar:
        for start in range(0, int(n), _BATCH):
            rng = np.random.default_rng(seeds.spawn(1)[0])
            m = min(_BATCH, int(n) - start)
            params = draw_parameters(m, rng, g_range)
            spectra = observe(params, rng, instrument=ins)
            yield spectra, _table(params, spectra)
            bar.update(m)


def check_arguments(n: int, g_range: tuple[float, float]) -> None:
    """Raise a one-line ValueError for a bad number of galaxies or G range."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive whole number of galaxies; got {n!r}")
    lo, hi = (float(v) for v in g_range)
    if not (np.isfinite(lo) and np.isfinite(hi) and 10.0 <= lo < hi <= 22.0):
        raise ValueError(f"G range must satisfy 10 <= G_min < G_max <= 22 mag (Gaia's BP/RP reach); got "
                         f"{lo:g} {hi:g}: give e.g. --g-range 17 21")


def _table(params: GalaxyParameters, spectra: Mapping[str, NDArray]) -> pd.DataFrame:
    cols: dict[str, NDArray] = {"z": params.z, "g_mag": params.g_mag, "type_index": params.type_index}
    w = params.weights
    cols.update({f"w_{t}": w[:, k] for k, t in enumerate(TEMPLATES)})
    cols["ebv"] = params.ebv
    cols.update({f"ew_{name}": params.line_ew[:, j] for j, name in enumerate(LINES)})
    cols["snr_median"] = spectra["snr_median"]
    return pd.DataFrame(cols)
