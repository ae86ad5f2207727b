"""The fitted preprocessing of one recipe: its named inputs and its targets, saved with the run."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from astroreg.config import Recipe
from astroreg.data import Dataset, atomic_write_text
from astroreg.modalities import _serialise
from astroreg.modalities._base import LazyIds, Modality, create_input, get_modality
from astroreg.preprocess._transforms import (
    TARGET_TRANSFORMS,
    TargetScaler,
    apply_target_transform,
    check_scaler,
    invert_target_transform,
)


def check_targets_present(recipe: Recipe, dataset: Dataset) -> None:
    """Raise a clear error when a recipe target is not in the dataset."""
    for t in recipe.targets:
        if t.source not in dataset.target_names:
            raise ValueError(
                f"target {t.name!r} reads dataset target {t.source!r}, which {dataset.path} does not have; "
                f"its targets are {list(dataset.target_names)}: set targets[].column in the recipe"
            )


def raw_targets(recipe: Recipe, dataset: Dataset, rows: NDArray | None = None) -> NDArray[np.float64]:
    """Recipe targets (after their transforms, before scaling), shape (n, n_targets)."""
    check_targets_present(recipe, dataset)
    ids = LazyIds(dataset, rows)
    cols = [
        apply_target_transform(dataset.target(t.source, rows), t.transform, name=t.name, ids=ids)
        for t in recipe.targets
    ]
    return np.stack(cols, axis=1)


@dataclass
class RecipePreprocessor:
    """The named inputs and the targets of a recipe, fitted on its training split.

    Attributes
    ----------
    inputs : dict of str to Modality
        One fitted plug-in per named input, in the recipe's order.
    targets : TargetScaler
        Scaling of the (transformed) targets.
    """

    target_names: tuple[str, ...]
    target_transforms: tuple[str, ...]
    target_units: tuple[str, ...]
    target_sources: tuple[str, ...] = ()
    source_units: tuple[str, ...] = ()
    inputs: dict[str, Modality] = field(default_factory=dict)
    targets: TargetScaler = field(default_factory=TargetScaler)

    @classmethod
    def fit(cls, recipe: Recipe, dataset: Dataset, train_rows: NDArray) -> RecipePreprocessor:
        """Fit every input's preprocessing and the target scaling on the training rows of ``dataset``."""
        units = tuple(t.unit or _derived_unit(dataset.unit(t.source), t.transform) for t in recipe.targets)
        self = cls(
            target_names=tuple(recipe.target_names),
            target_transforms=tuple(t.transform for t in recipe.targets),
            target_units=units,
            target_sources=tuple(t.source for t in recipe.targets),
            source_units=tuple(dataset.unit(t.source) for t in recipe.targets),
        )
        for name, settings in recipe.inputs.items():
            self.inputs[name] = create_input(name, settings).fit(dataset, train_rows, seed=recipe.training.seed)
        y = raw_targets(recipe, dataset, train_rows)
        _check_target_spread(y, self.target_names, dataset)
        self.targets = TargetScaler(kind=recipe.preprocess.targets).fit(y)
        return self

    # -- what the inputs are -------------------------------------------------------------
    @property
    def input_shapes(self) -> dict[str, tuple[int, ...]]:
        """``{input name: per-object shape}``."""
        return {name: tuple(m.shape) for name, m in self.inputs.items()}

    @property
    def input_kinds(self) -> dict[str, str]:
        """``{input name: kind}``."""
        return {name: m.kind for name, m in self.inputs.items()}

    @property
    def single(self) -> Modality | None:
        """The one input of a single-input recipe, else None."""
        return next(iter(self.inputs.values())) if len(self.inputs) == 1 else None

    @property
    def n_features(self) -> int:
        """Number of values per object over every input, flattened."""
        return int(sum(np.prod(s) for s in self.input_shapes.values()))

    # -- application ---------------------------------------------------------------------
    def transform(self, dataset: Dataset, rows: NDArray | slice) -> dict[str, NDArray[np.float32]]:
        """Network inputs of ``rows``: ``{name: float32 array of shape (n, *shape)}``."""
        return {name: m.transform(dataset, rows) for name, m in self.inputs.items()}

    def flat_inputs(self, dataset: Dataset, rows: NDArray | slice) -> NDArray[np.float32]:
        """Every input of ``rows`` flattened and side by side, float32 of shape (n, :attr:`n_features`)."""
        return self.flatten(self.transform(dataset, rows))

    def flatten(self, x: dict[str, NDArray]) -> NDArray[np.float32]:
        """``{name: (n, *shape)}`` to one (n, n_features) float32 array, inputs in the recipe's order."""
        parts = [np.asarray(x[name], dtype=np.float32).reshape(len(x[name]), -1) for name in self.inputs]
        return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)

    def coverage(self, dataset: Dataset, rows: NDArray | slice) -> NDArray[np.float64] | None:
        """Least usable fraction of each object over the inputs that have one (spectra); None if none has."""
        values = [c for c in (m.coverage(dataset, rows) for m in self.inputs.values()) if c is not None]
        return None if not values else np.minimum.reduce(values)

    def guaranteed_coverage(self, dataset: Dataset) -> float:
        """Least :meth:`coverage` every object of ``dataset`` is known to have without reading it."""
        return min(m.guaranteed_coverage(dataset) for m in self.inputs.values())

    def tabular_inputs(self) -> tuple[str, ...]:
        """Dataset columns that some input reads from ``/tabular``."""
        return tuple(c for m in self.inputs.values() for c in m.tabular_columns())

    def scale_targets(self, y: NDArray) -> NDArray[np.float32]:
        """Transformed targets (n, n_targets) to the network's scaled space."""
        return self.targets.transform(y)

    def unscale_targets(self, y: NDArray) -> NDArray[np.float64]:
        """Network outputs (n, n_targets) back to the targets' units."""
        return self.targets.inverse_transform(y)

    def source_columns(self, y: NDArray) -> dict[str, tuple[NDArray[np.float64], str]]:
        """Transformed targets (n, n_targets) back in their dataset quantities.

        Returns ``{"<source>_pred": (values, unit)}`` for every target with a transform,
        e.g. ``total_flux_pred`` in ADU for a ``log10`` flux target.
        """
        out = {}
        for j, (name, transform) in enumerate(zip(self.target_names, self.target_transforms)):
            source = self.target_sources[j] if self.target_sources else name
            if transform != "none" and source != name:
                unit = self.source_units[j] if self.source_units else ""
                out[f"{source}_pred"] = (invert_target_transform(y[:, j], transform), unit)
        return out

    # -- persistence ---------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Write atomically as plain JSON (``preprocessors.json`` in a run folder).

        The file holds data only: the fields, each input as its kind, settings and fitted
        state, and each fitted transform as an allow-listed class name, its parameters
        and its fitted arrays, so that :meth:`load` runs no code from it (see
        :mod:`astroreg.modalities._serialise`).
        """
        return atomic_write_text(path, _serialise.dumps(self))

    @staticmethod
    def load(path: str | os.PathLike) -> RecipePreprocessor:
        """Read a preprocessor written by :meth:`save`, checking it before use.

        Raises
        ------
        ValueError
            If the file is truncated, not JSON, of another format version, names a class
            or an input kind astroreg does not store, lacks a field, or its fields do not
            fit together; or if it is an old pickle (``preprocessors.joblib``), which is
            never unpickled.
        """
        return _serialise.load_json(path, RecipePreprocessor, check=RecipePreprocessor._check_loaded)

    def _check_loaded(self) -> None:
        """Raise ValueError unless the fields of a loaded preprocessor fit together.

        Every input and the target scaler are tried on one zero input of the stored
        shapes: a doctored array of the wrong length fails here, not in a prediction.
        """
        n = len(self.target_names)
        per_target = (self.target_transforms, self.target_units, self.target_sources, self.source_units)
        if n == 0 or any(len(v) not in (0, n) for v in per_target) or len(self.target_transforms) != n:
            raise ValueError(f"{n} target name(s) but per-target lists of lengths {[len(v) for v in per_target]}")
        unknown = sorted(set(self.target_transforms) - set(TARGET_TRANSFORMS))
        if unknown:
            raise ValueError(f"target transforms {unknown} are not among {list(TARGET_TRANSFORMS)}")
        if not self.inputs:
            raise ValueError("no inputs")
        for name, m in self.inputs.items():
            if not isinstance(m, Modality) or m.name != name:
                raise ValueError(f"input {name!r} is not a fitted input of that name")
            m.check_loaded()
        check_scaler(self.targets)
        self.targets.inverse_transform(self.targets.transform(np.zeros((1, n))))


def recipe_input_shapes(recipe: Recipe) -> dict[str, tuple[int, ...]]:
    """``{input name: per-object shape}`` of a recipe, from its dataset when the file exists.

    Without the file, each kind says what fixes its shape (e.g. ``crop`` for images,
    ``columns`` for tables); spectra never need the file.
    """
    path = Path(recipe.dataset.path)
    out = {}
    ds = Dataset(path) if path.exists() else None
    try:
        for name, settings in recipe.inputs.items():
            try:
                out[name] = get_modality(settings.kind).shape_from_settings(settings, ds)
            except ValueError as err:
                raise ValueError(
                    f"cannot tell the shape of input {name!r} of recipe {recipe.name!r}: dataset {path} does not "
                    f"exist and {str(err).replace('<name>', name)}"
                ) from None
    finally:
        if ds is not None:
            ds.close()
    return out


def _check_target_spread(y: NDArray, names: tuple[str, ...], dataset: Dataset) -> None:
    """Refuse, before training, a target that has no labelled or no varying value on the training split.

    A constant target cannot be learned: the scaler divides by a zero spread (scikit-learn
    then uses 1), the network learns the constant and r2 comes out as 0, 1 or NaN, which
    reads as a result. An error, not a warning, because the run would be wasted either way
    and a warning is easy to miss in a long training log.
    """
    for j, name in enumerate(names):
        known = y[:, j][np.isfinite(y[:, j])]
        if known.size == 0:
            raise ValueError(
                f"target {name!r} has no labelled value (all NaN) on the training split of {dataset.path}; "
                "drop it from the recipe's targets or fix the data"
            )
        if known.min() == known.max():
            raise ValueError(
                f"target {name!r} has the same value ({known[0]:.6g}) for all {known.size} labelled objects of the "
                f"training split of {dataset.path}; a constant cannot be learned and its r2 would mean nothing: "
                "drop it from the recipe's targets or fix the data"
            )


def _derived_unit(unit: str, transform: str) -> str:
    if transform == "none":
        return unit
    return f"{transform}({unit})" if unit else transform
