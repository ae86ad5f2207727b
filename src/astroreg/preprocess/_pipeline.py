"""The fitted preprocessing of one recipe: inputs and targets, saved with the run."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from astroreg.config import Recipe
from astroreg.data import Dataset, atomic_write_text
from astroreg.data._ingest_spectra import (
    PREPARED_BAD_BITS,
    PREPARED_BAD_PIXELS,
    PREPARED_GRID,
    PREPARED_MIN_GOOD,
    PREPARED_REDSHIFT,
    PREPARED_REST_FRAME,
)
from astroreg.preprocess import _serialise
from astroreg.preprocess._spectra import (
    LogLamResampler,
    SpectrumStandardizer,
    redshift_velocity,
    standardize_rows_,
)
from astroreg.preprocess._transforms import (
    TARGET_TRANSFORMS,
    FeatureScaler,
    ImageNormalizer,
    TargetScaler,
    apply_target_transform,
    check_scaler,
    invert_target_transform,
)

_FIT_SAMPLE = 1024  # training images used to fit the pixel scale


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
    ids = _LazyIds(dataset, rows)
    cols = [
        apply_target_transform(dataset.target(t.source, rows), t.transform, name=t.name, ids=ids)
        for t in recipe.targets
    ]
    return np.stack(cols, axis=1)


class _LazyIds:
    """The ids of ``rows``, read from the dataset only when an error message asks for one.

    Decoding every id of a large dataset costs ~0.3 us an object, as much as writing the
    predictions to Parquet; the target transforms need them only to name bad objects.
    """

    def __init__(self, dataset: Dataset, rows: NDArray | slice | None) -> None:
        self._dataset, self._rows, self._ids = dataset, rows, None

    def __getitem__(self, i):
        if self._ids is None:
            self._ids = self._dataset.ids if self._rows is None else self._dataset.ids[self._rows]
        return self._ids[i]

    def __len__(self) -> int:
        if isinstance(self._rows, slice):
            return len(range(len(self._dataset))[self._rows])
        return len(self._dataset) if self._rows is None else len(self._rows)


@dataclass
class RecipePreprocessor:
    """Inputs and targets of a recipe, fitted on its training split.

    Attributes
    ----------
    modality : str
        ``images``, ``spectra`` or ``tabular``.
    input_shape : tuple of int
        Per-object network input shape after preprocessing.
    """

    modality: str
    target_names: tuple[str, ...]
    target_transforms: tuple[str, ...]
    target_units: tuple[str, ...]
    target_sources: tuple[str, ...] = ()
    source_units: tuple[str, ...] = ()
    columns: tuple[str, ...] = ()
    band_index: tuple[int, ...] | None = None
    images: ImageNormalizer | None = None
    spectra: LogLamResampler | None = None
    standardizer: SpectrumStandardizer | None = None
    rest_frame_column: str | None = None
    missing_rv: str = "error"
    redshift_column: str = "Z"
    features: FeatureScaler | None = None
    targets: TargetScaler = field(default_factory=TargetScaler)
    input_shape: tuple[int, ...] = ()

    @classmethod
    def fit(cls, recipe: Recipe, dataset: Dataset, train_rows: NDArray) -> RecipePreprocessor:
        """Fit every transform on the training rows of ``dataset``."""
        modality = recipe.inputs.modality
        if modality not in dataset.modalities:
            raise ValueError(
                f"recipe {recipe.name!r} wants inputs.modality {modality!r} but {dataset.path} has "
                f"{list(dataset.modalities)}; change inputs.modality or use another dataset"
            )
        units = tuple(t.unit or _derived_unit(dataset.unit(t.source), t.transform) for t in recipe.targets)
        self = cls(
            modality=modality,
            target_names=tuple(recipe.target_names),
            target_transforms=tuple(t.transform for t in recipe.targets),
            target_units=units,
            target_sources=tuple(t.source for t in recipe.targets),
            source_units=tuple(dataset.unit(t.source) for t in recipe.targets),
        )
        rng = np.random.default_rng(recipe.training.seed)
        sample = np.sort(rng.choice(train_rows, size=min(_FIT_SAMPLE, len(train_rows)), replace=False))
        if modality == "images":
            p = recipe.preprocess.images
            self.images = ImageNormalizer(crop=recipe.inputs.crop, scale=p.scale, stretch=p.stretch,
                                          nonfinite=p.nonfinite)
            self.band_index = _band_index(recipe.inputs.bands, dataset)
            self.images.fit(self._select_bands(dataset.read_images(sample)), ids=_LazyIds(dataset, sample))
            b, h, w = dataset.image_spec.shape
            self.input_shape = self.images.output_shape((len(self.band_index or range(b)), h, w))
        elif modality == "tabular":
            self.columns = tuple(recipe.inputs.columns or dataset.tabular_columns)
            self.features = FeatureScaler(kind=recipe.preprocess.features, columns=self.columns)
            self.features.fit(dataset.tabular(self.columns, train_rows).to_numpy(dtype=np.float64),
                              ids=_LazyIds(dataset, train_rows))
            self.input_shape = (len(self.columns),)
        elif modality == "spectra":
            p = recipe.preprocess.spectra
            lo, hi, n_pixels = p.grid
            mask = dataset.spectra.get("mask")
            bad_bits = None if mask is None or "bad_bits" not in mask.attrs else int(mask.attrs["bad_bits"])
            self.spectra = LogLamResampler(loglam_min=lo, loglam_max=hi, n_pixels=n_pixels,
                                           bad_pixels=p.bad_pixels, bad_mask_bits=bad_bits).fit()
            if p.standardize:
                # Nothing is learned per dataset; fit only records the number of pixels.
                self.standardizer = SpectrumStandardizer(fill_bad=0.0).fit(np.zeros((1, n_pixels)))
            self.rest_frame_column = p.rest_frame_column
            self.missing_rv, self.redshift_column = p.missing_rv, p.redshift_column
            if self.rest_frame_column is not None:
                # Fail before training, not when the test split is read, on a missing RV.
                self._radial_velocity(dataset, np.arange(len(dataset)))
            self.input_shape = (n_pixels,)
        else:
            raise ValueError(f"inputs.modality {modality!r} is not one of images, spectra, tabular")
        y = raw_targets(recipe, dataset, train_rows)
        _check_target_spread(y, self.target_names, dataset)
        self.targets = TargetScaler(kind=recipe.preprocess.targets).fit(y)
        return self

    # -- application ----------------------------------------------------------------
    def inputs(self, dataset: Dataset, rows: NDArray | slice, *, out: NDArray[np.float32] | None = None,
               standardize: bool = True) -> NDArray[np.float32]:
        """Network inputs for ``rows``, float32 of shape (n, *input_shape).

        Spectra already prepared at ingest for this recipe (:meth:`spectra_prepared`) are
        only read (the flux alone) and standardised in place; ``out``, a C-contiguous
        float32 array of at least ``n`` rows, then receives them (its first ``n`` rows are
        returned), so that a caller streaming chunks reuses its buffers. Otherwise ``out``
        is ignored. ``standardize=False`` returns prepared spectra as stored, not
        standardised (for a network that standardises inside its first layer:
        :func:`astroreg.models._fast.fold_standardization`); other inputs ignore it.
        """
        if self.modality == "images":
            # Bad images are named by id, whether rows is an index array or a slice of a chunk.
            ids = _LazyIds(dataset, rows)
            return self.images.transform(self._select_bands(dataset.read_images(rows)), ids=ids)
        if self.modality == "spectra" and self.spectra_prepared(dataset):
            return self.prepared_inputs(dataset, rows, out=out, standardize=standardize)
        idx = np.arange(len(dataset))[rows] if isinstance(rows, slice) else rows
        if self.modality == "spectra":
            return self._spectra_inputs(dataset, np.asarray(idx))
        return self.features.transform(dataset.tabular(self.columns, idx).to_numpy(dtype=np.float64),
                                       ids=_LazyIds(dataset, idx))

    def spectra_prepared(self, dataset: Dataset) -> bool:
        """Whether ``dataset``'s spectra need only standardising: prepared at ingest for this recipe.

        True when ``astroreg ingest sdss-spectra --grid ... [--rest-frame COLUMN]`` resampled
        them (its ``/spectra`` attributes ``prepared_*``) onto exactly this recipe's grid,
        with its bad-pixel handling and bad mask bits, and shifted them by its
        ``rest_frame_column`` (or not at all when it has none). The ingest took a missing
        velocity from the redshift ``Z`` (the recipe's ``missing_rv: redshift``).

        Raises
        ------
        ValueError
            If the spectra were shifted at ingest by another column than the recipe's (or
            by one when the recipe wants none): that cannot be undone here.
        """
        if self.modality != "spectra":
            return False
        plan = self._spectra_plan(dataset)
        return plan is not None and plan[0]

    def _spectra_plan(self, dataset: Dataset) -> tuple[bool, bool] | None:
        """``(prepared, shifted)`` from the ``/spectra`` attributes; ``None`` for native spectra."""
        attrs = dataset.spectra.attrs
        if PREPARED_GRID not in attrs:
            return None
        done = str(attrs.get(PREPARED_REST_FRAME, "")) or None
        if done is None and self.rest_frame_column is not None:
            return False, False  # observed frame: resampled again, with the recipe's shift
        if done != self.rest_frame_column:
            want = f"rest_frame_column {self.rest_frame_column!r}" if self.rest_frame_column else "the observed frame"
            again = f"--rest-frame {self.rest_frame_column}" if self.rest_frame_column else "without --rest-frame"
            raise ValueError(
                f"the spectra of {dataset.path} were shifted to the rest frame of {done!r} at ingest "
                f"(--rest-frame), but the run's recipe wants {want}; a shift cannot be undone: re-ingest "
                f"{again}, or train with preprocess.spectra.rest_frame_column: {done}"
            )
        lo, hi, n = (float(v) for v in np.asarray(attrs[PREPARED_GRID]).ravel()[:3])
        res = self.spectra
        bits = attrs.get(PREPARED_BAD_BITS)
        prepared = (
            int(n) == int(res.n_pixels) and lo == float(res.loglam_min) and hi == float(res.loglam_max)
            and str(attrs.get(PREPARED_BAD_PIXELS, "")) == res.bad_pixels
            and bits is not None and res.bad_mask_bits is not None and int(bits) == int(res.bad_mask_bits)
            # A missing RV was taken from the redshift at ingest, as the recipe would.
            and (done is None or (self.missing_rv == "redshift"
                                  and str(attrs.get(PREPARED_REDSHIFT, "")) == self.redshift_column))
        )
        return prepared, done is not None

    def prepared_inputs(self, dataset: Dataset, rows: NDArray | slice, *, out: NDArray | None = None,
                        standardize: bool = True) -> NDArray[np.float32]:
        """:meth:`inputs` of a dataset for which :meth:`spectra_prepared` is True, without checking it again.

        For a caller streaming chunks of one dataset: the check reads the ``/spectra``
        attributes, ~0.5 ms a chunk.
        """
        flux = dataset.spectra["flux"]
        if not standardize and self.standardizer is not None and isinstance(rows, slice):
            # folded into the network: the flux goes in as stored, so map it instead of copying it
            view = dataset.row_view("spectra/flux", rows)
            if view is not None and view.dtype == np.float32:
                return view
        if isinstance(rows, slice) and rows.step in (None, 1):
            start, stop, _ = rows.indices(len(dataset))
            n = max(stop - start, 0)
            if out is None or out.dtype != np.float32 or not out.flags.c_contiguous or len(out) < n \
                    or out.shape[1:] != flux.shape[1:]:
                out = np.empty((n, flux.shape[1]), np.float32)
            x = out[:n]
            if n:
                flux.read_direct(x, np.s_[start:stop], np.s_[0:n])
        else:
            x = np.ascontiguousarray(dataset.read_rows(flux, rows), dtype=np.float32)
        if self.standardizer is not None:
            if standardize:
                standardize_rows_(x)
        else:
            np.nan_to_num(x, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
        return x

    def _spectra_inputs(self, dataset: Dataset, rows: NDArray) -> NDArray[np.float32]:
        """Resampled (rest-frame) and standardised spectra, float32 of shape (n, n_pixels)."""
        g = dataset.spectra
        keys = ["flux", "wavelength"] + [k for k in ("ivar", "mask") if k in g]
        arrays = dataset.read_spectra(rows, keys=keys)
        with np.errstate(divide="ignore", invalid="ignore"):
            loglam = np.log10(np.asarray(arrays["wavelength"], dtype=np.float64))
        plan = self._spectra_plan(dataset)
        shifted = plan is not None and plan[1]  # already in the rest frame (ingest --rest-frame)
        rv = None if self.rest_frame_column is None or shifted else self._radial_velocity(dataset, rows)
        # ivar only marks the bad input pixels here: its propagation to the grid is skipped.
        flux, _ = self.spectra.transform(arrays["flux"], loglam=loglam, ivar=arrays.get("ivar"),
                                         mask=arrays.get("mask"), rv_kms=rv, return_ivar=False)
        if self.standardizer is not None:
            # Over every finite pixel, clamped ends included (the paper's choice); masked
            # pixels (NaN) become 0, the spectrum's mean.
            flux = self.standardizer.transform(flux)
        return np.nan_to_num(flux, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32, copy=False)

    def coverage(self, dataset: Dataset, rows: NDArray | slice) -> NDArray[np.float64] | None:
        """Fraction of good pixels on the recipe's grid for each of ``rows``, shape (n,); None but for spectra.

        A grid pixel is good where its resampled ``ivar`` would be positive: inside the
        spectrum's coverage (in the rest frame when the recipe shifts it) with both
        neighbouring input pixels good (finite flux, ``ivar > 0``, no bad mask bit), the
        rule of ``ingest sdss-spectra --min-good-fraction``. Spectra stored on this grid at
        ingest are judged by their stored ``ivar``; others by the input pixels, without
        resampling the flux. Images and tables have no coverage: None.
        """
        if self.modality != "spectra":
            return None
        from astroreg.preprocess._spectra import _bad_pixels, doppler_loglam_shift

        idx = np.arange(len(dataset))[rows] if isinstance(rows, slice) else np.asarray(rows)
        g = dataset.spectra
        plan = self._spectra_plan(dataset)
        if plan is not None and plan[0]:
            key = "ivar" if "ivar" in g else "flux"
            stored = dataset.read_rows(g[key], idx)
            return np.mean(stored > 0 if key == "ivar" else np.isfinite(stored), axis=1, dtype=np.float64)
        arrays = dataset.read_spectra(idx, keys=["flux", "wavelength"] + [k for k in ("ivar", "mask") if k in g])
        with np.errstate(divide="ignore", invalid="ignore"):
            loglam = np.log10(np.asarray(arrays["wavelength"], dtype=np.float64))
        good = ~_bad_pixels(arrays["flux"], arrays.get("ivar"), arrays.get("mask"), self.spectra.bad_mask_bits)
        shifted = plan is not None and plan[1]
        rv = None if self.rest_frame_column is None or shifted else self._radial_velocity(dataset, idx)
        shift = np.zeros(len(idx)) if rv is None else np.broadcast_to(doppler_loglam_shift(rv), (len(idx),))
        grid = self.spectra.grid_
        out = np.empty(len(idx), np.float64)
        for i in range(len(idx)):
            x = loglam if loglam.ndim == 1 else loglam[i]
            ok = np.isfinite(x)
            # Linear interpolation of the good-pixel indicator is 1 exactly where both neighbours are good.
            frac = np.interp(grid, x[ok] - shift[i], good[i][ok].astype(np.float64), left=0.0, right=0.0)
            out[i] = np.mean(frac >= 1.0)
        return out

    def guaranteed_coverage(self, dataset: Dataset) -> float:
        """Least :meth:`coverage` that every object of ``dataset`` is known to have, without reading it.

        Spectra prepared at ingest for this recipe (:meth:`spectra_prepared`) were skipped
        below ``--min-good-fraction`` on this very grid (``/spectra`` attribute
        ``prepared_min_good_fraction``); otherwise nothing is known: 0.
        """
        if not self.spectra_prepared(dataset):
            return 0.0
        return float(dataset.spectra.attrs.get(PREPARED_MIN_GOOD, 0.0))

    def _radial_velocity(self, dataset: Dataset, rows: NDArray) -> NDArray[np.float64]:
        """RVs in km/s; missing ones from the redshift column when ``missing_rv == "redshift"``."""
        fallback = self.redshift_column if self.missing_rv == "redshift" else None
        return _radial_velocity(dataset, self.rest_frame_column, rows, fallback_redshift=fallback)

    def _select_bands(self, images: NDArray) -> NDArray:
        return images if self.band_index is None else images[:, list(self.band_index)]

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

    # -- persistence ------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Write atomically as plain JSON (``preprocessors.json`` in a run folder).

        The file holds data only: the fields, and each fitted transform as an
        allow-listed class name, its parameters and its fitted arrays, so that
        :meth:`load` runs no code from it (see :mod:`astroreg.preprocess._serialise`).
        """
        return atomic_write_text(path, _serialise.dumps(self))

    @staticmethod
    def load(path: str | os.PathLike) -> RecipePreprocessor:
        """Read a preprocessor written by :meth:`save`, checking it before use.

        Raises
        ------
        ValueError
            If the file is truncated, not JSON, of another format version, names a class
            astroreg does not store, lacks a field, or its fields do not fit together; or
            if it is an old pickle (``preprocessors.joblib``), which is never unpickled.
        """
        return _serialise.load_json(path, RecipePreprocessor, check=RecipePreprocessor._check_loaded)

    def _check_loaded(self) -> None:
        """Raise ValueError unless the fields of a loaded preprocessor fit together.

        The transforms are tried on one zero input of the stored shapes: a doctored
        array of the wrong length fails here, not in the middle of a prediction.
        """
        n = len(self.target_names)
        per_target = (self.target_transforms, self.target_units, self.target_sources, self.source_units)
        if n == 0 or any(len(v) not in (0, n) for v in per_target) or len(self.target_transforms) != n:
            raise ValueError(f"{n} target name(s) but per-target lists of lengths {[len(v) for v in per_target]}")
        unknown = sorted(set(self.target_transforms) - set(TARGET_TRANSFORMS))
        if unknown:
            raise ValueError(f"target transforms {unknown} are not among {list(TARGET_TRANSFORMS)}")
        if not self.input_shape or min(self.input_shape) < 1:
            raise ValueError(f"input_shape {self.input_shape} is not a shape")
        need = {"images": self.images, "tabular": self.features, "spectra": self.spectra}
        if self.modality not in need or need[self.modality] is None:
            raise ValueError(f"modality {self.modality!r} without its transform")
        for scaler in (self.targets, self.features):
            if scaler is not None:
                check_scaler(scaler)
        self.targets.inverse_transform(self.targets.transform(np.zeros((1, n))))
        zero = np.zeros((1, *self.input_shape))
        if self.modality == "images":
            self.images.transform(zero)
        elif self.modality == "tabular":
            self.features.transform(zero)
        else:
            n = self.input_shape[0]
            std = n if self.standardizer is None else self.standardizer.n_pixels_
            grid = self.spectra._grid()
            if grid.shape != (n,) or self.spectra.n_pixels != n or std != n or len(self.input_shape) != 1:
                raise ValueError(f"a spectra grid of {grid.shape} pixels (standardiser: {std}) does "
                                 f"not give input_shape {self.input_shape}")


def recipe_input_shape(recipe: Recipe) -> tuple[int, ...]:
    """Per-object network input shape of a recipe, from its dataset when the file exists.

    Without the file, image recipes need ``inputs.crop`` (and ``inputs.bands`` for
    more than one band) and tabular recipes ``inputs.columns``. Spectra recipes never
    need the file: the shape is ``(n_pixels,)`` of ``preprocess.spectra.grid``.
    """
    path = Path(recipe.dataset.path)
    inp = recipe.inputs
    if path.exists():
        with Dataset(path) as ds:
            if inp.modality == "images":
                b, h, w = ds.image_spec.shape
                b = len(inp.bands) if inp.bands else b
                return (b, inp.crop, inp.crop) if inp.crop else (b, h, w)
            if inp.modality == "tabular":
                return (len(inp.columns or ds.tabular_columns),)
    if inp.modality == "spectra":
        return (int(recipe.preprocess.spectra.grid[2]),)
    if inp.modality == "images" and inp.crop:
        return (len(inp.bands) if inp.bands else 1, inp.crop, inp.crop)
    if inp.modality == "tabular" and inp.columns:
        return (len(inp.columns),)
    raise ValueError(
        f"cannot tell the input shape of recipe {recipe.name!r}: dataset {path} does not exist and the recipe "
        "does not fix it (set inputs.crop for images or inputs.columns for tabular data)"
    )


def _radial_velocity(dataset: Dataset, column: str, rows: NDArray, *,
                     fallback_redshift: str | None = None) -> NDArray[np.float64]:
    """Radial velocities in km/s of ``rows`` from a tabular column (or a target, as ingest writes RV_ADOP).

    Missing values (NaN, as -9999 is stored) are taken from the redshift column
    ``fallback_redshift`` when given, with ``v = c ((1+z)^2 - 1) / ((1+z)^2 + 1)``, the
    inverse of the relativistic Doppler relation the rest-frame shift uses.
    """
    if column in dataset.tabular_columns:
        rv = dataset.tabular([column], rows)[column].to_numpy(dtype=np.float64)
    elif column in dataset.target_names:
        rv = np.asarray(dataset.target(column, rows), dtype=np.float64)
    else:
        raise ValueError(
            f"preprocess.spectra.rest_frame_column {column!r} is not in {dataset.path}; its tabular columns are "
            f"{list(dataset.tabular_columns)} and targets {list(dataset.target_names)}: name the radial-velocity "
            "column (km/s) or set rest_frame_column: null"
        )
    bad = ~np.isfinite(rv)
    if bad.any() and fallback_redshift is not None and fallback_redshift in dataset.tabular_columns:
        z = dataset.tabular([fallback_redshift], np.asarray(rows)[bad])[fallback_redshift].to_numpy(np.float64)
        rv = rv.copy()
        rv[bad] = redshift_velocity(z)
        bad = ~np.isfinite(rv)
    if bad.any():
        ids = dataset.ids[np.asarray(rows)][bad]
        shown = ", ".join(map(str, ids[:10])) + (f" and {len(ids) - 10} more" if len(ids) > 10 else "")
        raise ValueError(
            f"radial velocity {column!r} is missing (NaN) for {len(ids)} object(s): {shown}"
            + (f" (and so is redshift {fallback_redshift!r})" if fallback_redshift else "")
            + "; drop them from the dataset, set preprocess.spectra.missing_rv: redshift with a redshift column, "
            "or set preprocess.spectra.rest_frame_column: null"
        )
    return rv


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


def _band_index(bands, dataset: Dataset) -> tuple[int, ...] | None:
    if bands is None:
        return None
    have = list(dataset.image_spec.bands)
    missing = [b for b in bands if b not in have]
    if missing:
        raise ValueError(f"inputs.bands {missing} not in {dataset.path}; its bands are {have}")
    return tuple(have.index(b) for b in bands)


def _derived_unit(unit: str, transform: str) -> str:
    if transform == "none":
        return unit
    return f"{transform}({unit})" if unit else transform
