"""Fitted transforms of inputs and targets, saved with each run."""

from astroreg.preprocess._pipeline import RecipePreprocessor, check_targets_present, raw_targets, recipe_input_shape
from astroreg.preprocess._transforms import (
    FeatureScaler,
    ImageNormalizer,
    TargetScaler,
    apply_target_transform,
    invert_target_transform,
)

__all__ = [
    "FeatureScaler",
    "ImageNormalizer",
    "RecipePreprocessor",
    "TargetScaler",
    "apply_target_transform",
    "check_targets_present",
    "invert_target_transform",
    "raw_targets",
    "recipe_input_shape",
]
