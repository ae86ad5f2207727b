"""Writers of the mock galaxy survey: FITS stamps + CSV catalogue, or an astroreg dataset."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import galsim
import numpy as np
import pandas as pd
from astropy.io import fits
from numpy.typing import NDArray
from tqdm.auto import tqdm

from astroreg.data import DatasetWriter, ImageSpec, atomic_path
from astroreg.sim._galaxy_catalog import COLUMN_UNITS
from astroreg.sim._galaxy_images import CATALOG_NAME, _Settings, catalog_columns

_TARGETS = ("total_flux", "log_total_flux")
_Chunk = tuple[int, NDArray[np.float32], NDArray[np.float64], NDArray[np.int64]]


def _ordered(cat: pd.DataFrame) -> pd.DataFrame:
    extra = [c for c in cat.columns if c not in catalog_columns()]
    return cat[catalog_columns(extra)]


def _header(settings: _Settings, row: pd.Series, index: int, fwhm: float, noise_seed: int) -> fits.Header:
    s = settings
    h = fits.Header()
    h["BUNIT"] = ("ADU", "pixel unit")
    h["PIXSCALE"] = (s.pixel_scale, "arcsec / pixel")
    h["PSFFWHM"] = (fwhm, "Moffat PSF FWHM, arcsec")
    h["PSFBETA"] = (s.psf_beta, "Moffat PSF beta")
    h["IMGNUM"] = (int(row["img_number"]), "img_number in the catalogue")
    h["FLUX"] = (float(row["total_flux"]), "true total flux of the model, ADU")
    h["SEED"] = (s.seed, "astroreg simulation seed")
    h["GALINDEX"] = (index, "row in the run, seeds its random stream")
    h["NOISE"] = (not s.noiseless, "noise added")
    if not s.noiseless:
        h["NOISESD"] = (noise_seed, "GalSim CCDNoise seed")
        h["GAIN"] = (s.gain, "e- / ADU")
        h["SKYLEVEL"] = (s.sky_level, "subtracted sky, ADU / pixel")
        h["RDNOISE"] = (s.read_noise, "read noise, e-")
    h["SKYSIGMA"] = (s.sky_sigma, "sky noise per pixel, ADU")
    h["SERSTEP"] = (s.sersic_step or 0.0, "Sersic index drawing grid (0: exact)")
    h["GSFAST"] = (s.fast, "astroreg fast GSParams (F: GalSim defaults)")
    h["ORIGIN"] = "astroreg simulate galaxy-images"
    h["GSVERS"] = (galsim.__version__, "GalSim version")
    return h


def write_fits_folder(out_dir: str | os.PathLike, cat: pd.DataFrame, chunks: Iterator[_Chunk],
                      settings: _Settings, *, progress: bool = True) -> pd.DataFrame:
    """Write one FITS stamp per galaxy and ``gal_morph.csv`` into ``out_dir``.

    Each stamp is first written under a temporary name, so a file named
    ``<img_number>.fits`` is always complete; the catalogue is written last.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"out_dir {out} exists and is not a folder; give a folder path (or a .h5 dataset)")
    out.mkdir(parents=True, exist_ok=True)
    cat = cat.copy()
    cat["psf_fwhm"] = np.nan
    cat["sky_sigma"] = settings.sky_sigma
    with tqdm(total=len(cat), disable=not progress, unit="stamp", desc="galaxy images") as bar:
        for start, images, fwhms, seeds in chunks:
            for k in range(len(images)):
                i = start + k
                row = cat.iloc[i]
                hdu = fits.PrimaryHDU(data=images[k], header=_header(settings, row, i, fwhms[k], int(seeds[k])))
                with atomic_path(out / str(row["file_name"])) as tmp:
                    hdu.writeto(tmp, overwrite=True)
            cat.loc[start:start + len(images) - 1, "psf_fwhm"] = fwhms
            bar.update(len(images))
    cat = _ordered(cat)
    with atomic_path(out / CATALOG_NAME) as tmp:
        cat.to_csv(tmp, index=False)
    return cat


def write_dataset(path: str | os.PathLike, cat: pd.DataFrame, chunks: Iterator[_Chunk],
                  settings: _Settings, *, progress: bool = True) -> pd.DataFrame:
    """Write the stamps and catalogue into an astroreg HDF5 dataset, chunk by chunk."""
    path = Path(path)
    if path.exists() and path.is_dir():
        raise ValueError(f"dataset {path} is a folder; give a file path ending in .h5 (or use out_dir=)")
    cat = cat.copy()
    cat["psf_fwhm"] = np.nan
    cat["sky_sigma"] = settings.sky_sigma
    cat = _ordered(cat)
    # As `astroreg ingest images` does: targets are not repeated as tabular inputs, so a
    # baseline fed "all tabular columns" cannot read the answer.
    tab_cols = [c for c in cat.columns if c not in ("file_name", *_TARGETS)]
    s = settings
    spec = ImageSpec(bands=("i",), height=s.stamp_size, width=s.stamp_size, pixel_scale=s.pixel_scale, unit="ADU")
    noise = ("noiseless" if s.noiseless else
             f"CCDNoise gain {s.gain:g} e-/ADU, sky {s.sky_level:g} ADU/pixel (sigma {s.sky_sigma:.3g} ADU), "
             f"read noise {s.read_noise:g} e-")
    description = (
        "HSC-like bulge+disk Sersic galaxies (Kim & Lee 2024, seed paper 002) drawn with GalSim "
        f"{galsim.__version__} by astroreg: {s.stamp_size}x{s.stamp_size} pixels of {s.pixel_scale:g} arcsec, "
        f"Moffat PSF beta {s.psf_beta:g}, FWHM U{s.psf_fwhm_range} arcsec, {noise}; seed {s.seed}; "
        f"Sersic index drawing grid {s.sersic_step or 'exact'}, fast GSParams {s.fast}"
    )
    ids = [Path(f).stem for f in cat["file_name"]]
    writer = DatasetWriter(
        path, images=spec,
        targets={t: COLUMN_UNITS[t] for t in _TARGETS},
        tabular={c: COLUMN_UNITS.get(c, "") for c in tab_cols},
        description=description,
    )
    with writer, tqdm(total=len(cat), disable=not progress, unit="stamp", desc="galaxy images") as bar:
        for start, images, fwhms, _ in chunks:
            stop = start + len(images)
            cat.loc[start:stop - 1, "psf_fwhm"] = fwhms
            part = cat.iloc[start:stop]
            writer.append(
                ids[start:stop],
                images=images[:, None],
                targets={t: part[t].to_numpy(float) for t in _TARGETS},
                tabular={c: part[c].to_numpy() for c in tab_cols},
            )
            bar.update(len(images))
    return cat

