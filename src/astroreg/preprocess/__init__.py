"""Transforms of inputs and targets (fitted on training data, no knowledge of recipes)."""

from astroreg.preprocess._augment import add_noisy_copies
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
    "add_noisy_copies",
    "PAPER_LOGLAM_GRID",
    "FeatureScaler",
    "GaussianNoiseAugmenter",
    "ImageNormalizer",
    "LogLamResampler",
    "SpectrumStandardizer",
    "TargetScaler",
    "apply_target_transform",
    "invert_target_transform",
    "loglam_grid",
    "rest_frame_shift",
]
