"""On-disk datasets, survey readers and ingest."""

from astroreg.data._atomic import atomic_path, atomic_write_text
from astroreg.data._dataset import (
    FORMAT_VERSION,
    Dataset,
    DatasetWriter,
    ImageSpec,
    SpectraSpec,
    random_splits,
)

__all__ = [
    "FORMAT_VERSION",
    "Dataset",
    "DatasetWriter",
    "ImageSpec",
    "SpectraSpec",
    "atomic_path",
    "atomic_write_text",
    "random_splits",
]
