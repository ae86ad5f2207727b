"""Networks (plain ``torch.nn.Module`` builders) and their registry."""

from astroreg.models import _cnn, _mlp, _spectra  # noqa: F401  (registers the builders)
from astroreg.models._cnn import ConvRegressor
from astroreg.models._fast import (
    FastPredictor,
    count_flops,
    matmul_gflops,
    optimize_for_inference,
    prepare_for_training,
    unwrap,
)
from astroreg.models._registry import ModelEntry, create_model, get_model_entry, list_models, register_model
from astroreg.models._summary import model_summary

__all__ = [
    "ConvRegressor",
    "FastPredictor",
    "ModelEntry",
    "count_flops",
    "create_model",
    "get_model_entry",
    "list_models",
    "matmul_gflops",
    "model_summary",
    "optimize_for_inference",
    "prepare_for_training",
    "register_model",
    "unwrap",
]
