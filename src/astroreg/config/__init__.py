"""Typed, validated recipes."""

from astroreg.config._recipe import (
    BaselineConfig,
    Recipe,
    TargetConfig,
    list_recipes,
    load_recipe,
    recipe_from_dict,
    recipe_to_yaml,
)

__all__ = ["BaselineConfig", "Recipe", "TargetConfig", "list_recipes", "load_recipe", "recipe_from_dict", "recipe_to_yaml"]
