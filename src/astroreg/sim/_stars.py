"""Mock SDSS DR12 stellar spectra with SSPP-like labels (paper 001's data, emulated).

``simulate_sdss_stars`` writes real-format ``spec-PLATE-MJD-FIBERID.fits`` files and a
label catalogue with the SEGUE Stellar Parameter Pipeline's column names, for when no
SSPP-labelled spectra are at hand. ``docs/sdss-stars-mock.md`` describes the physics, the
distributions, the file format and the limits; in short:

Emulator (:mod:`astroreg.sim._star_lines`). The continuum is a Planck function
B_lambda(Teff) with a mild blue line-blanketing factor. Absorption lines come from
:func:`~astroreg.sim._star_lines.build_line_list` (Balmer and Paschen series, Ca II H&K and
triplet, Mg b, Na D, ~100 other real lines, 400 generated Fe I/Fe II/Ti/Cr/Ni/... lines).
For each line the integrated line-to-continuum opacity is

    Sigma = C * gf * (lambda/5000)^2 * eps_sun * 10^[X/H] * f_stage(T, Pe) * 10^(-theta chi) / U / kappa(T, Pe)

with theta = 5040 / Teff, Saha ionisation fractions ``f_stage`` over three stages, the
electron pressure ``Pe`` from a fit to model atmospheres in Teff, rising with log g
(Pe ~ g^(1/3) in cool stars, g^0.6 in hot ones) and, in cool stars, with metallicity, and
a continuous opacity ``kappa`` from H- (cool stars), hydrogen bound-free from n = 3 and
electron scattering (hot stars). Hydrogen lines thus peak near 9,000-10,000 K; neutral
metal lines weaken and ionised ones strengthen with Teff; ionised lines weaken with log g.
alpha elements (O, Mg, Si, Ca, Ti) get [alpha/Fe] = +0.4 below [Fe/H] = -1.

Each line has a Doppler core (thermal + 2 km/s microturbulence) whose equivalent width
follows the exact Gaussian curve of growth, placed on the instrumental profile (R = 2000),
and damping wings: van der Waals (Lorentzian, width ~ g^0.4) for metal lines, linear
Stark (Holtsmark-like ``|dlambda|^-5/2`` wings, width ~ n_e^(2/3)) for hydrogen. Optical
depths add; the flux is ``B (r_m + (1 - r_m) exp(-tau_metals)) (r_H + (1 - r_H)
exp(-tau_H))`` with residual core intensities r_m = 0.15 and r_H = 0.3. Molecular bands
(CH G band, CN, MgH, TiO) add opacity that decays away from each head, with hand-set
Teff, log g and metallicity slopes (:func:`~astroreg.sim._star_lines.band_opacity`).

Limits (more in the docs): one line-forming layer, LTE, emulated band shapes, generated
lines at made-up wavelengths, no rotation or telluric lines. The mock is for testing and benchmarking the pipeline, not for training models
to apply to real SDSS spectra.

Observation. Radial velocity (uniform in +-300 km/s) shifts everything by the relativistic
Doppler factor. Interstellar reddening (Gordon et al. 2023, R_V = 3.1, E(B-V) log-normal
around 0.04 mag) and a smooth flux-calibration error (3 % Legendre terms) follow. The flux is scaled to a g magnitude; the noise has
``sigma^2 = a (F + sky + 2)`` (photon noise of star and sky, read noise), ``a`` set per
spectrum so that the median S/N per pixel equals the drawn S/N (log-normal, median 25,
clipped to 5-100). ivar = 1 / sigma^2 exactly. Pixels on a few bad columns and, now and
then, on the 5579 and 6302 Angstrom sky lines get ivar 0 and a bad-pixel bit.

Labels. As SSPP measures its labels from the spectra, the adopted Teff, [Fe/H] and log g
are a fit of the emulator to each noisy spectrum (linearised at the truth, with a
6-term multiplicative continuum marginalised: :func:`spectrum_fit_information`), a
maximum a posteriori fit with a 150 K colour temperature and the survey population as
its prior (:func:`fitted_label_errors`). Their errors are the spectrum's own noise seen
through the fit where the spectrum pins a label, and a pull toward the population's
mean where it does not.

Reproducibility. Labels are drawn for the whole run from ``SeedSequence(seed,
spawn_key=(0,))``; star ``i`` then gets its own stream ``SeedSequence(seed, spawn_key=(1,
i))`` for its noise and masks, so the files do not depend on the number of processes.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.polynomial.legendre import legval, legvander
from numpy.typing import NDArray

from astroreg.sim._star_lines import C_KMS, LOGLAM_STEP, RESOLUTION, loglam_grid, synthesize

RV_RANGE = (-300.0, 300.0)
"""Radial velocities are uniform in this range, km/s."""
SNR_MEDIAN, SNR_SIGMA_DEX, SNR_RANGE = 25.0, 0.25, (5.0, 100.0)
"""S/N per pixel: log-normal with this median and sigma (dex), clipped to the range."""
TEFF_RANGE, FEH_RANGE, LOGG_RANGE = (4000.0, 9500.0), (-4.4, 0.7), (0.2, 5.0)
"""Label ranges (the paper's Table 1)."""
EBV_MEDIAN, EBV_SIGMA_DEX, EBV_RANGE = 0.04, 0.35, (0.005, 0.5)
"""Interstellar reddening E(B-V), mag: log-normal with this median and sigma (dex), clipped."""
R_V = 3.1
"""Ratio of total to selective extinction of the Gordon et al. (2023) curve applied."""
CALIBRATION_RMS = 0.03
"""Flux-calibration error: rms of each of the three Legendre terms of the smooth multiplicative distortion."""
FIT_CONTINUUM_TERMS = 6
"""Legendre terms (degree 0-5) of the multiplicative continuum the label fit marginalises over."""
FIT_STEPS = (0.005, 0.05, 0.05)
"""Finite-difference steps of the label fit's Jacobian: Teff (relative), [Fe/H] and log g (dex)."""
PHOTOMETRIC_TEFF_SIGMA = 150.0
"""1-sigma error (K) of the colour temperature an SSPP-like pipeline adds to its spectrum fit."""
POPULATION_PRIOR = {"FEH_ADOP": (-0.90, 0.77), "LOGG_ADOP": (3.84, 0.85)}
"""Mean and spread (dex) of the mock population's [Fe/H] and log g: the label fit's Gaussian prior."""
MISSING = -9999.0
"""SSPP's value of a missing label."""
MISSING_FRACTION = 0.01
"""Fraction of each adopted label set to :data:`MISSING`."""
SPECTRA_DIR, LABELS_NAME = "spectra", "sspp-labels.fits"
"""Where :func:`simulate_sdss_stars` puts the spectra and the label catalogue in ``out_dir``."""

# spPixMask bits (SDSS DR12)
FULLREJECT, PARTIALREJECT, BRIGHTSKY, COMBINEREJ = 1 << 18, 1 << 19, 1 << 23, 1 << 25

_PARAMS_KEY, _STAR_KEY = 0, 1
_FIBERS_PER_PLATE = 600
_FIRST_PLATE, _FIRST_MJD = 266, 51602

_CHUNK = 64
_READ_NOISE = 2.0  # constant noise-variance term per pixel, (1e-17 erg/s/cm^2/A)^2 per unit gain
_SKY_MAG = 20.3  # sky continuum in the fibre, as a flat-spectrum AB magnitude at 4686 A
_RNG_SKY = 20231125  # fixed: the sky spectrum is part of the emulator
# SDSS template subclasses, by lower Teff bound (K)
_SUBCLASSES = ((8000, "A0"), (6900, "F2"), (6400, "F5"), (6050, "F9"), (5900, "G0"), (5700, "G2"),
               (5450, "G5"), (5000, "K1"), (4700, "K3"), (4300, "K5"), (0, "K7"))
_BANDS = ((3000, 4000), (4000, 5500), (5500, 7000), (7000, 8500), (8500, 9300))  # ugriz, roughly
LABEL_COLUMNS = ("TEFF_ADOP", "FEH_ADOP", "LOGG_ADOP", "RV_ADOP")
"""SSPP adopted-label columns of the catalogue (each with an ``_UNC`` column)."""


# -- labels ---------------------------------------------------------------------------------
def draw_stellar_labels(n: int, rng: np.random.Generator | int = 0) -> pd.DataFrame:
    """Draw true Teff, log g, [Fe/H], RV, S/N and g magnitude of ``n`` SEGUE-like stars.

    A mixture of populations, clipped to the paper's Table 1 ranges: thin/thick-disc
    dwarfs (45 %: Teff 4000-7000 K on the main sequence, [Fe/H] ~ N(-0.4, 0.35)), halo
    turn-off and main-sequence stars (25 %: 5200-6900 K, [Fe/H] ~ N(-1.4, 0.5)), red giants
    (18 %: log g 0.2-3.6 along a metallicity-dependent giant branch at 4000-5300 K, with a
    red clump, [Fe/H] ~ N(-1.0, 0.7)) and blue horizontal-branch and A-type stars (12 %:
    7000-9500 K); 3 % of all stars get an exponential metal-poor tail below [Fe/H] = -2.5.
    Radial velocities are uniform in +-300 km/s; S/N per pixel log-normal (median 25,
    0.25 dex, clipped to 5-100); the g magnitude follows the S/N (g = 17.5 at S/N 25,
    sky-limited) with 0.3 mag of scatter (seeing, exposure time), clipped to 14-20.5;
    E(B-V) log-normal (median 0.04 mag, 0.35 dex, clipped to 0.005-0.5), as the SFD map
    gives along SEGUE's mostly high-latitude sight lines.

    Parameters
    ----------
    n : int
        Number of stars.
    rng : numpy.random.Generator or int
        Random generator or seed.

    Returns
    -------
    pandas.DataFrame
        Columns ``teff`` (K), ``logg`` (dex), ``feh`` (dex), ``rv`` (km/s), ``snr`` (median
        S/N per pixel aimed at), ``gmag`` (AB mag), ``ebv`` (E(B-V), mag) and
        ``population`` (str); n rows.

    Examples
    --------
    >>> labels = draw_stellar_labels(1000, 0)
    >>> bool(labels["teff"].between(4000, 9500).all())
    True
    """
    rng = np.random.default_rng(rng)
    pop = rng.choice(4, size=n, p=[0.45, 0.25, 0.18, 0.12])
    teff, logg, feh = np.empty(n), np.empty(n), np.empty(n)

    def ms_logg(t: NDArray) -> NDArray:
        return 4.7 - 0.35 * (np.clip(t - 4000.0, 0.0, None) / 1800.0) ** 1.5

    for k, (size, idx) in enumerate((int((pop == k).sum()), np.flatnonzero(pop == k)) for k in range(4)):
        if k == 0:  # disc dwarfs
            t = 4000.0 + 3000.0 * rng.beta(2.2, 1.6, size)
            f = rng.normal(-0.4, 0.35, size)
            g = ms_logg(t) + rng.normal(0.0, 0.12, size) - (rng.uniform(size=size) < 0.15) * rng.uniform(0, 0.8, size)
        elif k == 1:  # halo turn-off and dwarfs
            t = 5200.0 + 1700.0 * rng.beta(2.5, 1.8, size)
            f = rng.normal(-1.4, 0.5, size)
            g = (ms_logg(t) + 0.1 + rng.normal(0.0, 0.12, size)
                 - (rng.uniform(size=size) < 0.25) * rng.uniform(0, 0.9, size))
        elif k == 2:  # red giants and the red clump
            f = rng.normal(-1.0, 0.7, size)
            g = 0.2 + 3.4 * rng.beta(2.0, 1.2, size)
            t = 3950.0 + 330.0 * g - 200.0 * (f + 0.5) + rng.normal(0.0, 80.0, size)
            clump = rng.uniform(size=size) < 0.2
            g = np.where(clump, rng.uniform(2.2, 2.6, size), g)
            t = np.where(clump, rng.uniform(4600.0, 5000.0, size), t)
            f = np.where(clump, rng.normal(-0.4, 0.3, size), f)
        else:  # blue horizontal branch and A-type stars
            bhb = rng.uniform(size=size) < 0.5
            t = np.where(bhb, rng.uniform(7500.0, 9500.0, size), rng.uniform(7000.0, 9500.0, size))
            g = np.where(bhb, 3.0 + 0.4 * (t - 7500.0) / 2000.0 + rng.normal(0, 0.15, size),
                         rng.uniform(3.8, 4.4, size))
            f = np.where(bhb, rng.normal(-1.8, 0.4, size), rng.normal(-0.6, 0.6, size))
        teff[idx], logg[idx], feh[idx] = t, g, f
    tail = rng.uniform(size=n) < 0.03
    feh = np.where(tail, -2.5 - rng.exponential(0.5, n), feh)
    teff = np.clip(teff, *TEFF_RANGE)
    logg = np.clip(logg, *LOGG_RANGE)
    feh = np.clip(feh, *FEH_RANGE)
    rv = rng.uniform(*RV_RANGE, n)
    snr = np.clip(10.0 ** (math.log10(SNR_MEDIAN) + SNR_SIGMA_DEX * rng.normal(size=n)), *SNR_RANGE)
    gmag = np.clip(17.5 - 2.5 * np.log10(snr / SNR_MEDIAN) + rng.normal(0.0, 0.3, n), 14.0, 20.5)
    ebv = np.clip(10.0 ** (math.log10(EBV_MEDIAN) + EBV_SIGMA_DEX * rng.normal(size=n)), *EBV_RANGE)
    names = np.array(["disc", "halo", "giant", "bhb-a"])
    return pd.DataFrame({"teff": teff, "logg": logg, "feh": feh, "rv": rv, "snr": snr, "gmag": gmag,
                         "ebv": ebv, "population": names[pop]})


def spectral_subclass(teff: float) -> str:
    """SDSS template subclass (A0, F2, ..., K7) of a star of effective temperature ``teff`` (K)."""
    return next(name for lo, name in _SUBCLASSES if teff >= lo)


# -- observation ----------------------------------------------------------------------------
def _flam_of_mag(mag: float) -> float:
    """f_lambda at 4686 A of an AB magnitude, 1e-17 erg/s/cm^2/A."""
    return 10.0 ** (-0.4 * (mag + 48.6)) * 2.99792458e18 / 4686.0 ** 2 * 1e17


_SKY: NDArray[np.float64] | None = None


def sky_spectrum() -> NDArray[np.float64]:
    """Sky flux in an SDSS fibre on the mock pixels, 1e-17 erg/s/cm^2/A, shape (3841,).

    A continuum of AB magnitude 20.3 rising to the red, the [O I] 5578.9, 6302.0 and
    6365.5 Angstrom, Na I 5891/5897 and Hg I 4359.6/5462.3 lines, and 80 OH lines
    between 6800 and 9200 Angstrom drawn once from a fixed seed (not the real OH
    wavelengths), all at the instrumental resolution. Vacuum wavelengths.
    """
    global _SKY
    if _SKY is None:
        wave = 10.0 ** loglam_grid()
        sky = _flam_of_mag(_SKY_MAG) * (0.7 + 0.6 * (wave - 3800.0) / 5400.0)
        lines = [(5578.89, 60.0), (6302.05, 15.0), (6365.54, 5.0), (5891.58, 6.0), (5897.56, 4.0),
                 (4359.56, 5.0), (5462.27, 4.0)]
        rng = np.random.default_rng(_RNG_SKY)
        oh = np.sort(rng.uniform(6800.0, 9200.0, 80))
        lines += [(float(w), float(s)) for w, s in zip(oh, rng.lognormal(np.log(8.0), 0.8, 80) * (oh / 7000.0) ** 2)]
        cont0 = _flam_of_mag(_SKY_MAG)
        for w0, strength in lines:  # strength: line flux in units of cont0 * Angstrom
            s = w0 / (2.3548 * RESOLUTION)
            sky += strength * cont0 / (math.sqrt(2 * math.pi) * s) * np.exp(-0.5 * ((wave - w0) / s) ** 2)
        _SKY = sky
    return _SKY


def extinction_curve() -> NDArray[np.float64]:
    """A(lambda) / E(B-V) on the mock's pixels (Gordon et al. 2023, R_V = 3.1, via ``dust_extinction``)."""
    global _EXTINCTION
    if _EXTINCTION is None:
        import astropy.units as u
        from dust_extinction.parameter_averages import G23

        wave = 10.0 ** loglam_grid() * u.AA
        _EXTINCTION = np.asarray(G23(Rv=R_V)(wave), dtype=np.float64) * R_V  # A(lambda)/A(V) * R_V
    return _EXTINCTION


_EXTINCTION: NDArray[np.float64] | None = None


def observe_star(teff: float, logg: float, feh: float, rv: float, snr: float, gmag: float,
                 rng: np.random.Generator, *, resolution: float = RESOLUTION, ebv: float = 0.0,
                 calibration_rms: float = 0.0) -> dict[str, NDArray]:
    """One star's SDSS COADD columns: noiseless model, noisy flux, ivar, masks, sky, wdisp.

    Parameters
    ----------
    teff, logg, feh, rv : float
        True parameters: K, dex, dex, km/s.
    snr : float
        Median S/N per pixel to aim at (reached exactly before masking).
    gmag : float
        AB magnitude at 4686 A that sets the flux scale.
    rng : numpy.random.Generator
        The star's own random stream (noise and masks).
    resolution : float
        Instrumental resolving power.
    ebv : float
        Interstellar reddening E(B-V), mag (:func:`extinction_curve`).
    calibration_rms : float
        rms of each coefficient of a smooth multiplicative flux-calibration error,
        ``exp(sum_k c_k P_k(x))`` over Legendre polynomials P_1-P_3 of the scaled loglam
        (SDSS spectrophotometry is good to a few per cent); 0 for none. Drawn from ``rng``.

    Returns
    -------
    dict
        ``flux``, ``ivar``, ``model``, ``sky``, ``wdisp`` (float32) and ``and_mask``,
        ``or_mask`` (int32), each of shape (3841,), plus ``sigma`` (float64, the noise
        sigma used; ``ivar = 1 / sigma**2`` except on masked pixels, where ivar is 0)
        and ``intrinsic`` (float64, :func:`synthesize`'s flux before reddening,
        calibration error and flux scaling).
    """
    loglam = loglam_grid()
    wave = 10.0 ** loglam
    intrinsic, _ = synthesize(teff, logg, feh, rv, resolution=resolution, loglam=loglam)
    model = intrinsic
    if ebv > 0.0:
        model = model * 10.0 ** (-0.4 * ebv * extinction_curve())
    if calibration_rms > 0.0:
        x = np.linspace(-1.0, 1.0, loglam.size)
        model = model * np.exp(legval(x, np.concatenate([[0.0], calibration_rms * rng.standard_normal(3)])))
    g_band = (wave > 4100.0) & (wave < 5300.0)
    model = model * (_flam_of_mag(gmag) / model[g_band].mean())
    sky = sky_spectrum()
    var_unit = np.maximum(model, 0.0) + sky + _READ_NOISE
    gain = (np.median(model / np.sqrt(var_unit)) / snr) ** 2
    sigma = np.sqrt(gain * var_unit)
    flux = model + sigma * rng.standard_normal(model.size)
    ivar = 1.0 / sigma ** 2
    and_mask = np.zeros(model.size, np.int64)
    or_mask = np.zeros(model.size, np.int64)
    bright = sky > 3.0 * _flam_of_mag(_SKY_MAG) * (0.7 + 0.6 * (wave - 3800.0) / 5400.0)
    and_mask[bright] |= BRIGHTSKY
    # sky-subtraction residuals of the two brightest sky lines, now and then
    for w0, p in ((5578.89, 0.35), (6302.05, 0.2)):
        if rng.uniform() < p:
            j = int(np.argmin(np.abs(wave - w0)))
            bad = slice(j - 1, j + 2)
            flux[bad] += 0.3 * sky[bad]
            ivar[bad] = 0.0
            and_mask[bad] |= BRIGHTSKY | COMBINEREJ
    # bad CCD columns: one to a few short runs of rejected pixels
    for _ in range(1 + rng.poisson(1.0)):
        width = int(rng.integers(1, 4))
        j = int(rng.integers(2, model.size - width - 2))
        flux[j:j + width] = 0.0
        ivar[j:j + width] = 0.0
        and_mask[j:j + width] |= FULLREJECT
        or_mask[j - 2:j + width + 2] |= PARTIALREJECT
    or_mask |= and_mask
    wdisp = np.full(model.size, 1.0 / (2.3548 * resolution * math.log(10.0) * LOGLAM_STEP), np.float32)
    return {"flux": flux.astype(np.float32), "ivar": ivar.astype(np.float32), "model": model.astype(np.float32),
            "sky": sky.astype(np.float32), "wdisp": wdisp, "and_mask": and_mask.astype(np.int32),
            "or_mask": or_mask.astype(np.int32), "sigma": sigma, "intrinsic": intrinsic}


def spectrum_fit_information(obs: dict[str, NDArray], teff: float, logg: float, feh: float, rv: float, *,
                             resolution: float = RESOLUTION) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Fisher matrix and score of a chi-square fit of the emulator to one observed spectrum.

    An SSPP-like pipeline measures the labels by fitting model spectra to the observed one,
    so its error is a function of that spectrum's noise. Linearised at the true labels,
    with a multiplicative continuum of :data:`FIT_CONTINUUM_TERMS` Legendre terms fitted
    alongside (as pipelines normalise the continuum, which absorbs most of the reddening
    and the flux-calibration error), a weighted least-squares fit misses the truth by
    ``F^-1 s``, with the Fisher matrix ``F`` and the score ``s = J^T W (flux - model)`` of
    the three labels after the continuum terms are marginalised (a Schur complement).

    Parameters
    ----------
    obs : dict
        :func:`observe_star`'s output (``flux``, ``ivar``, ``model`` and ``intrinsic``,
        the spectrum at the true labels that the Jacobian is taken against).
    teff, logg, feh, rv : float
        The true labels (K, dex, dex, km/s).
    resolution : float
        Instrumental resolving power.

    Returns
    -------
    fisher : ndarray of shape (3, 3)
        In the order Teff (K), [Fe/H], log g (dex).
    score : ndarray of shape (3,)
    """
    loglam = loglam_grid()
    base = obs["intrinsic"]
    model = obs["model"].astype(np.float64)
    steps = (FIT_STEPS[0] * teff, FIT_STEPS[1], FIT_STEPS[2])
    cols = []
    for k, h in enumerate(steps):
        t, f, g = teff + h * (k == 0), feh + h * (k == 1), logg + h * (k == 2)
        shifted, _ = synthesize(t, g, f, rv, resolution=resolution, loglam=loglam)
        cols.append(model * (shifted / base - 1.0) / h)
    x = np.linspace(-1.0, 1.0, loglam.size)
    cont = model[:, None] * legvander(x, FIT_CONTINUUM_TERMS - 1)
    jac = np.column_stack([*cols, cont])
    w = obs["ivar"].astype(np.float64)
    a = jac.T @ (jac * w[:, None])
    b = jac.T @ (w * (obs["flux"].astype(np.float64) - model))
    # marginalise the continuum terms: F = A_tt - A_tc A_cc^-1 A_ct, s = b_t - A_tc A_cc^-1 b_c
    a_cc_inv_ct = np.linalg.solve(a[3:, 3:], np.column_stack([a[3:, :3], b[3:]]))
    fisher = a[:3, :3] - a[:3, 3:] @ a_cc_inv_ct[:, :3]
    score = b[:3] - a[:3, 3:] @ a_cc_inv_ct[:, 3]
    return 0.5 * (fisher + fisher.T), score


# -- files ----------------------------------------------------------------------------------
def spec_name(plate: int, mjd: int, fiber: int) -> str:
    """SDSS file name of a spectrum: ``spec-PPPP-MMMMM-FFFF.fits``."""
    return f"spec-{plate:04d}-{mjd:05d}-{fiber:04d}.fits"


@dataclass(frozen=True)
class _Settings:
    seed: int
    resolution: float
    spectra_dir: str


def star_seed(seed: int, index: int) -> np.random.SeedSequence:
    """The random stream of star ``index`` (its row in the label catalogue) in a run with ``seed``."""
    return np.random.SeedSequence(seed, spawn_key=(_STAR_KEY, int(index)))


_TEMPLATE: object = None


def _template(settings: _Settings):
    """This process's HDUList, reused for every file: building astropy tables costs more than writing them."""
    from astropy.io import fits

    global _TEMPLATE
    if _TEMPLATE is None:
        h = fits.Header()
        for key, value, comment in (
            ("TELESCOP", "SDSS 2.5-M", "Sloan Digital Sky Survey"), ("FLAVOR", "science", "Flavor of this sequence"),
            ("PLATEID", 0, "Plate Id"), ("MJD", 0, "MJD of observation"), ("FIBERID", 0, "Fiber number (1-640)"),
            ("RADEG", 0.0, "RA of the plate centre (deg)"),
            ("DECDEG", 0.0, "Dec of the plate centre (deg)"),
            ("PLUG_RA", 0.0, "RA of object [deg]"), ("PLUG_DEC", 0.0, "dec of object [deg]"),
            ("EXPTIME", 2700.0, "exposure time (s)"),
            ("HELIO_RV", 0.0, "heliocentric correction (km/s)"),
            ("VACUUM", True, "Wavelengths are in vacuum"), ("NWORDER", 2, "Linear-log10 coefficients"),
            ("WFITTYPE", "LOG-LINEAR", "Linear-log10 dispersion"),
            ("COEFF0", float(loglam_grid()[0]), "loglam of the first pixel"),
            ("COEFF1", LOGLAM_STEP, "Log10 dispersion per pixel"),
            ("BUNIT", "1E-17 erg/cm^2/s/Ang", ""),
            ("ORIGIN", "astroreg simulate sdss-stars", "mock, not an SDSS spectrum"),
            ("MOCK", True, "emulated (docs/sdss-stars-mock.md)"),
            ("SIMSEED", 0, "astroreg simulation seed"), ("STARIDX", 0, "row in the label catalogue"),
            ("RESOLUT", 0.0, "resolving power of the mock"),
        ):
            h[key] = (value, comment)
        coadd = np.zeros(loglam_grid().size, _COADD_DTYPE)
        _TEMPLATE = fits.HDUList([fits.PrimaryHDU(header=h), fits.BinTableHDU(coadd, name="COADD"),
                                  fits.BinTableHDU(np.zeros(1, _SPECOBJ_DTYPE), name="SPECOBJ")])
        _TEMPLATE[1].header["COMMENT"] = "Coadded spectrum"
    return _TEMPLATE


_SPECOBJ_DTYPE = np.dtype([
    ("SURVEY", "S6"), ("INSTRUMENT", "S4"), ("PROGRAMNAME", "S23"), ("PLATEQUALITY", "S8"),
    ("SPECPRIMARY", "u1"), ("SPECOBJID", "S22"), ("RUN2D", "S3"), ("PLATE", ">i4"), ("MJD", ">i4"),
    ("FIBERID", ">i4"), ("PLUG_RA", ">f8"), ("PLUG_DEC", ">f8"), ("CLASS", "S6"), ("SUBCLASS", "S21"),
    ("Z", ">f4"), ("Z_ERR", ">f4"), ("ZWARNING", ">i4"), ("WAVEMIN", ">f4"), ("WAVEMAX", ">f4"),
    ("SN_MEDIAN_ALL", ">f4"), ("SN_MEDIAN", ">f4", (5,)), ("ANYANDMASK", ">i4"), ("ANYORMASK", ">i4"),
])
_COADD_DTYPE = np.dtype([("flux", ">f4"), ("loglam", ">f4"), ("ivar", ">f4"), ("and_mask", ">i4"),
                         ("or_mask", ">i4"), ("wdisp", ">f4"), ("sky", ">f4"), ("model", ">f4")])


def _write_star(star: dict, settings: _Settings) -> dict:
    """Observe one star and write its spec file; returns what goes into the label catalogue."""
    from astroreg.data import atomic_path

    rng = np.random.default_rng(star_seed(settings.seed, star["index"]))
    obs = observe_star(star["teff"], star["logg"], star["feh"], star["rv"], star["snr"], star["gmag"], rng,
                       resolution=settings.resolution, ebv=star["ebv"], calibration_rms=CALIBRATION_RMS)
    loglam = loglam_grid()
    hdul = _template(settings)
    coadd = hdul[1].data
    for name in _COADD_DTYPE.names:
        coadd.field(name)[:] = loglam if name == "loglam" else obs[name]
    good = obs["ivar"] > 0
    sn = obs["flux"] * np.sqrt(obs["ivar"])
    sn_all = float(np.median(sn[good]))
    wave = 10.0 ** loglam
    sn_bands = [float(np.median(sn[good & (wave >= lo) & (wave < hi)])) if np.any(good & (wave >= lo) & (wave < hi))
                else 0.0 for lo, hi in _BANDS]
    beta = star["rv"] / C_KMS
    z = math.sqrt((1.0 + beta) / (1.0 - beta)) - 1.0
    z_err = (2.0 + 60.0 / max(sn_all, 1.0)) / C_KMS
    row = np.zeros(1, _SPECOBJ_DTYPE)[0]
    row["SURVEY"], row["INSTRUMENT"], row["PROGRAMNAME"], row["PLATEQUALITY"] = b"segue1", b"SDSS", b"segue", b"good"
    row["SPECPRIMARY"], row["RUN2D"] = 1, b"26"
    row["SPECOBJID"] = str((star["plate"] << 50) + (star["fiber"] << 38) + ((star["mjd"] - 50000) << 24)).encode()
    row["PLATE"], row["MJD"], row["FIBERID"] = star["plate"], star["mjd"], star["fiber"]
    row["PLUG_RA"], row["PLUG_DEC"] = star["ra"], star["dec"]
    row["CLASS"], row["SUBCLASS"] = b"STAR", spectral_subclass(star["teff"]).encode()
    row["Z"], row["Z_ERR"], row["ZWARNING"] = z, z_err, 0
    row["WAVEMIN"], row["WAVEMAX"] = wave[0], wave[-1]
    row["SN_MEDIAN_ALL"], row["SN_MEDIAN"] = sn_all, sn_bands
    row["ANYANDMASK"] = int(np.bitwise_or.reduce(obs["and_mask"]))
    row["ANYORMASK"] = int(np.bitwise_or.reduce(obs["or_mask"]))
    spec = hdul[2].data
    for col in _SPECOBJ_DTYPE.names:
        spec.field(col)[0] = row[col]
    h = hdul[0].header
    h["PLATEID"], h["MJD"], h["FIBERID"] = star["plate"], star["mjd"], star["fiber"]
    h["RADEG"], h["DECDEG"] = star["ra0"], star["dec0"]
    h["PLUG_RA"], h["PLUG_DEC"] = star["ra"], star["dec"]
    h["SIMSEED"], h["STARIDX"], h["RESOLUT"] = settings.seed, star["index"], settings.resolution
    name = spec_name(star["plate"], star["mjd"], star["fiber"])
    with atomic_path(Path(settings.spectra_dir) / name) as tmp:
        hdul.writeto(tmp, overwrite=True)
    fisher, score = spectrum_fit_information(obs, star["teff"], star["logg"], star["feh"], star["rv"],
                                             resolution=settings.resolution)
    return {"SN_MEDIAN_ALL": sn_all, "Z": z, "fisher": fisher, "score": score}


def _write_batch(stars: Sequence[dict], settings: _Settings) -> list[dict]:
    return [_write_star(s, settings) for s in stars]


# -- the survey -----------------------------------------------------------------------------
@dataclass(frozen=True)
class StarSurvey:
    """What :func:`simulate_sdss_stars` wrote.

    Attributes
    ----------
    out_dir : Path
        The run's folder.
    spectra_dir : Path
        Folder with the ``spec-PPPP-MMMMM-FFFF.fits`` files.
    labels_path : Path
        The label catalogue (FITS binary table, SSPP column names).
    labels : pandas.DataFrame
        The catalogue's contents, one row per spectrum.
    """

    out_dir: Path
    spectra_dir: Path
    labels_path: Path
    labels: pd.DataFrame

    @property
    def n_spectra(self) -> int:
        """Number of spectra written."""
        return len(self.labels)

    def ingest_command(self, dataset: str = "data/sdss-stars.h5") -> str:
        """The ``astroreg ingest sdss-spectra`` command that turns this survey into a dataset."""
        return f"astroreg ingest sdss-spectra --spectra {self.spectra_dir} --catalog {self.labels_path} --out {dataset}"


_FIT_COLUMNS = ("TEFF_ADOP", "FEH_ADOP", "LOGG_ADOP")  # the order of spectrum_fit_information's labels
_LABEL_LIMITS = {"TEFF_ADOP": (3500.0, 10500.0), "FEH_ADOP": (-5.0, 1.0), "LOGG_ADOP": (0.0, 5.5)}
"""Edges of an SSPP-like pipeline's model grid: fitted labels are clipped to them."""


def fitted_label_errors(fisher: NDArray, score: NDArray, truth: NDArray,
                        teff_photometric: NDArray) -> tuple[NDArray, NDArray]:
    """Errors and 1-sigma uncertainties of labels fitted to the spectra (a linearised MAP fit).

    Each star's labels are the maximum a posteriori fit of the emulator to its spectrum
    (Fisher matrix ``F`` and score ``s`` from :func:`spectrum_fit_information`) under a
    Gaussian prior ``N(mu, L^-1)``: a colour temperature of error
    :data:`PHOTOMETRIC_TEFF_SIGMA` for Teff, and the survey population
    (:data:`POPULATION_PRIOR`) for [Fe/H] and log g. Linearised at the truth ``t`` the
    fit misses it by ``(F + L)^-1 (s + L (mu - t))``, with uncertainty ``sqrt(diag((F +
    L)^-1))``. Where the spectrum pins a label, the error is the spectrum's own noise seen
    through the fit; where it does not, the label is drawn toward the population's mean.
    Either way it is a function of the spectrum (and the colour), as SSPP's labels are.

    Parameters
    ----------
    fisher : array of shape (n, 3, 3)
    score : array of shape (n, 3)
    truth : array of shape (n, 3)
        True Teff (K), [Fe/H] and log g (dex).
    teff_photometric : array of shape (n,)
        The colour temperatures, K (the truth plus an error drawn by the caller).

    Returns
    -------
    error, sigma : arrays of shape (n, 3)
        In the order Teff (K), [Fe/H], log g (dex).
    """
    (mu_feh, sd_feh), (mu_logg, sd_logg) = (POPULATION_PRIOR[c] for c in _FIT_COLUMNS[1:])
    prior = np.diag([PHOTOMETRIC_TEFF_SIGMA ** -2.0, sd_feh ** -2.0, sd_logg ** -2.0])
    mean = np.column_stack([teff_photometric, np.full(len(truth), mu_feh), np.full(len(truth), mu_logg)])
    post = fisher + prior[None]
    error = np.linalg.solve(post, (score + (mean - truth) @ prior)[..., None])[..., 0]
    sigma = np.sqrt(np.diagonal(np.linalg.inv(post), axis1=1, axis2=2))
    return error, sigma


def _rv_errors(snr: NDArray) -> NDArray:
    """1-sigma random errors of the adopted radial velocity, km/s (SSPP's cross-correlation)."""
    return 1.0 + 50.0 / np.maximum(snr, 1.0)


def _catalogue(labels: pd.DataFrame, results: list[dict], rng: np.random.Generator, label_noise: float,
               missing_fraction: float) -> pd.DataFrame:
    n = len(labels)
    sn_all = np.array([r["SN_MEDIAN_ALL"] for r in results])
    cat = {"PLATE": labels["plate"].to_numpy(np.int32), "MJD": labels["mjd"].to_numpy(np.int32),
           "FIBERID": labels["fiber"].to_numpy(np.int32)}
    truth = {"TEFF_ADOP": "teff", "FEH_ADOP": "feh", "LOGG_ADOP": "logg", "RV_ADOP": "rv"}
    true3 = labels[["teff", "feh", "logg"]].to_numpy(np.float64)
    teff_phot = true3[:, 0] + PHOTOMETRIC_TEFF_SIGMA * rng.standard_normal(n)
    fit_error, fit_sigma = fitted_label_errors(np.stack([r["fisher"] for r in results]),
                                               np.stack([r["score"] for r in results]), true3, teff_phot)
    rv_sigma = _rv_errors(sn_all)
    errors = {c: label_noise * fit_error[:, k] for k, c in enumerate(_FIT_COLUMNS)}
    errors["RV_ADOP"] = label_noise * rv_sigma * rng.standard_normal(n)
    sigmas = {c: label_noise * fit_sigma[:, k] for k, c in enumerate(_FIT_COLUMNS)} | {"RV_ADOP": label_noise * rv_sigma}
    missing = rng.uniform(size=(len(truth), n)) < missing_fraction
    for k, (col, true) in enumerate(truth.items()):
        value = labels[true].to_numpy() + errors[col]
        if col in _LABEL_LIMITS:
            value = np.clip(value, *_LABEL_LIMITS[col])
        cat[col] = np.where(missing[k], MISSING, value).astype(np.float32)
        cat[col + "_UNC"] = np.where(missing[k], MISSING, sigmas[col]).astype(np.float32)
    cat["SNR"] = sn_all.astype(np.float32)
    cat["SPECTYPE"] = np.array([spectral_subclass(t) for t in labels["teff"]])
    for col, true in truth.items():
        cat[col.replace("_ADOP", "_TRUE")] = labels[true].to_numpy(np.float64)
    cat["SNR_TARGET"] = labels["snr"].to_numpy(np.float64)
    cat["GMAG"] = labels["gmag"].to_numpy(np.float64)
    cat["EBV"] = labels["ebv"].to_numpy(np.float32)  # SSPP's column of SFD reddening
    cat["POPULATION"] = labels["population"].to_numpy(str)
    return pd.DataFrame(cat)


def _write_catalogue(cat: pd.DataFrame, path: Path) -> None:
    from astropy.table import Table

    from astroreg.data import atomic_path

    table = Table.from_pandas(cat)
    units = {"TEFF": "K", "RV": "km/s"}  # astropy cannot write "dex" to FITS: [Fe/H] and log g stay unitless
    for col in table.colnames:
        unit = units.get(col.split("_")[0])
        if unit and col.split("_")[-1] in ("ADOP", "UNC", "TRUE"):
            table[col].unit = unit
    table.meta["ORIGIN"] = "astroreg simulate sdss-stars"
    table.meta["MISSING"] = MISSING
    with atomic_path(path) as tmp:
        table.write(tmp, format="fits", overwrite=True)


def simulate_sdss_stars(
    n: int,
    out_dir: str | os.PathLike,
    *,
    seed: int = 0,
    n_jobs: int | None = None,
    label_noise: float = 1.0,
    missing_fraction: float = MISSING_FRACTION,
    resolution: float = RESOLUTION,
    chunk_size: int = 512,
    progress: bool = True,
) -> StarSurvey:
    """Write a mock SDSS DR12 stellar survey: ``spec-*.fits`` files plus SSPP-like labels.

    Parameters
    ----------
    n : int
        Number of stars (spectra).
    out_dir : path-like
        Run folder: the spectra go to ``out_dir/spectra/spec-PPPP-MMMMM-FFFF.fits`` (600
        fibres per plate, plates from 0266, MJD 51602 + 3 per plate) and the labels to
        ``out_dir/sspp-labels.fits``. Existing files of the same names are replaced.
    seed : int
        Seed (>= 0) of the labels and of every star's noise and masks. The same seed gives
        identical files whatever ``n_jobs`` and ``chunk_size``.
    n_jobs : int, optional
        Worker processes; default all available cores.
    label_noise : float
        Scale of the adopted labels' (``*_ADOP``) errors against the truth. 1: SSPP-like
        labels, a maximum a posteriori fit of the emulator to each noisy spectrum
        (:func:`fitted_label_errors`; MAE about 31 K, 0.08 and 0.12 dex against the
        truth) and RV errors of 1 + 50 / (S/N) km/s; 0: the adopted labels are the
        true ones. The true values are in ``*_TRUE``.
    missing_fraction : float
        Fraction of each adopted label (and its error) set to -9999, as SSPP marks failures.
    resolution : float
        Instrumental resolving power lambda / FWHM.
    chunk_size : int
        Stars handed out per round (memory stays a few chunks of labels).
    progress : bool
        Show a tqdm progress bar.

    Returns
    -------
    StarSurvey
        Paths and the label catalogue (columns ``PLATE``, ``MJD``, ``FIBERID``,
        ``TEFF_ADOP``, ``FEH_ADOP``, ``LOGG_ADOP``, ``RV_ADOP`` and their ``_UNC``, ``SNR``
        (measured median S/N per pixel), ``SPECTYPE``, ``TEFF_TRUE``, ``FEH_TRUE``,
        ``LOGG_TRUE``, ``RV_TRUE``, ``SNR_TARGET``, ``GMAG``, ``EBV``, ``POPULATION``).

    Raises
    ------
    ValueError
        For a non-positive ``n``, a negative seed, or an invalid option.

    Examples
    --------
    >>> survey = simulate_sdss_stars(1000, "data/sdss-stars-mock", seed=1, n_jobs=2)  # doctest: +SKIP
    >>> print(survey.ingest_command())  # doctest: +SKIP
    astroreg ingest sdss-spectra --spectra data/sdss-stars-mock/spectra --catalog ...
    """
    from tqdm.auto import tqdm

    from astroreg.data._parallel import make_pool, map_chunks

    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive integer number of stars, got {n!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if n_jobs is None:
        n_jobs = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, (int, np.integer)) or n_jobs < 1:
        raise ValueError(f"n_jobs must be a positive integer (or None for all cores), got {n_jobs!r}")
    if not label_noise >= 0:
        raise ValueError(f"label_noise must be >= 0 (0: adopted labels = true labels), got {label_noise!r}")
    if not 0 <= missing_fraction < 1:
        raise ValueError(f"missing_fraction must be in [0, 1), got {missing_fraction!r}")
    if not 100 <= resolution <= 1e6:
        raise ValueError(f"resolution must be a resolving power lambda/FWHM in [100, 1e6], got {resolution!r}")
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"out_dir {out} exists and is not a folder; give a folder path")
    spectra_dir = out / SPECTRA_DIR
    spectra_dir.mkdir(parents=True, exist_ok=True)

    params = np.random.SeedSequence(seed, spawn_key=(_PARAMS_KEY,))
    label_rng, plate_rng, cat_rng = (np.random.default_rng(s) for s in params.spawn(3))
    labels = draw_stellar_labels(int(n), label_rng)
    index = np.arange(n)
    plate_no = index // _FIBERS_PER_PLATE
    n_plates = int(plate_no[-1]) + 1
    ra0 = plate_rng.uniform(0.0, 360.0, n_plates)
    dec0 = np.degrees(np.arcsin(plate_rng.uniform(-0.3, 0.95, n_plates)))
    r = 1.49 * np.sqrt(plate_rng.uniform(size=n))
    phi = plate_rng.uniform(0.0, 2 * np.pi, n)
    labels["plate"] = _FIRST_PLATE + plate_no
    labels["mjd"] = _FIRST_MJD + 3 * plate_no
    labels["fiber"] = index % _FIBERS_PER_PLATE + 1
    labels["ra0"], labels["dec0"] = ra0[plate_no], dec0[plate_no]
    labels["dec"] = np.clip(labels["dec0"] + r * np.sin(phi), -90.0, 90.0)
    labels["ra"] = (labels["ra0"] + r * np.cos(phi) / np.cos(np.radians(labels["dec0"]))) % 360.0
    labels["index"] = index
    records = labels.to_dict("records")
    for rec in records:
        for key in ("plate", "mjd", "fiber", "index"):
            rec[key] = int(rec[key])

    settings = _Settings(seed=int(seed), resolution=float(resolution), spectra_dir=str(spectra_dir))
    workers = int(min(n_jobs, max(1, n // 16)))
    pool = make_pool("processes", workers, name="astroreg-sim")
    results: list[dict] = []
    try:
        with tqdm(total=n, disable=not progress, unit="spectrum", desc="sdss-stars") as bar:
            for chunk, out_rows in map_chunks(_write_batch, records, (settings,), int(chunk_size), pool, workers):
                results += out_rows
                bar.update(len(chunk))
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
    cat = _catalogue(labels, results, cat_rng, float(label_noise), float(missing_fraction))
    labels_path = out / LABELS_NAME
    _write_catalogue(cat, labels_path)
    return StarSurvey(out_dir=out, spectra_dir=spectra_dir, labels_path=labels_path, labels=cat)
