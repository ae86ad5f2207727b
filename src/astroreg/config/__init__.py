"""Typed, validated recipes."""

from astroreg.config._inputs import (
    ImagesInput,
    InputSettings,
    SpectraInput,
    TabularInput,
    input_kinds,
    register_input_settings,
)
from astroreg.config._recipe import (
    AugmentConfig,
    BaselineConfig,
    ModelConfig,
    Recipe,
    SearchDimension,
    TargetConfig,
    TuningConfig,
    VariantConfig,
    list_recipes,
    load_recipe,
    recipe_from_dict,
    recipe_to_yaml,
)

__all__ = [
    "ImagesInput",
    "InputSettings",
    "SpectraInput",
    "TabularInput",
    "input_kinds",
    "register_input_settings",
    "AugmentConfig",
    "BaselineConfig",
    "ModelConfig",
    "Recipe",
    "SearchDimension",
    "TargetConfig",
    "TuningConfig",
    "VariantConfig",
    "list_recipes",
    "load_recipe",
    "recipe_from_dict",
    "recipe_to_yaml",
]
