"""On-disk datasets, survey readers and ingest."""

from astroreg.data._atomic import atomic_path, atomic_write_text
from astroreg.data._catalog import SUPPORTED_EXTENSIONS, read_catalog, require_columns
from astroreg.data._dataset import (
    FORMAT_VERSION,
    Dataset,
    DatasetWriter,
    ImageSpec,
    SpectraSpec,
    random_splits,
)
from astroreg.data._ingest_images import DEFAULT_SPLITS, IngestReport, NothingIngestedError, ingest_image_folder
from astroreg.data._ingest_spectra import (
    PADDING_MASK,
    SDSS_BAD_PIXEL_BITS,
    SSPP_TARGETS,
    SpectraIngestReport,
    ingest_sdss_spectra,
)

__all__ = [
    "DEFAULT_SPLITS",
    "FORMAT_VERSION",
    "IngestReport",
    "NothingIngestedError",
    "PADDING_MASK",
    "SDSS_BAD_PIXEL_BITS",
    "SSPP_TARGETS",
    "SUPPORTED_EXTENSIONS",
    "Dataset",
    "DatasetWriter",
    "ImageSpec",
    "SpectraIngestReport",
    "SpectraSpec",
    "atomic_path",
    "atomic_write_text",
    "ingest_image_folder",
    "ingest_sdss_spectra",
    "random_splits",
    "read_catalog",
    "require_columns",
]
