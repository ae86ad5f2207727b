"""Transforms of inputs and targets (fitted on training data, no knowledge of recipes).

Members are imported on first use (PEP 562): a recipe's wavelength grid is validated
without loading scikit-learn and scipy.
"""

from __future__ import annotations

from astroreg._lazy import lazy_members

_WHERE = {
    "PAPER_LOGLAM_GRID": "astroreg.preprocess._spectra",
    "FeatureScaler": "astroreg.preprocess._transforms",
    "GaussianNoiseAugmenter": "astroreg.preprocess._spectra",
    "ImageNormalizer": "astroreg.preprocess._transforms",
    "LogLamResampler": "astroreg.preprocess._spectra",
    "SpectrumStandardizer": "astroreg.preprocess._spectra",
    "TargetScaler": "astroreg.preprocess._transforms",
    "add_noisy_copies": "astroreg.preprocess._augment",
    "apply_target_transform": "astroreg.preprocess._transforms",
    "invert_target_transform": "astroreg.preprocess._transforms",
    "loglam_grid": "astroreg.preprocess._spectra",
    "rest_frame_shift": "astroreg.preprocess._spectra",
}

__all__, __getattr__, __dir__ = lazy_members(__name__, _WHERE)
