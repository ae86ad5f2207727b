"""The ``tabular`` kind: catalogue columns from a dataset's ``/tabular``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from numpy.typing import NDArray

from astroreg.config import InputSettings, TabularInput
from astroreg.data import Dataset
from astroreg.modalities._base import LazyIds, Modality, register_modality, row_index
from astroreg.preprocess._transforms import FeatureScaler, check_scaler


@register_modality
@dataclass(eq=False)
class Tabular(Modality):
    """Numeric catalogue columns scaled by a scaler fitted on the training split.

    Settings: :class:`astroreg.config.TabularInput` (``columns``, default all; ``scaling``
    none, standard or robust).
    """

    kind: ClassVar[str] = "tabular"
    Settings: ClassVar[type[InputSettings]] = TabularInput
    group: ClassVar[str] = "tabular"
    baseline_inputs: ClassVar[str] = "tabular"

    columns: tuple[str, ...] = ()
    features: FeatureScaler | None = None

    def fit(self, dataset: Dataset, rows: NDArray[np.int64], *, seed: int = 0) -> Tabular:
        self.check_dataset(dataset)
        self.columns = tuple(self.settings.columns or dataset.tabular_columns)
        self.features = FeatureScaler(kind=self.settings.scaling, columns=self.columns)
        self.features.fit(dataset.tabular(self.columns, rows).to_numpy(dtype=np.float64), ids=LazyIds(dataset, rows))
        self.shape = (len(self.columns),)
        return self

    def transform(self, dataset: Dataset, rows: NDArray | slice, *,
                  out: NDArray[np.float32] | None = None) -> NDArray[np.float32]:
        idx = row_index(dataset, rows)
        return self.features.transform(dataset.tabular(self.columns, idx).to_numpy(dtype=np.float64),
                                       ids=LazyIds(dataset, idx))

    @classmethod
    def shape_from_settings(cls, settings: TabularInput, dataset: Dataset | None) -> tuple[int, ...]:
        if dataset is not None:
            return (len(settings.columns or dataset.tabular_columns),)
        if settings.columns:
            return (len(settings.columns),)
        raise ValueError("set inputs.<name>.columns to fix the number of tabular features")

    def check_loaded(self) -> None:
        super().check_loaded()
        if self.features is None:
            raise ValueError(f"input {self.name!r} (tabular) has no fitted feature scaler")
        check_scaler(self.features)
        self.features.transform(np.zeros((1, *self.shape)))

    def tabular_columns(self) -> tuple[str, ...]:
        return self.columns
