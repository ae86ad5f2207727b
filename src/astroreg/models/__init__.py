"""Networks (plain ``torch.nn.Module`` builders) and their registry.

The model interface (named inputs, the :class:`SingleInput` adapter, ``n_outputs=0`` for
a network without its head, declared input kinds) is described in
:mod:`astroreg.models._registry`.
"""

from astroreg.models import _cnn, _cnn1d, _ensemble, _fusion, _mlp, _pooled_cnn1d, _spectra  # noqa: F401  (registers the builders)
from astroreg.models._cnn import ConvRegressor
from astroreg.models._fast import (
    FastPredictor,
    count_flops,
    matmul_gflops,
    optimize_for_inference,
    prepare_for_training,
    unwrap,
)
from astroreg.models._io import load_model, save_model
from astroreg.models._registry import (
    ModelEntry,
    SingleInput,
    check_model_inputs,
    create_model,
    get_model_entry,
    list_models,
    register_model,
    unwrap_single,
)
from astroreg.models._summary import model_summary

__all__ = [
    "ConvRegressor",
    "FastPredictor",
    "ModelEntry",
    "SingleInput",
    "check_model_inputs",
    "count_flops",
    "create_model",
    "get_model_entry",
    "list_models",
    "load_model",
    "matmul_gflops",
    "model_summary",
    "optimize_for_inference",
    "prepare_for_training",
    "register_model",
    "save_model",
    "unwrap",
    "unwrap_single",
]
