"""Writer of the mock Gaia XP galaxies: an astroreg dataset of spectra prepared on paper 004's grid."""

from __future__ import annotations

import os
import types
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from astroreg.sim._gaiaxp_galaxies import (
    CATALOG_UNITS,
    FLUX_SCALE,
    FLUX_UNIT,
    G_RANGE,
    check_arguments,
    simulate_gaiaxp_galaxies,
)

MOCK_KIND = "gaia-xp-galaxies"

PAPER_SPLITS: Mapping[str, float] = types.MappingProxyType({"train": 0.63, "val": 0.27, "test": 0.10})
"""Paper 004's split: 90/10 train/test, then 30 % of the 90 for validation."""

BYTES_PER_GALAXY = 186 * (4 + 4 + 1) + 8 * len(CATALOG_UNITS) + 64
"""Size of one galaxy in the dataset (flux, ivar, mask, catalogue columns, id), for the free-space check."""

FLUX_KIND = "calibrated"
"""The flux kind: absolute flux (GaiaXPy's ``calibrate``), not internal e-/s."""

FLUX_KIND_ATTR = "xp_flux_kind"
"""``/spectra`` attribute with the flux kind, as ``astroreg ingest gaia-xp`` writes it (``XP_FLUX_KIND`` there)."""

_MASK_BITS = "bit 0: no data (never set in the mock: every sample has flux and ivar > 0)"


def _description(n: int, settings: Mapping[str, object]) -> str:
    return (
        f"astroreg simulate gaia-xp-galaxies: {n} mock Gaia BP/RP spectra of galaxies (seed paper 004) on the "
        "186 kept samples (80 BP + 106 RP, 366-996 nm), calibrated flux in " + FLUX_UNIT + "; "
        + ", ".join(f"{k} {v}" for k, v in settings.items())
        + "; z ~ Gamma(3.2, 0.044) in [0, 0.6], CWW templates, emission lines, Calzetti dust, Gaussian LSF from "
        "GaiaXPy's dispersion, photon noise from GaiaXPy's instrument response; see docs/gaia-xp-mock.md"
    )


def write_gaiaxp_dataset(
    n: int,
    path: str | os.PathLike,
    *,
    seed: int = 0,
    g_range: tuple[float, float] = G_RANGE,
    split_fractions: Mapping[str, float] | None = PAPER_SPLITS,
    progress: bool = False,
) -> Path:
    """Simulate ``n`` galaxies and write them as an astroreg dataset, atomically.

    The spectra are stored as a reader that prepared them at ingest would store them
    (:func:`~astroreg.data.write_prepared_attrs`): on ``xp_grid()``, the paper's 186 kept
    samples, so that a recipe reads them as they are with
    ``inputs: {xp: {kind: spectra, grid: gaia-xp, resample: false, standardize: false}}``.

    Parameters
    ----------
    n : int
        Number of galaxies.
    path : path-like
        ``.h5`` file; written under a temporary name and moved into place when complete.
    seed : int
        Seed of the galaxies, their noise and the splits.
    g_range : (float, float)
        Range of G magnitude (Vega), drawn uniformly.
    split_fractions : mapping of str to float, optional
        Random splits to store; default paper 004's 63/27/10; None: none.
    progress : bool
        Show a tqdm progress bar.

    Returns
    -------
    pathlib.Path
        ``path``.

    Notes
    -----
    ``/spectra/flux`` (n, 186) float32 in :data:`FLUX_UNIT`, ``/spectra/ivar`` its inverse
    variance, ``/spectra/mask`` (uint8, all 0); ``/spectra`` attributes ``flux_unit``,
    ``xp_flux_kind`` (``"calibrated"``), ``xp_truncation`` (``"34,6,4,10"``), ``mock`` and the
    ``prepared_*`` ones; target ``z``; ``/tabular`` the true parameters
    (:data:`~astroreg.sim._gaiaxp_galaxies.CATALOG_UNITS` but ``z``); ids ``xp0000000``, ...

    Examples
    --------
    >>> write_gaiaxp_dataset(1000, "xp-mock.h5", seed=1)  # doctest: +SKIP
    PosixPath('xp-mock.h5')
    """
    check_arguments(n, g_range)
    from astroreg.data import DatasetWriter, SpectraSpec, write_prepared_attrs
    from astroreg.preprocess._xp_layout import PAPER_TRUNCATION, xp_grid

    grid = xp_grid(PAPER_TRUNCATION)
    attrs: dict = {FLUX_KIND_ATTR: FLUX_KIND, "xp_truncation": str(PAPER_TRUNCATION), "mock": MOCK_KIND}
    write_prepared_attrs(attrs, grid=grid, rest_frame=None, redshift_fallback=None, bad_pixels="interpolate",
                         bad_mask_bits=1, min_good_fraction=1.0, prepared_by="astroreg.sim.simulate_gaiaxp_galaxies")
    spec = SpectraSpec(n_pixels=grid.n_pixels, wavelength=tuple(float(w) for w in grid.wavelength()),
                       flux_unit=FLUX_UNIT, with_ivar=True, with_mask=True, medium="vacuum", mask_dtype="uint8",
                       mask_bad_bits=1, mask_bits=_MASK_BITS, attrs=attrs)
    tabular = {c: u for c, u in CATALOG_UNITS.items() if c != "z"}
    settings = {"seed": seed, "g_range": [float(g_range[0]), float(g_range[1])]}
    writer = DatasetWriter(path, targets={"z": ""}, spectra=spec, tabular=tabular,
                           description=_description(int(n), settings))
    start = 0
    with writer:
        for spectra, table in simulate_gaiaxp_galaxies(n, seed=seed, g_range=g_range, progress=progress):
            m = len(table)
            flux = (spectra["flux"] / FLUX_SCALE).astype(np.float32)
            ivar = (1.0 / (spectra["flux_error"] / FLUX_SCALE) ** 2).astype(np.float32)
            writer.append([f"xp{i:07d}" for i in range(start, start + m)],
                          spectra={"flux": flux, "ivar": ivar, "mask": np.zeros(flux.shape, np.uint8)},
                          tabular={c: table[c].to_numpy(np.float64) for c in tabular},
                          targets={"z": table["z"].to_numpy(np.float64)})
            start += m
        if split_fractions:
            writer.make_splits(split_fractions, seed=seed)
    return Path(path)
