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

__all__ = [
    "DEFAULT_SPLITS",
    "FORMAT_VERSION",
    "IngestReport",
    "NothingIngestedError",
    "SUPPORTED_EXTENSIONS",
    "Dataset",
    "DatasetWriter",
    "ImageSpec",
    "SpectraSpec",
    "atomic_path",
    "atomic_write_text",
    "ingest_image_folder",
    "random_splits",
    "read_catalog",
    "require_columns",
]
