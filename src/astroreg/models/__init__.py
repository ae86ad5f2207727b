"""Networks (plain ``torch.nn.Module`` builders) and their registry."""

from astroreg.models import _cnn, _mlp  # noqa: F401  (registers the builders)
from astroreg.models._cnn import ConvRegressor
from astroreg.models._registry import ModelEntry, create_model, get_model_entry, list_models, register_model

__all__ = ["ConvRegressor", "ModelEntry", "create_model", "get_model_entry", "list_models", "register_model"]
