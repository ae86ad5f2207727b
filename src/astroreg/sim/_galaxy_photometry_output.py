"""Writers of the mock photometric catalogue: Parquet catalogue or astroreg dataset, with output guards."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from astroreg.sim._galaxy_photometry import _BATCH, BANDS, DEPTH_5SIGMA, MISSING, UNITS

_MOCK_KIND = "galaxy-photometry"

DATASET_MISSING_ERROR = 1.0
"""Magnitude error given to a non-detection in the dataset, whose magnitude is the band's detection limit."""


def _settings_text(cat: pd.DataFrame, settings: Mapping[str, object]) -> str:
    return (
        "astroreg simulate galaxy-photometry: flux-limited mock ugriz catalogue (seed paper 000, Sigma_SFR "
        f"from photometry): {len(cat)} galaxies, " + ", ".join(f"{k} {v}" for k, v in settings.items())
        + "; Baldry+2012 mass function, Peng+2010 quenching, Speagle+2014 main sequence, van der Wel+2014 "
        "sizes, CWW templates mixed by sSFR, Calzetti+2000 dust, Bell+2003 M/L, Planck18; "
        "see docs/galaxy-photometry-mock.md"
    )


def is_photometry_catalog(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a Parquet catalogue written by :func:`write_photometry_catalog`."""
    import pyarrow.parquet as pq

    p = Path(path)
    if not p.is_file():
        return False
    try:
        meta = pq.read_schema(p).metadata or {}
    except (OSError, ValueError):  # not Parquet, or damaged (ArrowInvalid is a ValueError): not ours
        return False
    try:
        return json.loads(meta.get(b"astroreg", b"{}")).get("mock") == _MOCK_KIND
    except ValueError:
        return False


def check_catalog_output(path: str | os.PathLike, *, overwrite: bool = False, n: int = 0) -> Path:
    """Check a Parquet catalogue output before any work (as ``check_output_file`` does for datasets).

    An existing file is replaced only with ``overwrite`` and only when it is a previous
    galaxy-photometry catalogue.

    Raises
    ------
    ValueError
        With the path, what was found and what to do.
    """
    from astroreg.data import check_free_space, check_writable_folder

    p = Path(path)
    if p.is_dir():
        raise ValueError(f"output {p} is a folder; give a file path ending in .parquet, e.g. {p / 'mock.parquet'}")
    if p.suffix.lower() != ".parquet":
        raise ValueError(f"output {p} should end in .parquet (a catalogue) or .h5 (an astroreg dataset); got "
                         f"{p.suffix or 'no extension'}")
    if p.exists() or p.is_symlink():
        if not overwrite:
            raise ValueError(f"{p} exists; pass --overwrite to replace a previous galaxy-photometry catalogue, "
                             "or choose another path")
        if not is_photometry_catalog(p):
            raise ValueError(f"{p} exists and is not a previous galaxy-photometry catalogue (a Parquet file written "
                             "by `astroreg simulate galaxy-photometry`); astroreg replaces only its own outputs, even "
                             "with --overwrite: choose another path")
    folder = check_writable_folder(p.parent)
    if n:
        check_free_space(folder, n * 8 * len(UNITS))
    return p


def write_photometry_catalog(cat: pd.DataFrame, path: str | os.PathLike, *,
                             settings: Mapping[str, object] | None = None) -> Path:
    """Write the catalogue as Parquet, atomically, with the column units in its metadata.

    Parameters
    ----------
    cat : pandas.DataFrame
        :func:`simulate_galaxy_photometry`'s table.
    path : path-like
        ``.parquet`` file.
    settings : mapping, optional
        The simulation's settings, stored in the metadata.

    Returns
    -------
    pathlib.Path
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from astroreg.data import atomic_path

    table = pa.Table.from_pandas(cat, preserve_index=False)
    meta = dict(table.schema.metadata or {})
    meta[b"astroreg"] = json.dumps({
        "mock": _MOCK_KIND, "units": {c: UNITS.get(c, "") for c in cat.columns}, "settings": dict(settings or {}),
        "missing": MISSING, "description": _settings_text(cat, settings or {}),
    }).encode()
    path = Path(path)
    with atomic_path(path) as tmp:
        pq.write_table(table.replace_schema_metadata(meta), tmp)
    return path


DATASET_TABULAR = (*(f"mag_{b}" for b in BANDS), *(f"magerr_{b}" for b in BANDS), "z_spec", "r_e_arcsec")
"""Tabular columns of the dataset: what a survey measures (``z_spec`` is the spectroscopic redshift)."""

DATASET_TARGETS = ("log_sigma_sfr", "log_sfr", "log_mstar", "redshift")
"""Targets of the dataset (true values)."""


def dataset_columns(cat: pd.DataFrame, detection_snr: float = 3.0) -> dict[str, NDArray]:
    """The dataset's tabular columns: a non-detection becomes the band's limit at ``detection_snr``.

    The magnitude of a non-detection is ``m_5 + 2.5 log10(5 / detection_snr)`` (the flux
    at which a measurement reaches ``detection_snr``) and its error
    :data:`DATASET_MISSING_ERROR`, larger than any detection's, so every value is finite.
    """
    out: dict[str, NDArray] = {}
    for b in BANDS:
        mag, err = cat[f"mag_{b}"].to_numpy(float), cat[f"magerr_{b}"].to_numpy(float)
        missing = mag >= MISSING
        out[f"mag_{b}"] = np.where(missing, DEPTH_5SIGMA[b] + 2.5 * np.log10(5.0 / detection_snr), mag)
        out[f"magerr_{b}"] = np.where(missing, DATASET_MISSING_ERROR, err)
    out["z_spec"] = cat["redshift"].to_numpy(float)
    out["r_e_arcsec"] = cat["r_e_arcsec"].to_numpy(float)
    return {c: out[c] for c in DATASET_TABULAR}


def write_photometry_dataset(cat: pd.DataFrame, path: str | os.PathLike, *,
                             split_fractions: Mapping[str, float] | None = None, seed: int = 0,
                             detection_snr: float = 3.0, settings: Mapping[str, object] | None = None) -> Path:
    """Write the catalogue as an astroreg dataset: ``/tabular`` photometry, ``/targets`` truths, ``/splits``.

    Parameters
    ----------
    cat : pandas.DataFrame
        :func:`simulate_galaxy_photometry`'s table.
    path : path-like
        ``.h5`` file, written atomically.
    split_fractions : mapping of str to float, optional
        Random splits to store, e.g. ``{"train": 0.6, "val": 0.15, "test": 0.25}``; None: none.
    seed : int
        Seed of the splits.
    detection_snr : float
        The simulation's, for the limit given to non-detections (:func:`dataset_columns`).
    settings : mapping, optional
        Stored in the description.

    Returns
    -------
    pathlib.Path
    """
    from astroreg.data import DatasetWriter

    tab = dataset_columns(cat, detection_snr)
    units = {**UNITS, "z_spec": ""}
    writer = DatasetWriter(path, targets={t: units[t] for t in DATASET_TARGETS},
                           tabular={c: units[c] for c in DATASET_TABULAR},
                           description=_settings_text(cat, settings or {}))
    ids = cat["id"].astype(str).tolist()
    with writer:
        for start in range(0, len(cat), _BATCH):
            stop = min(start + _BATCH, len(cat))
            writer.append(ids[start:stop], tabular={c: v[start:stop] for c, v in tab.items()},
                          targets={t: cat[t].to_numpy(float)[start:stop] for t in DATASET_TARGETS})
        if split_fractions:
            writer.make_splits(split_fractions, seed=seed)
    return Path(path)
