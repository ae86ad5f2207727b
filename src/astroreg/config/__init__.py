"""Typed, validated recipes."""

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
