"""The training domain of a run: which new objects its predictions can be trusted on.

A network predicts a number for any input, galaxies given to a stellar-parameter model
and spectra without one good pixel included. :class:`TrainingDomain` describes what the
network saw in training, so that :func:`astroreg.pipeline.predict` can mark every object
outside it (``in_domain``, ``domain_reason``):

- ``input_distance``: the network input is far from every training input, by a robust
  distance to the training inputs' per-feature median (works for images, spectra and
  tables alike: it reads the flattened preprocessed input, nothing modality-specific);
- ``coverage``: a spectrum has fewer good pixels on the recipe's grid than the minimum
  (the preprocessor measures it; other modalities have no coverage);
- ``label_range:<target>``: the prediction lies outside the range of the training labels;
- ``category:<column>``: a category column of the dataset (a string column with at most
  :data:`MAX_CATEGORIES` values in training, such as SDSS's ``CLASS``: ``STAR``,
  ``GALAXY``, ``QSO``) holds a value no training object had: galaxies given to a run
  trained on stars.

It is stored as plain JSON (``domain.json`` in the run folder): loading it runs no code.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np
from numpy.typing import NDArray

from astroreg.data import atomic_write_text

if TYPE_CHECKING:
    from astroreg.data import Dataset


class FittedInputs(Protocol):
    """What the domain reads of a recipe's fitted inputs (:class:`astroreg.modalities.RecipePreprocessor`)."""

    target_names: tuple[str, ...]
    n_features: int

    def flat_inputs(self, dataset: Dataset, rows: NDArray) -> NDArray[np.float32]: ...

    def coverage(self, dataset: Dataset, rows: NDArray) -> NDArray[np.float64] | None: ...

DOMAIN_FILE = "domain.json"
"""Name of the training-domain description in a run folder."""

REASON_INPUT = "input_distance"
"""``domain_reason`` entry: the input is far from the training inputs."""
REASON_COVERAGE = "coverage"
"""``domain_reason`` entry: too few good pixels on the grid (spectra)."""
REASON_LABEL = "label_range"
"""``domain_reason`` entry prefix (``label_range:<target>``): prediction outside the training labels."""
REASON_CATEGORY = "category"
"""``domain_reason`` entry prefix (``category:<column>``): a category value no training object had."""
MAX_CATEGORIES = 8
"""String columns with at most this many distinct training values are categories (SDSS ``CLASS``);
more (file names, spectral subclasses such as ``F5`` or ``K1``) name objects or fine classes
that new data may rightly extend, and are not checked."""

MAX_SAMPLE = 4096
"""Most training (and validation) objects read to fit the description."""
TRAIN_QUANTILE = 0.999
"""Quantile of the training objects' distances that the threshold starts from."""
VAL_FLAGGED = 0.005
"""Fraction of validation objects at most flagged by the distance threshold (0.5 %)."""
CLIP = 10.0
MAX_FEATURES = 1024
"""Most input features the distance reads: evenly spaced over the flattened input. An RMS over
1024 of them is within a few per cent of the RMS over all, at a quarter of the cost for a
4000-pixel spectrum and a twentieth for a 143x143 stamp (and ``domain.json`` stays small)."""
"""Per-feature robust z-scores are clipped to +-CLIP: one hot pixel cannot flag an object alone."""
_MAD_TO_SIGMA = 1.4826
_SAMPLE_BYTES = 256e6  # at most this much preprocessed input is held to fit the description
_BLOCK = 64  # objects per block of the distance computation (a cache-sized buffer)
_VERSION = 1


@dataclass(frozen=True)
class TrainingDomain:
    """What a run's network saw in training: input centre and spread, label range, coverage minimum.

    Attributes
    ----------
    target_names : tuple of str
        The recipe's targets, in the order of the network's outputs.
    label_min, label_max : tuple of float
        Range of each target over the training split, in the recipe's target space (after
        its ``transform``, e.g. ``log_total_flux`` in dex): the space of the
        ``<target>_pred`` columns that predictions are compared with.
    center : array of shape (n_read,)
        Per-feature median of the flattened preprocessed training inputs, over the
        ``n_read = min(n_features, MAX_FEATURES)`` features the distance reads
        (:func:`feature_index`).
    scale : array of shape (n_read,)
        Per-feature ``1.4826 * MAD`` of the same inputs (floored at 1 % of their median,
        so that constant features do not divide by 0).
    threshold : float
        Objects whose :meth:`input_distance` exceeds it are flagged ``input_distance``.
    train_quantile : float
        The :data:`TRAIN_QUANTILE` quantile of the training sample's distances.
    margin : float
        ``threshold / train_quantile`` (>= 1), chosen on the validation split.
    val_flagged : float
        Fraction of the validation objects that the threshold flags (about 0.1-0.5 %).
    min_coverage : float or None
        Least fraction of good pixels on the grid (spectra); None where the modality has
        no coverage.
    n_train, n_val : int
        Objects the description was fitted (and its threshold chosen) on.
    n_features : int
        Features of a flattened network input (``prod(input_shape)``).
    categories : dict of str to tuple of str
        Category columns of the training dataset and the values its training split holds.
    """

    target_names: tuple[str, ...]
    label_min: tuple[float, ...]
    label_max: tuple[float, ...]
    center: NDArray[np.float32]
    scale: NDArray[np.float32]
    threshold: float
    train_quantile: float
    margin: float
    val_flagged: float
    min_coverage: float | None
    n_train: int
    n_val: int
    n_features: int
    categories: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def fit(cls, pre: FittedInputs, dataset: Dataset, train_rows: NDArray, val_rows: NDArray,
            y_train: NDArray, *, min_coverage: float | None = None, seed: int = 0) -> TrainingDomain:
        """Describe the training split of ``dataset`` as ``pre`` feeds it to the network.

        The centre and scale come from at most :data:`MAX_SAMPLE` training objects (fewer
        for very large inputs). The distance threshold is the :data:`TRAIN_QUANTILE`
        quantile of those objects' distances times a margin. The distances of the objects
        the centre was fitted on are slightly small (in-sample), so the margin is chosen
        on the VALIDATION split: the smallest ``margin >= 1`` that flags at most
        :data:`VAL_FLAGGED` of the validation objects. Ordinary objects like the
        validation ones are then flagged about 0.1-0.5 % of the time, and ``val_flagged``
        records the fraction.

        Parameters
        ----------
        pre : RecipePreprocessor
            (any object with its :class:`FittedInputs` members)
            The run's fitted preprocessing.
        dataset : Dataset
            The training dataset.
        train_rows, val_rows : array of int
            The training and validation rows.
        y_train : array of shape (n_train, n_targets)
            Training targets in the recipe's target space (after their transforms,
            :func:`~astroreg.preprocess.raw_targets`); NaN (missing) ignored.
        min_coverage : float, optional
            Least fraction of good pixels on the grid; default
            :data:`~astroreg.data._prepared.DEFAULT_MIN_GOOD_FRACTION` (the ingest's)
            where the preprocessor measures coverage (spectra), else None.
        seed : int
            Seed of the samples of training and validation objects.

        Returns
        -------
        TrainingDomain

        Raises
        ------
        ValueError
            If the training split is empty or a target has no finite training value.

        Examples
        --------
        >>> domain = TrainingDomain.fit(pre, ds, splits["train"], splits["val"],  # doctest: +SKIP
        ...                             raw_targets(recipe, ds, splits["train"]))
        >>> domain.save(run_dir / DOMAIN_FILE)  # doctest: +SKIP
        """
        from astroreg.data._prepared import DEFAULT_MIN_GOOD_FRACTION

        train_rows, val_rows = np.asarray(train_rows), np.asarray(val_rows)
        if len(train_rows) == 0:
            raise ValueError("the training split is empty: the training domain needs training objects; "
                             "give dataset.splits.train a positive fraction")
        lo, hi = _label_range(tuple(pre.target_names), y_train)
        per_object = 4 * pre.n_features
        size = int(max(64, min(MAX_SAMPLE, _SAMPLE_BYTES // max(per_object, 1))))
        rng = np.random.default_rng(seed)
        sample = np.sort(rng.choice(train_rows, size=min(size, len(train_rows)), replace=False))
        vsample = np.sort(rng.choice(val_rows, size=min(size, len(val_rows)), replace=False))
        x = pre.flat_inputs(dataset, sample)
        xs = x[:, feature_index(x.shape[1])]
        center = np.median(xs, axis=0).astype(np.float32)
        scale = (_MAD_TO_SIGMA * np.median(np.abs(xs - center), axis=0)).astype(np.float32)
        del xs
        positive = scale[scale > 0]
        floor = 0.01 * float(np.median(positive)) if positive.size else 1.0
        scale = np.maximum(scale, np.float32(max(floor, 1e-12)))
        domain = cls(target_names=tuple(pre.target_names), label_min=lo, label_max=hi, center=center, scale=scale,
                     threshold=np.inf, train_quantile=np.nan, margin=1.0, val_flagged=0.0, min_coverage=None,
                     n_train=len(sample), n_val=len(vsample), n_features=x.shape[1])
        # "higher": an observed distance, so that small splits are not flagged beyond the quantile.
        q = float(np.quantile(domain.input_distance(x), TRAIN_QUANTILE, method="higher"))
        del x
        # Without validation objects the margin stays 1 (the training quantile alone).
        d_val = domain.input_distance(pre.flat_inputs(dataset, vsample)) if len(vsample) else np.zeros(1)
        margin = max(1.0, float(np.quantile(d_val, 1.0 - VAL_FLAGGED, method="higher")) / q) if q > 0 else 1.0
        threshold = q * margin
        if pre.coverage(dataset, sample[:1]) is None:
            min_coverage = None
        elif min_coverage is None:
            min_coverage = DEFAULT_MIN_GOOD_FRACTION
        return replace(domain, threshold=float(threshold), train_quantile=q, margin=float(margin),
                       val_flagged=float(np.mean(d_val > threshold)),
                       min_coverage=None if min_coverage is None else float(min_coverage),
                       categories=_categories(dataset, train_rows))

    def unseen_categories(self, dataset: Dataset) -> dict[str, NDArray[np.bool_]]:
        """For each category column that ``dataset`` has: which of its objects hold a value unseen in training.

        Returns
        -------
        dict of str to bool array of shape (n_objects,)
            Indexed by the dataset's rows (read once: 1 byte an object).
        """
        out = {}
        for column, allowed in self.categories.items():
            if column in dataset.tabular_columns:
                values = dataset.tabular([column])[column].to_numpy().astype(str)
                out[column] = ~np.isin(values, np.asarray(allowed, dtype=str))
        return out

    def input_distance(self, x: NDArray, *, prepare: Callable[[NDArray[np.float32]], object] | None = None,
                       row_affine: Callable[[NDArray[np.float32]], tuple[NDArray, NDArray]] | None = None
                       ) -> NDArray[np.float64]:
        """Robust distance of each input to the training inputs' centre, shape (n,).

        ``sqrt(mean_j(clip(z_j, -CLIP, CLIP)^2))`` with ``z_j = (x_j - center_j) / scale_j``
        over at most :data:`MAX_FEATURES` evenly spaced features of the flattened input
        (:func:`feature_index`): about 1 for a typical training object, large for inputs
        unlike any (an image 1000 times brighter: about :data:`CLIP`).
        Non-finite features count as :data:`CLIP`.

        Parameters
        ----------
        x : array of shape (n, *input_shape)
            Preprocessed network inputs, flattened as :meth:`RecipePreprocessor.flat_inputs` returns them.
        prepare : callable, optional
            The last preprocessing step when ``x`` lacks it, applied in place to a copy of
            each block of rows (float32, C-contiguous, shape (rows, n_features)): e.g.
            :func:`~astroreg.preprocess._spectra.standardize_rows_` for spectra that a folded
            network reads unstandardised. Cheaper than a standardised copy of all of ``x``.
        row_affine : callable, optional
            The same row-wise step as ``(x - offset) * factor`` per row: a function of a
            block of rows returning ``offset`` and ``factor``, shape (rows,), NaN where it
            cannot tell (e.g. :func:`~astroreg.preprocess._spectra.row_standardization`).
            Only the features read are then transformed; the rows it cannot tell go
            through ``prepare``.
        """
        flat = _flat(x)
        if flat.shape[1] != self.n_features:
            raise ValueError(f"inputs have {flat.shape[1]} features per object, the training domain "
                             f"{self.n_features}: they do not come from this run's preprocessing")
        index = feature_index(self.n_features)
        out = np.empty(len(flat), np.float64)
        inv = (1.0 / self.scale).astype(np.float32)
        # On cache-sized blocks; only the read features are centred, scaled and clipped.
        full = prepare is not None and row_affine is None
        buf = np.empty((min(_BLOCK, len(flat)), flat.shape[1]), np.float32) if full else None
        zbuf = np.empty((min(_BLOCK, len(flat)), self.center.size), np.float32)
        for b in range(0, len(flat), _BLOCK):
            rows = flat[b:b + _BLOCK]
            z = zbuf[:len(rows)]
            if row_affine is not None:
                offset, factor = row_affine(rows)
                np.subtract(rows[:, index], offset[:, None], out=z)
                z *= factor[:, None]
                z -= self.center
                redo = np.flatnonzero(~(np.isfinite(offset) & np.isfinite(factor)))
                if redo.size and prepare is not None:  # whole rows through the full step
                    whole = np.ascontiguousarray(rows[redo], dtype=np.float32)
                    prepare(whole)
                    z[redo] = whole[:, index] - self.center
            else:
                if prepare is not None:  # the row-wise step needs whole rows
                    whole = buf[:len(rows)]
                    np.copyto(whole, rows)
                    prepare(whole)
                    rows = whole
                np.subtract(rows[:, index], self.center, out=z)
            z *= inv
            np.clip(z, -CLIP, CLIP, out=z)
            sq = np.einsum("ij,ij->i", z, z)
            bad = ~np.isfinite(sq)
            if bad.any():  # NaN inputs: count those features as CLIP
                zb = np.nan_to_num(z[bad], nan=CLIP)
                sq[bad] = np.einsum("ij,ij->i", zb, zb)
            out[b:b + len(z)] = np.sqrt(sq / self.center.size)
        return out

    def flag(self, distance: NDArray, predictions: NDArray, coverage: NDArray | None = None,
             unseen: Mapping[str, NDArray] | None = None) -> tuple[NDArray[np.bool_], NDArray[np.object_]]:
        """``in_domain`` and ``domain_reason`` of each object.

        Parameters
        ----------
        distance : array of shape (n,)
            :meth:`input_distance` of the objects.
        predictions : array of shape (n, n_targets)
            Predictions in the recipe's target space (the ``<target>_pred`` columns).
        coverage : array of shape (n,), optional
            Fraction of good pixels on the grid (spectra); ignored without ``min_coverage``.
        unseen : dict of str to bool array of shape (n,), optional
            Per category column, the objects whose value no training object had (see
            :meth:`unseen_categories`).

        Returns
        -------
        in_domain : bool array of shape (n,)
        domain_reason : object array of str, shape (n,)
            ``""`` in the domain, else the reasons joined by ``";"`` among
            ``input_distance``, ``coverage``, ``label_range:<target>`` and
            ``category:<column>``.
        """
        distance = np.asarray(distance, dtype=np.float64)
        y = np.asarray(predictions, dtype=np.float64).reshape(len(distance), -1)
        checks = [(REASON_INPUT, ~(distance <= self.threshold))]
        if coverage is not None and self.min_coverage is not None:
            checks.append((REASON_COVERAGE, ~(np.asarray(coverage, dtype=np.float64) >= self.min_coverage)))
        for j, t in enumerate(self.target_names):
            inside = (y[:, j] >= self.label_min[j]) & (y[:, j] <= self.label_max[j])  # NaN: outside
            checks.append((f"{REASON_LABEL}:{t}", ~inside))
        for column, hit in (unseen or {}).items():
            checks.append((f"{REASON_CATEGORY}:{column}", np.asarray(hit, dtype=bool)))
        # One string per distinct combination of failed checks: no Python work per object.
        hits = np.stack([np.asarray(hit, dtype=bool) for _, hit in checks], axis=1)
        packed = np.ascontiguousarray(np.packbits(hits, axis=1, bitorder="little"))
        keys = packed.view(f"V{packed.shape[1]}").ravel()  # a row's checks as one value: a fast 1-D unique
        _, first, which = np.unique(keys, return_index=True, return_inverse=True)
        labels = np.array([";".join(name for (name, _), h in zip(checks, hits[i]) if h) for i in first],
                          dtype=object)
        return ~hits.any(axis=1), labels[which.ravel()]

    # -- persistence ----------------------------------------------------------------
    def to_dict(self) -> dict:
        """JSON-ready form (arrays as lists of floats)."""
        return {
            "format": "astroreg training domain", "version": _VERSION,
            "targets": {t: {"min": lo, "max": hi, "space": "recipe target (after its transform)"}
                        for t, lo, hi in zip(self.target_names, self.label_min, self.label_max)},
            "target_names": list(self.target_names),
            "input_distance": {"threshold": self.threshold, "train_quantile": self.train_quantile,
                               "quantile": TRAIN_QUANTILE, "margin": self.margin, "val_flagged": self.val_flagged,
                               "clip": CLIP, "n_train": self.n_train, "n_val": self.n_val,
                               "n_features": self.n_features, "max_features": MAX_FEATURES,
                               "center": self.center.astype(float).tolist(),
                               "scale": self.scale.astype(float).tolist()},
            "min_coverage": self.min_coverage,
            "categories": {c: list(v) for c, v in self.categories.items()},
        }

    def save(self, path: str | os.PathLike) -> Path:
        """Write the description as JSON, atomically."""
        return atomic_write_text(path, json.dumps(self.to_dict()) + "\n")

    @classmethod
    def load(cls, path: str | os.PathLike) -> TrainingDomain:
        """Read a description written by :meth:`save` (plain JSON: no code runs).

        Raises
        ------
        ValueError
            If the file is not valid JSON or lacks a field.
        """
        path = Path(path)
        try:
            d = json.loads(path.read_text())
            dist = d["input_distance"]
            names = tuple(str(t) for t in d["target_names"])
            domain = cls(target_names=names,
                         label_min=tuple(float(d["targets"][t]["min"]) for t in names),
                         label_max=tuple(float(d["targets"][t]["max"]) for t in names),
                         center=np.asarray(dist["center"], np.float32), scale=np.asarray(dist["scale"], np.float32),
                         threshold=float(dist["threshold"]), train_quantile=float(dist["train_quantile"]),
                         margin=float(dist["margin"]), val_flagged=float(dist["val_flagged"]),
                         min_coverage=None if d["min_coverage"] is None else float(d["min_coverage"]),
                         n_train=int(dist["n_train"]), n_val=int(dist["n_val"]),
                         n_features=int(dist["n_features"]),
                         categories={str(c): tuple(str(v) for v in values)
                                     for c, values in d.get("categories", {}).items()})
            n_read = len(range(domain.n_features)[feature_index(domain.n_features)])
            if not domain.center.shape == domain.scale.shape == (n_read,):
                raise ValueError(f"center and scale must hold {n_read} values for {domain.n_features} features")
            return domain
        except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
            raise ValueError(f"{path} is not a readable astroreg training domain ({type(err).__name__}: {err}); "
                             f"delete it to predict without in_domain flags, or train the run again") from None


def count_reasons(reasons: NDArray, counts: dict[str, int] | None = None) -> dict[str, int]:
    """Objects per reason in ``domain_reason`` values, added to ``counts``.

    Parameters
    ----------
    reasons : array of str, shape (n,)
        ``domain_reason`` values: ``""`` or reasons joined by ``";"``.
    counts : dict, optional
        Counts so far (e.g. of earlier chunks), updated in place.

    Returns
    -------
    dict of str to int
        ``counts``: per reason, and under ``""`` the number of flagged objects.

    Examples
    --------
    >>> count_reasons(np.array(["", "coverage;label_range:z", "coverage"]))
    {'': 2, 'coverage': 2, 'label_range:z': 1}
    """
    counts = {} if counts is None else counts
    counts.setdefault("", 0)
    values, n = np.unique(np.asarray(reasons).astype(str), return_counts=True)
    for value, k in zip(values, n):
        if value:
            counts[""] += int(k)
            for r in value.split(";"):
                counts[r] = counts.get(r, 0) + int(k)
    return counts


def feature_index(n_features: int) -> slice:
    """The features the distance reads: every ``ceil(n_features / MAX_FEATURES)``-th one.

    A constant stride, so that the distance reads a view of the input rather than a copy.
    """
    return slice(0, n_features, max(1, -(-n_features // MAX_FEATURES)))


def _flat(x: NDArray) -> NDArray[np.float32]:
    x = np.asarray(x, dtype=np.float32)
    return x.reshape(len(x), -1)


def _categories(dataset: Dataset, rows: NDArray) -> dict[str, tuple[str, ...]]:
    """The string columns with at most :data:`MAX_CATEGORIES` values over ``rows``, and those values."""
    out = {}
    for column in dataset.tabular_columns:
        values = dataset.tabular([column], rows)[column]
        if values.dtype.kind in "biufc" or values.dtype == bool:
            continue
        seen = sorted(set(values.astype(str)))
        if len(seen) <= MAX_CATEGORIES:
            out[column] = tuple(seen)
    return out


def _label_range(names: tuple[str, ...], y_train: NDArray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Least and greatest finite training value of each target."""
    y = np.asarray(y_train, dtype=np.float64).reshape(len(y_train), -1)
    if y.shape[1] != len(names):
        raise ValueError(f"y_train has {y.shape[1]} column(s), expected one per target {list(names)}")
    lo, hi = [], []
    for j, t in enumerate(names):
        known = y[np.isfinite(y[:, j]), j]
        if known.size == 0:
            raise ValueError(f"no training object has a finite {t!r}; cannot tell the training label range")
        lo.append(float(known.min()))
        hi.append(float(known.max()))
    return tuple(lo), tuple(hi)
