"""On-disk datasets: the dataset file, run outputs, atomic writes, catalogue readers, prepared-spectra attributes.

Survey readers (``ingest_image_folder``, ``ingest_sdss_spectra`` and their constants) live
in :mod:`astroreg.ingest`, which imports this package; nothing here imports
:mod:`astroreg.preprocess` or :mod:`astroreg.ingest` at load time.
"""


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
from astroreg.data._outputs import (
    PARTIAL,
    RESUME_FILE,
    build_dir,
    check_free_space,
    check_not_input,
    check_output_dir,
    check_output_file,
    check_writable_folder,
    claim_dir,
    final_name,
    is_ablation_folder,
    is_dataset_file,
    is_metrics_file,
    is_predictions_file,
    is_run_folder,
    is_stale_partial,
    mark_resumable,
    partial_name,
    remove_claimed,
    replace_dir,
    resume_command,
    resume_dir,
    unmark_resumable,
)
from astroreg.data._prepared import (
    PREPARED_ATTRS,
    PreparedSpectra,
    prepared_spectra_info,
    write_prepared_attrs,
)

__all__ = [
    "FORMAT_VERSION",
    "PARTIAL",
    "PREPARED_ATTRS",
    "RESUME_FILE",
    "SUPPORTED_EXTENSIONS",
    "Dataset",
    "DatasetWriter",
    "ImageSpec",
    "PreparedSpectra",
    "SpectraSpec",
    "atomic_path",
    "atomic_write_text",
    "build_dir",
    "check_free_space",
    "check_not_input",
    "check_output_dir",
    "check_output_file",
    "check_writable_folder",
    "claim_dir",
    "final_name",
    "is_ablation_folder",
    "is_dataset_file",
    "is_metrics_file",
    "is_predictions_file",
    "is_run_folder",
    "is_stale_partial",
    "mark_resumable",
    "partial_name",
    "prepared_spectra_info",
    "random_splits",
    "read_catalog",
    "remove_claimed",
    "replace_dir",
    "resume_command",
    "resume_dir",
    "unmark_resumable",
    "require_columns",
    "write_prepared_attrs",
]
