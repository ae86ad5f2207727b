"""Fitted transforms of inputs and targets, saved with each run.

Every transform is fitted on the training split only and stored in the run
folder, so that ``predict`` applies exactly what training saw.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray
from sklearn.preprocessing import MinMaxScaler, RobustScaler, StandardScaler

_FORWARD = {
    "none": lambda x: x,
    "log10": np.log10,
    "ln": np.log,
    "asinh": np.arcsinh,
}
TARGET_TRANSFORMS = tuple(_FORWARD)
"""Names of the target transforms."""
_INVERSE = {
    "none": lambda x: x,
    "log10": lambda x: np.power(10.0, x),
    "ln": np.exp,
    "asinh": np.sinh,
}


def _first_objects(positions: NDArray, ids: Sequence[str] | None, k: int = 5) -> list:
    """The ids of the first ``k`` of ``positions`` for an error message (the positions without ids)."""
    return [str(ids[i]) for i in positions[:k]] if ids is not None else positions[:k].tolist()


def apply_target_transform(values: NDArray, transform: str, *, name: str, ids: Sequence[str] | None = None) -> NDArray:
    """Apply a named target transform (``none``, ``log10``, ``ln``, ``asinh``).

    Parameters
    ----------
    values : array of shape (n,)
        Raw target values in their stored unit.
    transform : str
        Transform name.
    name : str
        Target name, for error messages.
    ids : sequence of str, optional
        Object ids, for error messages.

    Raises
    ------
    ValueError
        If a value is infinite (NaN is a missing label; inf is a fault of the data) or a
        logarithm meets values <= 0; the message names the target and the first objects.
    """
    if transform not in _FORWARD:
        raise ValueError(f"unknown target transform {transform!r} for {name!r}; allowed: {sorted(_FORWARD)}")
    values = np.asarray(values, dtype=np.float64)
    bad = np.flatnonzero(np.isinf(values))
    if bad.size:
        which = _first_objects(bad, ids)
        raise ValueError(
            f"target {name!r}: {bad.size} value(s) are infinite (objects {which}); a label must be finite, "
            "or NaN where it is missing: fix or drop those objects in the dataset"
        )
    if transform in ("log10", "ln"):
        bad = np.flatnonzero(np.isfinite(values) & (values <= 0))
        if bad.size:
            which = _first_objects(bad, ids)
            raise ValueError(
                f"target {name!r}: {bad.size} value(s) <= 0 cannot take {transform} (objects {which}); "
                "drop them from the dataset or choose transform: none or asinh"
            )
    return _FORWARD[transform](values)


def invert_target_transform(values: NDArray, transform: str) -> NDArray:
    """Inverse of :func:`apply_target_transform`."""
    return _INVERSE[transform](np.asarray(values, dtype=np.float64))


_SCALERS = {"standard": StandardScaler, "robust": RobustScaler, "none": None}


def _make_scaler(kind: str):
    if kind not in _SCALERS:
        raise ValueError(f"scaler kind {kind!r} is not one of {list(_SCALERS)}")
    return None if _SCALERS[kind] is None else _SCALERS[kind]()


def check_scaler(scaler: TargetScaler | FeatureScaler) -> None:
    """Raise ValueError unless a (loaded) scaler's fitted estimator is the one its ``kind`` names."""
    want = _make_scaler(scaler.kind)
    if type(scaler.scaler_) is not type(want):
        raise ValueError(
            f"{type(scaler).__name__} of kind {scaler.kind!r} holds a {type(scaler.scaler_).__name__}, "
            f"not a {type(want).__name__}"
        )


@dataclass
class TargetScaler:
    """Scale a (n, n_targets) matrix with a scikit-learn scaler fitted on training values.

    Missing values (NaN) are ignored in the fit and pass through as NaN.

    Parameters
    ----------
    kind : {"standard", "robust", "none"}
        ``StandardScaler`` (mean, std), ``RobustScaler`` (median, IQR) or identity.
    """

    kind: str = "standard"
    scaler_: object | None = field(default=None, init=False)

    def fit(self, y: NDArray) -> TargetScaler:
        """Fit on training targets of shape (n, n_targets).

        Raises
        ------
        ValueError
            If a target is infinite somewhere (NaN is a missing value, inf is not).
        """
        y = np.asarray(y, dtype=np.float64)
        if np.isinf(y).any():
            cols = np.flatnonzero(np.isinf(y).reshape(len(y), -1).any(axis=0)).tolist()
            raise ValueError(f"targets in columns {cols} are infinite; use NaN for a missing value")
        self.scaler_ = _make_scaler(self.kind)
        if self.scaler_ is not None:
            self.scaler_.fit(y)
        return self

    def transform(self, y: NDArray) -> NDArray[np.float32]:
        """Scaled targets, shape (n, n_targets), float32."""
        y = np.asarray(y, dtype=np.float64)
        out = y if self.scaler_ is None else self.scaler_.transform(y)
        return out.astype(np.float32)

    def inverse_transform(self, y: NDArray) -> NDArray[np.float64]:
        """Targets back in the (transformed) target space, float64."""
        y = np.asarray(y, dtype=np.float64)
        return y if self.scaler_ is None else self.scaler_.inverse_transform(y)

    @property
    def scale(self) -> NDArray[np.float64]:
        """Per-target scale factor (1 for identity)."""
        s = getattr(self.scaler_, "scale_", None)
        return np.ones(1) if s is None else np.asarray(s, dtype=np.float64)


@dataclass
class ImageNormalizer:
    """Centre-crop, divide by a global pixel scale fitted on training images, optionally stretch.

    Parameters
    ----------
    crop : int, optional
        Keep the central ``crop x crop`` pixels.
    scale : {"global_std", "global_mad", "none"}
        Divide by the standard deviation (or 1.4826 x MAD) of all training pixels,
        per band. Pixel values keep their linear relation to flux.
    stretch : {"none", "asinh"}
        ``asinh`` compresses bright cores after scaling.
    nonfinite : {"error", "zero"}
        What to do with NaN or inf pixels: raise, or set them to 0.
    """

    crop: int | None = None
    scale: str = "global_std"
    stretch: str = "none"
    nonfinite: str = "error"
    scale_: NDArray[np.float64] | None = field(default=None, init=False)

    def _crop(self, x: NDArray) -> NDArray:
        if self.crop is None:
            return x
        h, w = x.shape[-2:]
        if self.crop > min(h, w):
            raise ValueError(
                f"crop {self.crop} is larger than the {h}x{w} images; set inputs.crop to at most {min(h, w)}"
            )
        top, left = (h - self.crop) // 2, (w - self.crop) // 2
        return x[..., top:top + self.crop, left:left + self.crop]

    def output_shape(self, shape: tuple[int, int, int]) -> tuple[int, int, int]:
        """Per-object shape after cropping, from the stored ``(bands, H, W)``."""
        b, h, w = shape
        return (b, self.crop, self.crop) if self.crop else (b, h, w)

    def fit(self, images: NDArray, ids: Sequence[str] | None = None) -> ImageNormalizer:
        """Fit the per-band scale on a sample of training images, shape (n, bands, H, W).

        ``ids``, the objects' ids (length n), name bad images in error messages.
        """
        x = self._clean(self._crop(np.asarray(images, dtype=np.float32)), ids=ids)
        flat = np.moveaxis(x, 1, 0).reshape(x.shape[1], -1).astype(np.float64)
        if self.scale == "global_std":
            s = flat.std(axis=1)
        elif self.scale == "global_mad":
            med = np.median(flat, axis=1, keepdims=True)
            s = 1.4826 * np.median(np.abs(flat - med), axis=1)
        else:
            s = np.ones(flat.shape[0])
        self.scale_ = np.where(s > 0, s, 1.0)
        return self

    def _clean(self, x: NDArray, ids: Sequence[str] | None) -> NDArray:
        bad = ~np.isfinite(x)
        if bad.any():
            if self.nonfinite == "zero":
                x = np.where(bad, 0.0, x).astype(np.float32)
            else:
                rows = np.flatnonzero(bad.reshape(len(x), -1).any(axis=1))
                which = _first_objects(rows, ids)
                raise ValueError(
                    f"{rows.size} image(s) contain NaN or inf pixels (first: {which}); clean the data or set "
                    "nonfinite: zero on the images input (inputs.<name>.nonfinite)"
                )
        return x

    def transform(self, images: NDArray, ids: Sequence[str] | None = None) -> NDArray[np.float32]:
        """Normalised images, float32 of shape (n, bands, crop, crop)."""
        if self.scale_ is None:
            raise RuntimeError("ImageNormalizer is not fitted; call fit() on training images first")
        x = self._clean(self._crop(np.asarray(images, dtype=np.float32)), ids)
        x = x / self.scale_.astype(np.float32)[None, :, None, None]
        if self.stretch == "asinh":
            x = np.arcsinh(x)
        return np.ascontiguousarray(x, dtype=np.float32)


@dataclass
class FeatureScaler:
    """Scale tabular features (n, n_features) with a fitted scikit-learn scaler; NaN is rejected."""

    kind: str = "standard"
    columns: tuple[str, ...] = ()
    scaler_: object | None = field(default=None, init=False)

    def fit(self, x: NDArray, ids: Sequence[str] | None = None) -> FeatureScaler:
        """Fit on training features; ``ids`` (length n) name the objects of a NaN or inf error."""
        self.scaler_ = _make_scaler(self.kind)
        if self.scaler_ is not None:
            self.scaler_.fit(self._check(x, ids))
        return self

    def _check(self, x: NDArray, ids: Sequence[str] | None = None) -> NDArray[np.float64]:
        x = np.asarray(x, dtype=np.float64)
        bad = ~np.isfinite(x)
        if bad.any():
            cols = [self.columns[j] if j < len(self.columns) else str(j) for j in np.flatnonzero(bad.any(axis=0))]
            rows = np.flatnonzero(bad.any(axis=1))
            which = _first_objects(rows, ids)
            raise ValueError(
                f"features contain NaN or inf in columns {cols} for {rows.size} object(s) (first: {which}); "
                "fill or drop those rows"
            )
        return x

    def transform(self, x: NDArray, ids: Sequence[str] | None = None) -> NDArray[np.float32]:
        """Scaled features, float32; ``ids`` (length n) name the objects of a NaN or inf error."""
        x = self._check(x, ids)
        return (x if self.scaler_ is None else self.scaler_.transform(x)).astype(np.float32)


FEATURE_SCALINGS = ("none", "minmax", "standard", "robust")
"""Per-feature scalings of :func:`fit_feature_affine`."""


def fit_feature_affine(chunks: Iterable[NDArray], kind: str) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Per-feature ``(offset, scale)`` such that ``(x - offset) / scale`` is the scaling ``kind``.

    Fitted with scikit-learn on training rows given chunk by chunk (``partial_fit`` for
    ``minmax`` and ``standard``; ``robust`` needs all rows at once and joins the chunks),
    so that a large training split need not be held as one float64 array.

    Parameters
    ----------
    chunks : iterable of arrays of shape (n_rows, n_features)
        The training rows (e.g. preprocessed spectra, one feature a pixel), all finite.
    kind : {"minmax", "standard", "robust"}
        ``minmax``: offset = min, scale = max - min (``MinMaxScaler``); ``standard``: mean
        and standard deviation (``StandardScaler``); ``robust``: median and inter-quartile
        range (``RobustScaler``'s defaults). A feature constant on the training rows gets
        scale 1 (scikit-learn's rule), so it maps to 0 under ``minmax``, ``standard`` and
        ``robust`` alike instead of dividing by zero.

    Returns
    -------
    offset, scale : arrays of shape (n_features,), float64
        In the unit of the features; ``scale > 0`` everywhere.

    Raises
    ------
    ValueError
        If ``kind`` is unknown, there are no rows, or a value is NaN or infinite.

    Examples
    --------
    >>> offset, scale = fit_feature_affine([np.array([[0.0, 5.0], [2.0, 5.0]])], "minmax")
    >>> offset.tolist(), scale.tolist()
    ([0.0, 5.0], [2.0, 1.0])
    """
    makers = {"minmax": MinMaxScaler, "standard": StandardScaler, "robust": RobustScaler}
    if kind not in makers:
        raise ValueError(f"per-feature scaling {kind!r} is not one of {list(makers)}")
    scaler = makers[kind]()
    kept, n = [], 0
    for chunk in chunks:
        x = np.asarray(chunk, dtype=np.float64)
        if x.ndim != 2:
            raise ValueError(f"per-feature scaling needs rows of shape (n_rows, n_features), got shape {x.shape}")
        if not np.isfinite(x).all():
            raise ValueError(f"per-feature scaling ({kind}) met NaN or inf in {int((~np.isfinite(x)).sum())} "
                             "value(s) of the training rows; fill or drop them first")
        if not len(x):
            continue
        n += len(x)
        if kind == "robust":
            kept.append(x)
        else:
            scaler.partial_fit(x)
    if n == 0:
        raise ValueError(f"per-feature scaling ({kind}) has no training rows to fit on")
    if kind == "robust":
        scaler.fit(np.concatenate(kept))
        return scaler.center_.astype(np.float64), scaler.scale_.astype(np.float64)
    if kind == "standard":
        return scaler.mean_.astype(np.float64), scaler.scale_.astype(np.float64)
    # MinMaxScaler's scale_ is 1 / range, with a zero range treated as 1
    return scaler.data_min_.astype(np.float64), np.where(scaler.data_range_ > 0, scaler.data_range_, 1.0)


def apply_feature_affine_(x: NDArray[np.float32], offset: NDArray, scale: NDArray) -> NDArray[np.float32]:
    """``(x - offset) / scale`` in place on float32 rows of shape (n, n_features); returns ``x``.

    The fitted ``offset`` and ``scale`` of :func:`fit_feature_affine`, applied in float32 the
    same way on every path (training inputs, evaluation, the streamed prediction chunks).
    """
    x -= np.asarray(offset, dtype=np.float32)
    x /= np.asarray(scale, dtype=np.float32)
    return x
