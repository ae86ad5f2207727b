"""Noise augmentation of training spectra (paper 001: noisy copies at 1-5 % of each spectrum's std)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from astroreg.preprocess._spectra import GaussianNoiseAugmenter

_CHUNK = 512


def add_noisy_copies(x: NDArray[np.float32], n: int, copies: int, noise_fraction: tuple[float, float],
                     seed: int, *, chunk: int = _CHUNK) -> NDArray[np.float32]:
    """Fill ``x[c * n:(c + 1) * n]`` (c = 1..copies) with noisy copies of the spectra ``x[:n]``, in place.

    The noise of each copy is Gaussian with std = f x std(spectrum), f drawn uniformly in
    ``noise_fraction`` (:class:`~astroreg.preprocess.GaussianNoiseAugmenter`), computed
    ``chunk`` spectra at a time so that memory stays at the output array.

    Parameters
    ----------
    x : float32 array of shape ((copies + 1) * n, n_pixels)
        Originals in the first ``n`` rows; the rest is overwritten.
    n : int
        Number of original spectra.
    copies : int
    noise_fraction : (float, float)
    seed : int
        Seed of the noise (one draw per chunk from it).

    Returns
    -------
    numpy.ndarray
        ``x``.
    """
    if x.shape[0] != (copies + 1) * n or x.ndim != 2:
        raise ValueError(f"add_noisy_copies: x must have shape ({(copies + 1) * n}, n_pixels), got {x.shape}")
    rng = np.random.default_rng(seed)
    for s in range(0, n, chunk):
        e = min(s + chunk, n)
        aug = GaussianNoiseAugmenter(copies=copies, level=tuple(noise_fraction),
                                     seed=int(rng.integers(2**63)), include_original=False)
        noisy, _ = aug.fit_transform(x[s:e])
        noisy = noisy.reshape(copies, e - s, x.shape[1])
        for c in range(copies):
            x[(c + 1) * n + s:(c + 1) * n + e] = noisy[c]
    return x
