"""The ``tabular`` kind: catalogue columns from a dataset's ``/tabular``, and photometry features.

Without ``magnitudes`` in the settings the input is the plain columns, scaled (the
behaviour of every recipe written before photometry features). With them, the features
are built in a fixed, recorded order (:attr:`Tabular.feature_names`, the 1D "sequence"
of a convolutional network over a catalogue):

1. the magnitudes (AB mag; or fluxes in nanomaggies, or asinh magnitudes), unless
   ``keep_magnitudes: false``;
2. the colours, ``m_a - m_b`` in mag for each pair;
3. the magnitude errors in mag (or flux errors in nanomaggies with ``magnitudes_as:
   flux``), clipped at ``error_clip`` or a training quantile;
4. the plain ``columns``;
5. with ``missing: median``, one 0/1 flag a column read (1: the value was NaN or inf and
   was replaced by the column's training median).

Every fitted number (medians, clip values, the scaler) comes from the training split and
is saved with the run as plain data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import astropy.units as u
import numpy as np
from numpy.typing import NDArray

from astroreg.config import InputSettings, TabularInput
from astroreg.data import Dataset
from astroreg.modalities._base import LazyIds, Modality, register_modality, row_index
from astroreg.preprocess._transforms import FeatureScaler, check_scaler

_AB_FLUX = u.zero_point_flux(1 * u.ABflux)  # 1 maggy = 3631 Jy, the AB zero point


def magnitudes_to_nanomaggies(mag: NDArray) -> NDArray[np.float64]:
    """AB magnitudes as fluxes in nanomaggies (1 nmgy = 3.631e-6 Jy, 22.5 mag), through astropy.

    Parameters
    ----------
    mag : array
        AB magnitudes (any shape).

    Returns
    -------
    array of the same shape
        Fluxes in nanomaggies.

    Examples
    --------
    >>> magnitudes_to_nanomaggies(np.array([22.5, 20.0]))
    array([ 1., 10.])
    """
    return (np.asarray(mag, dtype=np.float64) * u.ABmag).to_value(u.nanomaggy, _AB_FLUX)


def asinh_magnitudes(mag: NDArray, softening: float) -> NDArray[np.float64]:
    """Asinh magnitudes (Lupton, Gunn & Szalay 1999) of AB magnitudes.

    ``mu = -2.5 / ln(10) * (asinh(f / (2 b)) + ln b)`` with ``f`` the flux in maggies and
    ``b`` the softening in maggies; close to the AB magnitude for ``f >> b``, finite and
    smooth down to zero and negative fluxes.

    Parameters
    ----------
    mag : array
        AB magnitudes (any shape).
    softening : float
        ``b`` in maggies (SDSS r: 1.2e-10).
    """
    flux = (np.asarray(mag, dtype=np.float64) * u.ABmag).to_value(u.maggy, _AB_FLUX)
    return -2.5 / np.log(10.0) * (np.arcsinh(flux / (2.0 * softening)) + np.log(softening))


@register_modality
@dataclass(eq=False)
class Tabular(Modality):
    """Numeric catalogue columns, or photometry features, scaled by a scaler fitted on the training split.

    Settings: :class:`astroreg.config.TabularInput` (``columns``, default all; ``scaling``
    none, standard or robust; ``magnitudes``, ``colours``, ``errors``, ``error_clip``,
    ``magnitudes_as``, ``missing`` for photometry).

    Attributes
    ----------
    columns : tuple of str
        Dataset columns read, in the order of :attr:`fill_`.
    features : FeatureScaler
        The scaler of the features, fitted on training.
    feature_names : tuple of str
        Name of each network feature, in order (``MAG_U``, ``MAG_U-MAG_G``, ``MAGERR_U``,
        ``MAG_U[nmgy]``, ``missing:MAG_U``, ...).
    fill_ : array of shape (n_columns,) or None
        Training median of each column read (``missing: median``), replacing NaN and inf.
    clip_ : array of shape (n_magnitudes,) or None
        Upper clip of each error column in mag (``error_clip`` or its training quantile).
    """

    kind: ClassVar[str] = "tabular"
    Settings: ClassVar[type[InputSettings]] = TabularInput
    group: ClassVar[str] = "tabular"
    baseline_inputs: ClassVar[str] = "tabular"
    # Torch's threads from the machine's load, as for prepared spectra: all cores on a quiet
    # machine. The reading thread's work (a few columns, colours, clipping) is light, and a
    # heavy network needs every core: paper 000's residual CNN predicted 100,000 rows in 28 s
    # with this against 49 s with one core kept for reading; the photo-z MLP was the same
    # either way (1.4-1.5 s for 28,000 rows). On a busy machine it keeps one core spare.
    predict_threads: ClassVar[str] = "tune"
    # Fields added after run folders were first written: an older preprocessors.json lacks them.
    added_fields: ClassVar[tuple[str, ...]] = ("feature_names", "fill_", "clip_")

    columns: tuple[str, ...] = ()
    features: FeatureScaler | None = None
    feature_names: tuple[str, ...] = ()
    fill_: np.ndarray | None = None
    clip_: np.ndarray | None = None

    def fit(self, dataset: Dataset, rows: NDArray[np.int64], *, seed: int = 0) -> Tabular:
        self.check_dataset(dataset)
        s = self.settings
        self.columns = tuple(_columns_read(s, dataset))
        missing = [c for c in self.columns if c not in dataset.tabular_columns]
        if missing:
            raise ValueError(
                f"input {self.name!r}: column(s) {missing} not in {dataset.path}; tabular columns are "
                f"{list(dataset.tabular_columns)}: fix inputs.{self.name}.magnitudes, errors or columns"
            )
        raw = self._read(dataset, rows)
        self.fill_ = None
        if s.missing == "median":
            good = np.where(np.isfinite(raw), raw, np.nan)
            empty = [c for c, n in zip(self.columns, np.isfinite(raw).sum(axis=0)) if n == 0]
            if empty:
                raise ValueError(f"input {self.name!r}: column(s) {empty} have no finite value in the training "
                                 "split, so there is no median to fill with; leave them out")
            self.fill_ = np.nanmedian(good, axis=0).astype(np.float64)
        self.clip_ = None
        n_err = len(s.error_columns())
        if s.error_clip is not None:
            self.clip_ = np.full(n_err, float(s.error_clip))
        elif s.error_clip_quantile is not None:
            errs = self._filled(raw)[:, len(s.magnitudes or []):len(s.magnitudes or []) + n_err]
            self.clip_ = np.array([np.quantile(e[np.isfinite(e)], s.error_clip_quantile) if np.isfinite(e).any()
                                   else np.inf for e in errs.T], dtype=np.float64)
        self.feature_names = tuple(_feature_names(s, self.columns))
        self.features = FeatureScaler(kind=s.scaling, columns=self.feature_names)
        self.features.fit(self._build(raw), ids=LazyIds(dataset, rows))
        self.shape = (len(self.feature_names),)
        return self

    def transform(self, dataset: Dataset, rows: NDArray | slice, *,
                  out: NDArray[np.float32] | None = None) -> NDArray[np.float32]:
        idx = row_index(dataset, rows)
        return self.features.transform(self._build(self._read(dataset, idx)), ids=LazyIds(dataset, idx))

    def photometry_features(self, raw: NDArray) -> NDArray[np.float64]:
        """Unscaled features of the columns read (``raw``: shape ``(n, len(columns))``), in :attr:`feature_names` order."""
        return self._build(np.asarray(raw, dtype=np.float64))

    def _read(self, dataset: Dataset, rows: NDArray) -> NDArray[np.float64]:
        return dataset.tabular(list(self.columns), rows).to_numpy(dtype=np.float64)

    def _filled(self, raw: NDArray[np.float64]) -> NDArray[np.float64]:
        if self.fill_ is None:
            return raw
        return np.where(np.isfinite(raw), raw, self.fill_)

    def _build(self, raw: NDArray[np.float64]) -> NDArray[np.float64]:
        s = self.settings
        if not s.magnitudes:
            parts = [self._filled(raw)]
        else:
            x = self._filled(raw)
            mags = list(s.magnitudes)
            n_mag, n_err = len(mags), len(s.error_columns())
            m, err = x[:, :n_mag], x[:, n_mag:n_mag + n_err]
            if self.clip_ is not None:
                err = np.minimum(err, self.clip_)
            parts = []
            if s.keep_magnitudes:
                parts.append(m if s.magnitudes_as == "magnitude" else
                             magnitudes_to_nanomaggies(m) if s.magnitudes_as == "flux" else
                             asinh_magnitudes(m, s.asinh_softening))
            pairs = s.colour_pairs()
            if pairs:
                col = {c: j for j, c in enumerate(mags)}
                parts.append(np.stack([m[:, col[a]] - m[:, col[b]] for a, b in pairs], axis=1))
            if n_err:
                # sigma_f = 0.4 ln(10) f sigma_m: the first-order error of the flux
                parts.append(0.4 * np.log(10.0) * magnitudes_to_nanomaggies(m) * err
                             if s.magnitudes_as == "flux" else err)
            parts.append(x[:, n_mag + n_err:])
        if self.fill_ is not None:
            parts.append((~np.isfinite(raw)).astype(np.float64))
        return np.concatenate(parts, axis=1) if len(parts) > 1 else parts[0]

    @classmethod
    def shape_from_settings(cls, settings: TabularInput, dataset: Dataset | None) -> tuple[int, ...]:
        if settings.magnitudes or dataset is not None or settings.columns:
            cols = (_columns_read(settings, dataset) if dataset is not None or settings.magnitudes
                    else list(settings.columns))
            return (len(_feature_names(settings, cols)),)
        raise ValueError("set inputs.<name>.columns to fix the number of tabular features")

    def check_loaded(self) -> None:
        super().check_loaded()
        if self.features is None:
            raise ValueError(f"input {self.name!r} (tabular) has no fitted feature scaler")
        check_scaler(self.features)
        if not self.feature_names:  # a run folder written before photometry features: the columns are the features
            self.feature_names = tuple(self.columns)
        if len(self.feature_names) != self.shape[0]:
            raise ValueError(f"input {self.name!r}: {len(self.feature_names)} feature names for shape {self.shape}")
        if self.fill_ is not None and self.fill_.shape != (len(self.columns),):
            raise ValueError(f"input {self.name!r}: {self.fill_.shape[0]} fill values for {len(self.columns)} columns")
        self.features.transform(np.zeros((1, *self.shape)))

    def tabular_columns(self) -> tuple[str, ...]:
        return self.columns


def _columns_read(s: TabularInput, dataset: Dataset | None) -> list[str]:
    """Dataset columns the input reads: magnitudes, their errors, then the plain columns."""
    if not s.magnitudes:
        return list(s.columns or dataset.tabular_columns)
    return [*s.magnitudes, *s.error_columns(), *(s.columns or [])]


def _feature_names(s: TabularInput, columns: list[str] | tuple[str, ...]) -> list[str]:
    """Names of the features, in the order :meth:`Tabular._build` stacks them."""
    if not s.magnitudes:
        names = list(columns)
    else:
        mags = list(s.magnitudes)
        names = []
        if s.keep_magnitudes:
            unit = {"magnitude": "", "flux": "[nmgy]", "asinh": "[asinh mag]"}[s.magnitudes_as]
            names += [m + unit for m in mags]
        names += [f"{a}-{b}" for a, b in s.colour_pairs()]
        names += [e + ("[nmgy]" if s.magnitudes_as == "flux" else "") for e in s.error_columns()]
        names += list(s.columns or [])
    if s.missing == "median":
        names += [f"missing:{c}" for c in columns]
    return names
