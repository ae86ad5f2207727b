"""HSC-like images of bulge + disk galaxies drawn with GalSim (seed paper 002).

Each galaxy is the sum of two sheared Sersic profiles (disk and bulge), convolved
with a Moffat PSF (beta = 3, FWHM drawn per stamp uniformly in 0.6-0.7 arcsec),
drawn on a 143 x 143 grid of 0.168 arcsec pixels (Hyper Suprime-Cam), in ADU, with
the galaxy at the stamp centre. Noise is ``galsim.CCDNoise``: Poisson noise of the
galaxy and of a sky level that has been subtracted, with a gain in e-/ADU.

Speed. Most of GalSim's time per stamp goes into setting up each new Sersic index
(a Hankel-transform table). astroreg rounds the index used for drawing to a grid of
``sersic_step`` (0.025: 17 disk and 61 bulge values for the paper's ranges), so the
tables are built once per process and then reused; the catalogue keeps the drawn,
unrounded index. On 300 of the paper's galaxies the rounding changes noiseless image
sums by at most 0.085 % (median 0.004 %; 0.05 steps: at most 0.13 %). With looser
``GSParams`` as well (:data:`FAST_GSPARAMS`, mainly ``folding_threshold`` 0.01 instead
of 0.005) stamps draw about 6x faster than with GalSim's defaults; image sums then
differ from exact-index, default-accuracy ones by a median of 0.01 % and at most
0.17 %, and pixels by at most 0.08 of the noise sigma. GalSim's default folding
threshold would keep sums within 0.05 % but is 1.8x slower. ``docs/benchmarks.md``
has the timings. ``sersic_step=None, fast=False`` draws with GalSim's defaults.

Reproducibility. Galaxy ``i`` of a run (row ``i`` of the catalogue) gets its own
random stream, ``numpy.random.SeedSequence(seed, spawn_key=(1, i))``, for its PSF
FWHM and its noise, so the images do not depend on the number of processes or on
how rows are chunked.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import galsim
import numpy as np
import pandas as pd
from numpy.typing import NDArray

from astroreg.data import read_catalog
from astroreg.data._parallel import process_pool, run_task
from astroreg.sim._galaxy_defaults import GAIN, SKY_LEVEL, STAMP_SIZE
from astroreg.sim._galaxy_catalog import (
    PAPER_COLUMNS,
    REQUIRED_COLUMNS,
    SERSIC_INDEX_LIMITS,
    complete_catalog,
    draw_parameters,
)

PIXEL_SCALE = 0.168
"""Hyper Suprime-Cam pixel scale, arcsec / pixel."""
PSF_BETA = 3.0
PSF_FWHM_RANGE = (0.6, 0.7)
"""Moffat FWHM is drawn uniformly in this range per stamp, arcsec (HSC i-band seeing)."""
READ_NOISE = 0.0
SERSIC_STEP = 0.025
"""Sersic indices are rounded to multiples of this for drawing (the catalogue keeps them)."""
FAST_GSPARAMS = galsim.GSParams(folding_threshold=1e-2, maxk_threshold=3e-3, kvalue_accuracy=1e-4)
"""GalSim accuracy settings of astroreg's fast mode (GalSim's defaults: 5e-3, 1e-3, 1e-5).

The folding threshold sets the FFT size and most of the speed; the other two change
image sums by less than 1e-5 here.
"""
CATALOG_NAME = "gal_morph.csv"
"""File name of the catalogue written beside the FITS stamps."""
EXTRA_COLUMNS: tuple[str, ...] = ("psf_fwhm", "sky_sigma")
"""Per-stamp observing conditions added after the paper's columns."""

# Keys of the SeedSequence spawn tree: parameters and per-galaxy streams never overlap.
_PARAMS_KEY = 0
_GALAXY_KEY = 1
_CHUNK = 16


@dataclass(frozen=True)
class _Settings:
    """Everything a worker needs besides the rows; sent once per chunk."""

    stamp_size: int
    pixel_scale: float
    psf_beta: float
    psf_fwhm_range: tuple[float, float]
    gain: float
    sky_level: float
    read_noise: float
    noiseless: bool
    sersic_step: float | None
    fast: bool
    seed: int

    @property
    def sky_sigma(self) -> float:
        """Sky noise per pixel, ADU (0 without noise)."""
        if self.noiseless:
            return 0.0
        return float(np.sqrt(self.sky_level / self.gain + (self.read_noise / self.gain) ** 2))


# Unit-radius, unit-flux Sersic profiles of this process, by (rounded index, fast). Each
# keeps its GalSim tables alive, so any number of grid indices is reused (GalSim's own
# table cache holds only 100).
_UNIT_PROFILES: dict[tuple[float, bool], galsim.Sersic] = {}


def _unit_sersic(n: float, fast: bool) -> galsim.Sersic:
    key = (n, fast)
    profile = _UNIT_PROFILES.get(key)
    if profile is None:
        profile = galsim.Sersic(n, half_light_radius=1.0, flux=1.0, gsparams=FAST_GSPARAMS if fast else None)
        _UNIT_PROFILES[key] = profile
    return profile


def _sersic_index(n: float, step: float | None) -> float:
    if step is None:
        return float(n)
    # round() of the quotient, then a decimal round, so 4.25 stays exactly 4.25 and
    # equal indices map to one cache entry; the clip keeps a coarse grid inside GalSim's range.
    lo, hi = SERSIC_INDEX_LIMITS
    return min(max(round(round(n / step) * step, 10), lo), hi)


def render_galaxy(
    row: Mapping[str, Any],
    *,
    stamp_size: int = STAMP_SIZE,
    pixel_scale: float = PIXEL_SCALE,
    psf_fwhm: float = 0.65,
    psf_beta: float = PSF_BETA,
    gain: float = GAIN,
    sky_level: float = SKY_LEVEL,
    read_noise: float = READ_NOISE,
    noiseless: bool = False,
    seed: int | None = None,
    sersic_step: float | None = SERSIC_STEP,
    fast: bool = True,
) -> NDArray[np.float32]:
    """Draw one bulge + disk galaxy stamp.

    Parameters
    ----------
    row : mapping
        Galaxy parameters with the keys of ``REQUIRED_COLUMNS``: ``sersic_idx_d``,
        ``R_e_d`` (arcsec), ``axis_ratio_d``, ``PA_d`` (degrees, counter-clockwise from
        the image x axis), the same with ``_b`` for the bulge, ``flux_frac_b`` (the
        disk gets ``1 - flux_frac_b``) and ``total_flux`` (ADU). A pandas row works.
    stamp_size : int
        Stamp side, pixels.
    pixel_scale : float
        Arcsec / pixel.
    psf_fwhm, psf_beta : float
        Moffat PSF FWHM (arcsec) and beta.
    gain : float
        e-/ADU, for the Poisson noise.
    sky_level : float
        Sky already subtracted from the image, ADU / pixel; its Poisson noise is added.
    read_noise : float
        Read noise, e- / pixel.
    noiseless : bool
        Return the noise-free image (then ``seed`` is not used).
    seed : int, optional
        Seed of the noise (GalSim ``BaseDeviate``, > 0). ``None``: seeded from the clock.
    sersic_step : float or None
        Round the Sersic indices to multiples of this before drawing, so GalSim's
        profile tables are reused; ``None`` draws the exact indices.
    fast : bool
        Draw with :data:`FAST_GSPARAMS`; ``False`` uses GalSim's default accuracy.

    Returns
    -------
    numpy.ndarray
        Shape (stamp_size, stamp_size), float32, ADU. Without noise its sum is the
        total flux minus what falls outside the stamp (the median over the paper's
        galaxies is 1.6 % for 143 x 143 stamps, from the wide de Vaucouleurs wings).

    Examples
    --------
    >>> from astroreg.sim import draw_parameters, render_galaxy
    >>> row = draw_parameters(1, rng=0).iloc[0]
    >>> render_galaxy(row, noiseless=True).shape
    (143, 143)
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in row]
    if missing:
        raise ValueError(
            f"row lacks {', '.join(missing)}; render_galaxy needs {', '.join(REQUIRED_COLUMNS)}"
        )
    if seed is not None and int(seed) <= 0:
        raise ValueError(f"seed must be a positive integer (GalSim treats 0 as 'from the clock'), got {seed}")
    _check_settings(stamp_size, pixel_scale, (psf_fwhm, psf_fwhm), psf_beta, gain, sky_level, read_noise,
                    sersic_step)
    return _draw(row, stamp_size=int(stamp_size), pixel_scale=float(pixel_scale), psf_fwhm=float(psf_fwhm),
                 psf_beta=float(psf_beta), gain=float(gain), sky_level=float(sky_level),
                 read_noise=float(read_noise), noiseless=noiseless, seed=seed, sersic_step=sersic_step,
                 fast=fast)


def _draw(row, *, stamp_size, pixel_scale, psf_fwhm, psf_beta, gain, sky_level, read_noise, noiseless,
          seed, sersic_step, fast) -> NDArray[np.float32]:
    gsparams = FAST_GSPARAMS if fast else None
    total = float(row["total_flux"])
    frac_b = float(row["flux_frac_b"])
    parts = []
    for suffix, frac in (("d", 1.0 - frac_b), ("b", frac_b)):
        if frac <= 0.0:
            continue
        n = float(row[f"sersic_idx_{suffix}"])
        r_e = float(row[f"R_e_{suffix}"])
        if sersic_step is None:
            profile = galsim.Sersic(n, half_light_radius=r_e, flux=frac * total, gsparams=gsparams)
        else:
            profile = _unit_sersic(_sersic_index(n, sersic_step), fast).dilate(r_e).withFlux(frac * total)
        parts.append(profile.shear(q=float(row[f"axis_ratio_{suffix}"]),
                                   beta=float(row[f"PA_{suffix}"]) * galsim.degrees))
    galaxy = parts[0] if len(parts) == 1 else galsim.Add(parts)
    psf = galsim.Moffat(beta=psf_beta, fwhm=psf_fwhm, gsparams=gsparams)
    image = galsim.ImageF(stamp_size, stamp_size, scale=pixel_scale)
    galsim.Convolve(galaxy, psf, gsparams=gsparams).drawImage(image=image)
    if not noiseless:
        rng = galsim.BaseDeviate(seed)
        image.addNoise(galsim.CCDNoise(rng, gain=gain, sky_level=sky_level, read_noise=read_noise))
    return image.array


def _check_settings(stamp_size, pixel_scale, psf_fwhm_range, psf_beta, gain, sky_level, read_noise,
                    sersic_step) -> None:
    if isinstance(stamp_size, bool) or not isinstance(stamp_size, (int, np.integer)) or stamp_size < 8:
        raise ValueError(f"stamp_size must be an integer >= 8 pixels, got {stamp_size!r}")
    if not pixel_scale > 0:
        raise ValueError(f"pixel_scale must be > 0 arcsec/pixel, got {pixel_scale!r}")
    lo, hi = psf_fwhm_range
    if not 0 < lo <= hi:
        raise ValueError(f"PSF FWHM range must satisfy 0 < low <= high arcsec, got ({lo!r}, {hi!r})")
    if not psf_beta > 1.1:
        raise ValueError(f"psf_beta must be > 1.1 (untruncated Moffat), got {psf_beta!r}")
    if not gain > 0:
        raise ValueError(f"gain must be > 0 e-/ADU, got {gain!r}")
    if not sky_level >= 0 or not read_noise >= 0:
        raise ValueError(f"sky_level (ADU/pixel) and read_noise (e-) must be >= 0, got {sky_level!r}, {read_noise!r}")
    if sersic_step is not None and not 0 < sersic_step <= 0.5:
        raise ValueError(f"sersic_step must be in (0, 0.5] or None for exact indices, got {sersic_step!r}")


def galaxy_seed(seed: int, index: int) -> np.random.SeedSequence:
    """The random stream of galaxy ``index`` (row position) in a run with ``seed``."""
    return np.random.SeedSequence(seed, spawn_key=(_GALAXY_KEY, int(index)))


def _render_chunk(settings: _Settings, start: int, rows: list[dict[str, Any]]
                  ) -> tuple[int, NDArray[np.float32], NDArray[np.float64], NDArray[np.int64]]:
    """Render rows ``start, start+1, ...``; returns images (m, S, S), PSF FWHMs and noise seeds."""
    s = settings
    images = np.empty((len(rows), s.stamp_size, s.stamp_size), dtype=np.float32)
    fwhms = np.empty(len(rows))
    seeds = np.empty(len(rows), dtype=np.int64)
    for k, row in enumerate(rows):
        rng = np.random.default_rng(galaxy_seed(s.seed, start + k))
        # Both are drawn even when the row fixes the FWHM, to keep the stream aligned.
        fwhm = float(rng.uniform(*s.psf_fwhm_range))
        seeds[k] = int(rng.integers(1, 2**31 - 1))
        given = row.get("psf_fwhm")
        if given is not None and np.isfinite(given):
            fwhm = float(given)
        fwhms[k] = fwhm
        images[k] = _draw(row, stamp_size=s.stamp_size, pixel_scale=s.pixel_scale, psf_fwhm=fwhm,
                          psf_beta=s.psf_beta, gain=s.gain, sky_level=s.sky_level, read_noise=s.read_noise,
                          noiseless=s.noiseless, seed=int(seeds[k]), sersic_step=s.sersic_step, fast=s.fast)
    return start, images, fwhms, seeds


def _in_order(settings: _Settings, catalog: pd.DataFrame, n_jobs: int, chunk_size: int
              ) -> Iterator[tuple[int, NDArray[np.float32], NDArray[np.float64], NDArray[np.int64]]]:
    """Render the catalogue in chunks over ``n_jobs`` processes, yielding chunks in row order.

    At most ``2 * n_jobs`` chunks are in flight, so memory stays bounded by a few
    chunks of images however large the run.
    """
    cols = list(REQUIRED_COLUMNS) + (["psf_fwhm"] if "psf_fwhm" in catalog else [])
    records = catalog[cols].to_dict("records")
    tasks = ((start, records[start:start + chunk_size]) for start in range(0, len(records), chunk_size))
    if n_jobs == 1:
        for start, rows in tasks:
            yield _render_chunk(settings, start, rows)
        return
    executor = process_pool(n_jobs)  # its workers die with this process
    pending: deque[Future] = deque()
    try:
        for start, rows in tasks:
            pending.append(executor.submit(run_task, _render_chunk, settings, start, rows))
            if len(pending) >= 2 * n_jobs:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        executor.shutdown(wait=True, cancel_futures=True)


def _default_jobs() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def simulate_galaxy_images(
    n: int | None = None,
    *,
    out_dir: str | os.PathLike | None = None,
    dataset: str | os.PathLike | None = None,
    catalog: str | os.PathLike | pd.DataFrame | None = None,
    seed: int = 0,
    stamp_size: int = STAMP_SIZE,
    pixel_scale: float = PIXEL_SCALE,
    psf_beta: float = PSF_BETA,
    psf_fwhm_range: tuple[float, float] = PSF_FWHM_RANGE,
    gain: float = GAIN,
    sky_level: float = SKY_LEVEL,
    read_noise: float = READ_NOISE,
    noiseless: bool = False,
    sersic_step: float | None = SERSIC_STEP,
    fast: bool = True,
    n_jobs: int | None = None,
    chunk_size: int = _CHUNK,
    progress: bool = True,
) -> pd.DataFrame:
    """Simulate an HSC-like survey of bulge + disk galaxies (seed paper 002).

    Parameters
    ----------
    n : int, optional
        Number of galaxies. Without ``catalog`` it is required and the parameters
        are drawn with :func:`draw_parameters`; with ``catalog`` it keeps the first
        ``n`` rows (default: all).
    out_dir : path-like, optional
        Folder for one FITS stamp per galaxy (``<img_number>.fits``, float32 image in
        the primary HDU, header with PIXSCALE, BUNIT, PSFFWHM, SEED, ...) and the
        catalogue ``gal_morph.csv``. Exactly one of ``out_dir`` and ``dataset``.
    dataset : path-like, optional
        An astroreg HDF5 dataset (``.h5``) to write instead: images (n, 1, S, S) in
        band ``i``; targets ``total_flux`` (ADU) and ``log_total_flux`` (dex);
        the other catalogue columns but ``file_name`` as tabular (the layout that
        ``astroreg ingest images`` makes of the FITS folder); ids are the file stems. Written in chunks; the file appears only when complete.
    catalog : path-like or pandas.DataFrame, optional
        Galaxy parameters to render instead of drawing them, e.g. the paper's
        ``gal_morph_test.csv`` (CSV, FITS table or Parquet, read with
        :func:`astroreg.data.read_catalog`). Needs the columns of
        ``REQUIRED_COLUMNS``; the others are derived when absent (see
        :func:`complete_catalog`). A ``psf_fwhm`` column (arcsec) fixes each PSF.
    seed : int
        Seed (>= 0) of the parameters and of every galaxy's PSF and noise. The same
        seed gives identical images whatever ``n_jobs`` and ``chunk_size``.
    stamp_size : int
        Stamp side, pixels.
    pixel_scale : float
        Arcsec / pixel.
    psf_beta : float
        Moffat beta of the PSF.
    psf_fwhm_range : (float, float)
        The PSF FWHM of each stamp is uniform in this range, arcsec.
    gain : float
        e-/ADU.
    sky_level : float
        Subtracted sky, ADU / pixel; with the gain it sets the sky noise
        ``sqrt(sky_level / gain)`` ADU per pixel (2.24 by default: a 300 ADU galaxy
        then has a matched-filter S/N of 3-10, median 6; a 30,000 ADU one about 230).
    read_noise : float
        e- / pixel.
    noiseless : bool
        Write noise-free images (``sky_sigma`` is then 0).
    sersic_step : float or None
        Grid on which Sersic indices are rounded for drawing (the catalogue keeps the
        exact values); ``None`` draws exact indices (several times slower: every
        galaxy then builds its own profile tables).
    fast : bool
        Use :data:`FAST_GSPARAMS` instead of GalSim's default accuracy.
    n_jobs : int, optional
        Worker processes; default all available cores.
    chunk_size : int
        Stamps per task sent to a worker.
    progress : bool
        Show a tqdm progress bar.

    Returns
    -------
    pandas.DataFrame
        The catalogue, shape (n, 19): the paper's 17 columns in order
        (:data:`PAPER_COLUMNS`), then ``psf_fwhm`` (arcsec) and ``sky_sigma`` (ADU), then
        any other columns of the input catalogue.

    Raises
    ------
    ValueError
        For inconsistent arguments or an invalid catalogue (missing columns are
        listed with the required ones).

    Examples
    --------
    >>> cat = simulate_galaxy_images(100, out_dir="mock", seed=1, n_jobs=2)  # doctest: +SKIP
    >>> cat = simulate_galaxy_images(catalog="gal_morph_test.csv",
    ...                              dataset="paper_test.h5")  # doctest: +SKIP
    """
    if (out_dir is None) == (dataset is None):
        raise ValueError(
            "give exactly one of out_dir= (a folder for FITS stamps + gal_morph.csv) and "
            f"dataset= (an astroreg .h5 file); got out_dir={out_dir!r}, dataset={dataset!r}"
        )
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    _check_settings(stamp_size, pixel_scale, tuple(psf_fwhm_range), psf_beta, gain, sky_level, read_noise,
                    sersic_step)
    if n_jobs is None:
        n_jobs = _default_jobs()
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, (int, np.integer)) or n_jobs < 1:
        raise ValueError(f"n_jobs must be a positive integer (or None for all cores), got {n_jobs!r}")
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}")

    cat = _load_catalog(n, catalog, seed)
    settings = _Settings(
        stamp_size=int(stamp_size), pixel_scale=float(pixel_scale), psf_beta=float(psf_beta),
        psf_fwhm_range=(float(psf_fwhm_range[0]), float(psf_fwhm_range[1])), gain=float(gain),
        sky_level=float(sky_level), read_noise=float(read_noise), noiseless=bool(noiseless),
        sersic_step=None if sersic_step is None else float(sersic_step), fast=bool(fast), seed=int(seed),
    )
    n_jobs = int(min(n_jobs, -(-len(cat) // chunk_size)))
    chunks = _in_order(settings, cat, n_jobs, int(chunk_size))
    from astroreg.sim._galaxy_output import write_dataset, write_fits_folder

    if out_dir is not None:
        return write_fits_folder(out_dir, cat, chunks, settings, progress=progress)
    return write_dataset(dataset, cat, chunks, settings, progress=progress)


def _load_catalog(n: int | None, catalog: str | os.PathLike | pd.DataFrame | None, seed: int) -> pd.DataFrame:
    if n is not None and (isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1):
        raise ValueError(f"n must be a positive integer number of galaxies, got {n!r}")
    if catalog is None:
        if n is None:
            raise ValueError("give n (the number of galaxies to draw) or catalog= (parameters to render)")
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_PARAMS_KEY,)))
        return draw_parameters(int(n), rng)
    if isinstance(catalog, pd.DataFrame):
        frame, source = catalog, "catalog DataFrame"
    else:
        frame, source = read_catalog(catalog), f"catalogue {Path(catalog).name}"
    if n is not None:
        if n > len(frame):
            raise ValueError(f"n={n} but the {source} has only {len(frame)} rows; lower n or omit it")
        frame = frame.iloc[: int(n)]
    return complete_catalog(frame, source=source)


def catalog_columns(extra: Sequence[str] = ()) -> list[str]:
    """Column order of an output catalogue: paper columns, extras, then ``extra``."""
    return list(PAPER_COLUMNS) + list(EXTRA_COLUMNS) + [c for c in extra if c not in EXTRA_COLUMNS]

