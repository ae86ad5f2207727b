"""Typed, validated recipes."""

from astroreg.config._recipe import (
    BaselineConfig,
    Recipe,
    TargetConfig,
    load_recipe,
    recipe_from_dict,
    recipe_to_yaml,
)

__all__ = ["BaselineConfig", "Recipe", "TargetConfig", "load_recipe", "recipe_from_dict", "recipe_to_yaml"]
