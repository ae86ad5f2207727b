"""Shared fixtures: small seeded datasets made in the test, never downloaded."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from astroreg.data import DatasetWriter, ImageSpec

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


def make_blob_dataset(path: Path, n: int = 600, size: int = 32, seed: int = 0, noise: float = 2.0) -> Path:
    """Gaussian 'galaxies' whose total flux is the target; R_e and bt carry no flux information."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2
    spec = ImageSpec(bands=("i",), height=size, width=size, pixel_scale=0.168)
    with DatasetWriter(path, images=spec, targets={"total_flux": "ADU"},
                       tabular={"R_e": "arcsec", "bt": "", "img_number": ""}) as w:
        for start in range(0, n, 200):
            m = min(200, n - start)
            flux = rng.uniform(200, 30000, m)
            sigma = rng.uniform(1.0, 3.5, m)
            r2 = (xx**2 + yy**2)[None]
            img = flux[:, None, None] * np.exp(-r2 / (2 * sigma[:, None, None] ** 2)) / (2 * np.pi * sigma[:, None, None] ** 2)
            img = img + rng.normal(0, noise, img.shape)
            w.append([f"g{start + i}" for i in range(m)], images=img[:, None].astype("f4"),
                     targets={"total_flux": flux},
                     tabular={"R_e": sigma * 1.1774 * 0.168, "bt": rng.uniform(0, 1, m),
                              "img_number": np.arange(start, start + m)})
        w.make_splits({"train": 0.6, "val": 0.15, "test": 0.25}, seed=seed)
    return path


def make_tabular_dataset(path: Path, tabular: dict[str, np.ndarray], targets: dict[str, np.ndarray], *,
                         units: dict[str, str] | None = None, splits: dict[str, float] | None = None) -> Path:
    """A dataset of catalogue columns and targets (ids ``o0, o1, ...``; ``units`` by name, default none),
    with splits stored (default 60/20/20, seed 0)."""
    units = units or {}
    n = len(next(iter(targets.values())))
    with DatasetWriter(path, tabular={k: units.get(k, "") for k in tabular},
                       targets={k: units.get(k, "") for k in targets}) as w:
        w.append([f"o{i}" for i in range(n)], tabular=tabular, targets=targets)
        w.make_splits(splits or {"train": 0.6, "val": 0.2, "test": 0.2}, seed=0)
    return path


LINE_LOGLAM = np.linspace(3.60, 3.66, 128)
"""log10(wavelength / Angstrom) grid of :func:`line_spectra`."""
LINE_CENTRES = (3.61, 3.625, 3.64, 3.652)


def line_spectra(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Absorption-line spectra on a rippled continuum, shape (n, 128), and their line depths (n, 4)."""
    d = rng.uniform(0.05, 0.6, (n, len(LINE_CENTRES)))
    profile = np.stack([np.exp(-0.5 * ((LINE_LOGLAM - c) / 0.0015) ** 2) for c in LINE_CENTRES])
    ripple = 1 + 0.5 * np.sin(2 * np.pi * (LINE_LOGLAM - 3.60) / 0.02)
    flux = ripple * (1 - d @ profile) * rng.uniform(5, 50, (n, 1))
    flux += 0.01 * flux.mean(axis=1, keepdims=True) * rng.normal(size=flux.shape)
    return flux, d


@pytest.fixture(scope="session")
def blob_dataset(tmp_path_factory) -> Path:
    """A 600-object, 32x32 one-band image dataset with stored splits."""
    return make_blob_dataset(tmp_path_factory.mktemp("data") / "blobs.h5")


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The ../shared folder of real survey files; skips the test when absent."""
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} (real survey files) is absent")
    return SHARED
