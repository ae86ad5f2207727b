"""Fitted transforms of inputs and targets, saved with each run."""

from astroreg.preprocess._pipeline import RecipePreprocessor, check_targets_present, raw_targets, recipe_input_shape
from astroreg.preprocess._spectra import (
    PAPER_LOGLAM_GRID,
    GaussianNoiseAugmenter,
    LogLamResampler,
    SpectrumStandardizer,
    loglam_grid,
    rest_frame_shift,
)
from astroreg.preprocess._transforms import (
    FeatureScaler,
    ImageNormalizer,
    TargetScaler,
    apply_target_transform,
    invert_target_transform,
)

__all__ = [
    "PAPER_LOGLAM_GRID",
    "FeatureScaler",
    "GaussianNoiseAugmenter",
    "ImageNormalizer",
    "LogLamResampler",
    "RecipePreprocessor",
    "SpectrumStandardizer",
    "TargetScaler",
    "apply_target_transform",
    "check_targets_present",
    "invert_target_transform",
    "loglam_grid",
    "raw_targets",
    "recipe_input_shape",
    "rest_frame_shift",
]
