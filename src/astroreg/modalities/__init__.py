"""Modality plug-ins: one registered class per kind of input, and the fitted inputs of a recipe.

The engine reads, preprocesses, augments and predicts every input through the
:class:`Modality` interface (see ``docs/architecture.md``); the built-in kinds are
``images``, ``spectra`` and ``tabular``. :class:`RecipePreprocessor` holds a recipe's fitted
named inputs and its target scaling, and is saved with each run as plain JSON.
"""

from astroreg.modalities._base import (
    LazyIds,
    Modality,
    PredictReader,
    baseline_inputs,
    create_input,
    get_modality,
    list_modalities,
    register_modality,
)
from astroreg.modalities.images import Images
from astroreg.modalities.spectra import Spectra
from astroreg.modalities.tabular import Tabular
from astroreg.modalities._recipe import (
    RecipePreprocessor,
    check_targets_present,
    raw_targets,
    recipe_input_shapes,
)

__all__ = [
    "Images",
    "LazyIds",
    "Modality",
    "PredictReader",
    "RecipePreprocessor",
    "Spectra",
    "Tabular",
    "baseline_inputs",
    "check_targets_present",
    "create_input",
    "get_modality",
    "list_modalities",
    "raw_targets",
    "recipe_input_shapes",
    "register_modality",
]
