"""The ``images`` kind: stamps ``(bands, H, W)`` from a dataset's ``/images``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from numpy.typing import NDArray

from astroreg.config import ImagesInput, InputSettings
from astroreg.data import Dataset
from astroreg.modalities._base import LazyIds, Modality, register_modality
from astroreg.preprocess._transforms import ImageNormalizer

_FIT_SAMPLE = 1024  # training images used to fit the pixel scale


@register_modality
@dataclass(eq=False)
class Images(Modality):
    """Images centre-cropped, band-selected and scaled by one factor fitted on training images.

    Settings: :class:`astroreg.config.ImagesInput` (``crop``, ``bands``, ``scale``,
    ``stretch``, ``nonfinite``). The scale is fitted on up to 1,024 training images drawn
    with the recipe's seed.
    """

    kind: ClassVar[str] = "images"
    Settings: ClassVar[type[InputSettings]] = ImagesInput
    group: ClassVar[str] = "images"
    chunk_size: ClassVar[int] = 2048
    predict_batch: ClassVar[int | None] = 256
    compile_network: ClassVar[bool] = True
    predict_threads: ClassVar[str] = "all"  # the convolutions dominate; reading keeps no core busy
    baseline_inputs: ClassVar[str] = "tabular"

    band_index: tuple[int, ...] | None = None
    images: ImageNormalizer | None = None

    def fit(self, dataset: Dataset, rows: NDArray[np.int64], *, seed: int = 0) -> Images:
        self.check_dataset(dataset)
        s = self.settings
        rng = np.random.default_rng(seed)
        sample = np.sort(rng.choice(rows, size=min(_FIT_SAMPLE, len(rows)), replace=False))
        self.images = ImageNormalizer(crop=s.crop, scale=s.scale, stretch=s.stretch, nonfinite=s.nonfinite)
        self.band_index = _band_index(s.bands, dataset)
        self.images.fit(self._select_bands(dataset.read_images(sample)), ids=LazyIds(dataset, sample))
        b, h, w = dataset.image_spec.shape
        self.shape = self.images.output_shape((len(self.band_index or range(b)), h, w))
        return self

    def transform(self, dataset: Dataset, rows: NDArray | slice, *,
                  out: NDArray[np.float32] | None = None) -> NDArray[np.float32]:
        # Bad images are named by id, whether rows is an index array or a slice of a chunk.
        return self.images.transform(self._select_bands(dataset.read_images(rows)), ids=LazyIds(dataset, rows))

    @classmethod
    def shape_from_settings(cls, settings: ImagesInput, dataset: Dataset | None) -> tuple[int, ...]:
        if dataset is not None:
            b, h, w = dataset.image_spec.shape
            b = len(settings.bands) if settings.bands else b
            return (b, settings.crop, settings.crop) if settings.crop else (b, h, w)
        if settings.crop:
            return (len(settings.bands) if settings.bands else 1, settings.crop, settings.crop)
        raise ValueError("set inputs.<name>.crop (and bands for more than one band) to fix the image shape")

    def check_dataset(self, dataset: Dataset) -> None:
        """The dataset has images, and (once fitted) the bands and size this input was trained on."""
        super().check_dataset(dataset)
        if self.images is None:
            return
        spec = dataset.image_spec
        if self.band_index is not None and max(self.band_index) >= len(spec.bands):
            raise ValueError(
                f"input {self.name!r} reads image bands {list(self.band_index)} (0-based) but {dataset.path} has "
                f"only {len(spec.bands)} ({list(spec.bands)})"
            )
        if self.band_index is None and len(spec.bands) != self.shape[0]:
            raise ValueError(
                f"input {self.name!r} was trained on {self.shape[0]} band(s), {dataset.path} has "
                f"{len(spec.bands)} ({list(spec.bands)})"
            )
        if self.images.crop is None and (spec.height, spec.width) != tuple(self.shape[1:]):
            raise ValueError(
                f"input {self.name!r} expects {self.shape[1]}x{self.shape[2]} images, {dataset.path} has "
                f"{spec.height}x{spec.width}"
            )

    def check_loaded(self) -> None:
        super().check_loaded()
        if self.images is None:
            raise ValueError(f"input {self.name!r} (images) has no fitted image normaliser")
        self.images.transform(np.zeros((1, *self.shape)))

    def _select_bands(self, images: NDArray) -> NDArray:
        return images if self.band_index is None else images[:, list(self.band_index)]


def _band_index(bands, dataset: Dataset) -> tuple[int, ...] | None:
    if bands is None:
        return None
    have = list(dataset.image_spec.bands)
    missing = [b for b in bands if b not in have]
    if missing:
        raise ValueError(f"inputs bands {missing} not in {dataset.path}; its bands are {have}")
    return tuple(have.index(b) for b in bands)
