"""Survey readers: folders of survey files plus a label catalogue, turned into astroreg datasets.

Each reader knows its survey (file layout, mask bits, column names) and writes the generic
dataset of :mod:`astroreg.data`; one that resamples spectra at ingest records it with
:func:`astroreg.data.write_prepared_attrs`. Readers may import :mod:`astroreg.data` and
:mod:`astroreg.preprocess`; neither imports a reader.

- :func:`ingest_image_folder`: image stamps (FITS or NumPy) named by a catalogue.
- :func:`ingest_sdss_spectra`: SDSS/BOSS ``spec-PLATE-MJD-FIBER.fits`` files with SSPP-like
  labels, natively or resampled onto a grid (optionally in the rest frame).
- :func:`ingest_catalog`: object catalogues (CSV, FITS, Parquet, HDF5) of tabular inputs and
  targets, with sentinels, missing-value policies, duplicates and splits.
- :func:`ingest_gaia_xp`: Gaia XP (BP/RP) spectra, continuous (sampled with GaiaXPy) or
  sampled, onto paper 004's 186-sample layout, joined to labels by source_id.
"""

from astroreg.ingest._catalog import CatalogIngestReport, ingest_catalog
from astroreg.ingest._gaiaxp import (
    PAPER_SPLITS,
    XP_FLUX_UNITS,
    GaiaXpIngestReport,
    ingest_gaia_xp,
)
from astroreg.ingest._images import (
    DEFAULT_SPLITS,
    IngestReport,
    NothingIngestedError,
    ingest_image_folder,
)
from astroreg.ingest._missing import DEFAULT_SENTINELS, MissingPolicy
from astroreg.ingest._sdss import (
    DEFAULT_MIN_GOOD_FRACTION,
    SDSS_ID_COLUMNS,
    SSPP_TARGETS,
    SpectraIngestReport,
    ingest_sdss_spectra,
)
from astroreg.ingest._sdss_fits import (
    PADDING_MASK,
    SDSS_BAD_PIXEL_BITS,
    SDSS_LOGLAM_STEP,
)

__all__ = [
    "DEFAULT_MIN_GOOD_FRACTION",
    "DEFAULT_SENTINELS",
    "DEFAULT_SPLITS",
    "PADDING_MASK",
    "PAPER_SPLITS",
    "SDSS_BAD_PIXEL_BITS",
    "SDSS_ID_COLUMNS",
    "SDSS_LOGLAM_STEP",
    "SSPP_TARGETS",
    "XP_FLUX_UNITS",
    "CatalogIngestReport",
    "GaiaXpIngestReport",
    "IngestReport",
    "MissingPolicy",
    "NothingIngestedError",
    "SpectraIngestReport",
    "ingest_catalog",
    "ingest_gaia_xp",
    "ingest_image_folder",
    "ingest_sdss_spectra",
]
