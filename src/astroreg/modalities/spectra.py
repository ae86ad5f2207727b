"""The ``spectra`` kind: 1D spectra from a dataset's ``/spectra``, on a common wavelength grid."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from astroreg.config import InputSettings, SpectraInput
from astroreg.data import Dataset, prepared_spectra_info
from astroreg.modalities._base import Modality, PredictReader, register_modality, row_index
from astroreg.preprocess._spectra import (
    GaussianNoiseAugmenter,
    SpectrumResampler,
    SpectrumStandardizer,
    parse_grid,
    redshift_velocity,
    row_standardization,
    standardize_rows_,
)
from astroreg.preprocess._transforms import apply_feature_affine_, fit_feature_affine


@register_modality
@dataclass(eq=False)
class Spectra(Modality):
    """Spectra resampled onto the recipe's grid (optionally in the rest frame), standardised per spectrum, scaled per pixel.

    Settings: :class:`astroreg.config.SpectraInput`. Without ``scaling`` nothing is
    learned from the data but the grid's pixels; :meth:`fit` checks the radial velocities
    up front. With ``scaling`` (``minmax``, ``standard``, ``robust``) every pixel is then
    scaled, ``(x - pixel_offset_) / pixel_scale_``, with statistics of the training split
    (:func:`astroreg.preprocess._transforms.fit_feature_affine`), stored as two arrays of
    shape (n_pixels,) in ``preprocessors.json``. Spectra prepared at ingest for this very
    grid and frame (the ``prepared_*`` attributes of ``/spectra``, written by a reader that
    resampled them) are only read, and at prediction a dense network takes the
    per-spectrum standardisation into its first layer when no per-pixel scaling follows it.
    """

    kind: ClassVar[str] = "spectra"
    Settings: ClassVar[type[InputSettings]] = SpectraInput
    group: ClassVar[str] = "spectra"
    chunk_size: ClassVar[int] = 4096
    baseline_inputs: ClassVar[str] = "model"

    # fields run folders written before them lack: they take their defaults (no per-pixel scaling)
    added_fields: ClassVar[tuple[str, ...]] = ("pixel_offset_", "pixel_scale_", "flux_unit_")

    spectra: SpectrumResampler | None = None  # a LogLamResampler (its subclass) in older run files
    standardizer: SpectrumStandardizer | None = None
    pixel_offset_: np.ndarray | None = None  # settings.scaling, shape (n_pixels,), in the unit of the inputs
    pixel_scale_: np.ndarray | None = None
    flux_unit_: str | None = None  # the training spectra's /spectra flux_unit attribute, if they had one

    # -- fitting and reading ---------------------------------------------------------------
    def fit(self, dataset: Dataset, rows: NDArray[np.int64], *, seed: int = 0) -> Spectra:
        self.check_dataset(dataset)
        s = self.settings
        grid = parse_grid(s.grid)
        n_pixels = grid.n_pixels
        mask = dataset.spectra.get("mask")
        bad_bits = None if mask is None or "bad_bits" not in mask.attrs else int(mask.attrs["bad_bits"])
        self.spectra = SpectrumResampler(grid, bad_pixels=s.bad_pixels, bad_mask_bits=bad_bits,
                                         resample=s.resample).fit()
        self._plan(dataset)  # a shift or grid that the dataset's prepared spectra cannot give: refused now
        if s.standardize:
            # Nothing is learned per dataset; fit only records the number of pixels.
            self.standardizer = SpectrumStandardizer(fill_bad=0.0).fit(np.zeros((1, n_pixels)))
        # Fail before training, not when the test split is read, on a missing velocity or redshift.
        self._frame(dataset, np.arange(len(dataset)), shifted=False)
        self.shape = (n_pixels,)
        self.flux_unit_ = _flux_unit(dataset)
        self.pixel_offset_ = self.pixel_scale_ = None
        if s.scaling != "none":
            rows = np.asarray(rows)
            step = self.chunk_size
            chunks = (self.transform(dataset, rows[i:i + step]) for i in range(0, len(rows), step))
            try:
                self.pixel_offset_, self.pixel_scale_ = fit_feature_affine(chunks, s.scaling)
            except ValueError as err:
                raise ValueError(f"input {self.name!r} (scaling: {s.scaling}) on {dataset.path}: {err}") from None
        return self

    def transform(self, dataset: Dataset, rows: NDArray | slice, *, out: NDArray[np.float32] | None = None,
                  standardize: bool = True) -> NDArray[np.float32]:
        """Network inputs of ``rows``, float32 of shape ``(n, n_pixels)``.

        Spectra prepared at ingest for this input (:meth:`prepared`) are only read (the
        flux alone) and standardised (and scaled per pixel) in place into ``out`` when it
        fits. ``standardize=False`` returns prepared spectra as stored, neither
        standardised nor scaled (for a network that standardises inside its first layer:
        :func:`astroreg.models._fast.fold_standardization`; prediction folds nothing when
        a per-pixel scaling follows the standardisation).
        """
        if self.prepared(dataset):
            return self.prepared_inputs(dataset, rows, out=out, standardize=standardize)
        return self._scaled(self._resampled(dataset, row_index(dataset, rows)))

    @property
    def scales_pixels(self) -> bool:
        """Whether a fitted per-pixel scaling (``settings.scaling``) follows the per-spectrum steps."""
        return self.pixel_offset_ is not None

    def _scaled(self, x: NDArray[np.float32]) -> NDArray[np.float32]:
        """``x`` scaled per pixel in place when the input has a fitted scaling; ``x`` as it is otherwise."""
        if self.pixel_offset_ is None:
            return x
        return apply_feature_affine_(x, self.pixel_offset_, self.pixel_scale_)

    @classmethod
    def shape_from_settings(cls, settings: SpectraInput, dataset: Dataset | None) -> tuple[int, ...]:
        return (parse_grid(settings.grid).n_pixels,)

    def prepared(self, dataset: Dataset) -> bool:
        """Whether ``dataset``'s spectra need only standardising: prepared at ingest for this input.

        True when a reader (``astroreg ingest sdss-spectra --grid ... [--rest-frame COLUMN]``)
        resampled them onto exactly this grid, with this bad-pixel handling and bad mask
        bits, and shifted them by this ``rest_frame_column`` (or not at all when it has none).

        Raises
        ------
        ValueError
            If the spectra were shifted at ingest by another column than the recipe's (or
            by one when the recipe wants none): that cannot be undone here.
        """
        plan = self._plan(dataset)
        return plan is not None and plan[0]

    def check_dataset(self, dataset: Dataset) -> None:
        """Also refuse spectra in another flux unit than the training spectra (when both record one).

        A network, and a per-pixel scaling above all, fitted on Gaia XP spectra in electron/s
        says nothing about spectra in 1e-17 W m-2 nm-1.
        """
        super().check_dataset(dataset)
        unit = _flux_unit(dataset)
        if self.flux_unit_ is not None and unit is not None and unit != self.flux_unit_:
            raise ValueError(
                f"input {self.name!r} was trained on spectra with flux in {self.flux_unit_!r}, but {dataset.path} "
                f"holds flux in {unit!r}; bring the data to the training unit (for Gaia XP, ingest with the "
                f"same --flux as the training data) or train on data in {unit!r}"
            )

    def _plan(self, dataset: Dataset) -> tuple[bool, bool] | None:
        """``(prepared, shifted)`` from the ``/spectra`` attributes; ``None`` for native spectra."""
        info = prepared_spectra_info(dataset.spectra.attrs)
        if info is None:
            return None
        stored = parse_grid(info.grid)
        if not self.settings.resample and self.spectra is not None and stored != self.spectra.wavelength_grid_:
            raise ValueError(
                f"input {self.name!r} has resample: false, so its spectra must be stored on its grid "
                f"({self.spectra.wavelength_grid_.describe()}), but those of {dataset.path} were prepared on "
                f"{stored.describe()}; re-ingest onto the input's grid (Gaia XP: the same "
                f"--truncation), set inputs.{self.name}.grid to the dataset's, or set resample: true"
            )
        want = self.settings.rest_frame_column
        done = info.rest_frame
        if done is None and want is not None:
            return False, False  # observed frame: resampled again, with the recipe's shift
        if done != want:
            wanted = f"rest_frame_column {want!r}" if want else "the observed frame"
            again = f"--rest-frame {want}" if want else "without --rest-frame"
            raise ValueError(
                f"the spectra of {dataset.path} were shifted to the rest frame of {done!r} at ingest "
                f"(--rest-frame), but input {self.name!r} wants {wanted}; a shift cannot be undone: re-ingest "
                f"{again}, or train with inputs.{self.name}.rest_frame_column: {done}"
            )
        res = self.spectra
        bits = info.bad_mask_bits
        prepared = (
            stored == res.wavelength_grid_
            and info.bad_pixels == res.bad_pixels
            and bits is not None and res.bad_mask_bits is not None and int(bits) == int(res.bad_mask_bits)
            # A missing RV was taken from the redshift at ingest, as the recipe would.
            and (done is None or (self.settings.rest_frame_quantity == "velocity"
                                  and self.settings.missing_rv == "redshift"
                                  and info.redshift_fallback == self.settings.redshift_column))
        )
        return prepared, done is not None

    def prepared_inputs(self, dataset: Dataset, rows: NDArray | slice, *, out: NDArray | None = None,
                        standardize: bool = True) -> NDArray[np.float32]:
        """:meth:`transform` of a dataset for which :meth:`prepared` is True, without checking it again.

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
            if not standardize:
                return x  # for a folded network: as stored
            standardize_rows_(x)
        else:
            np.nan_to_num(x, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
        return self._scaled(x)

    def _resampled(self, dataset: Dataset, rows: NDArray) -> NDArray[np.float32]:
        """Resampled (rest-frame) and standardised spectra, float32 of shape (n, n_pixels)."""
        g = dataset.spectra
        keys = ["flux", "wavelength"] + [k for k in ("ivar", "mask") if k in g]
        arrays = dataset.read_spectra(rows, keys=keys)
        with np.errstate(divide="ignore", invalid="ignore"):
            loglam = np.log10(np.asarray(arrays["wavelength"], dtype=np.float64))
        plan = self._plan(dataset)
        shifted = plan is not None and plan[1]  # already in the rest frame (ingest --rest-frame)
        # ivar only marks the bad input pixels here: its propagation to the grid is skipped.
        flux, _ = self.spectra.transform(arrays["flux"], loglam=loglam, ivar=arrays.get("ivar"),
                                         mask=arrays.get("mask"), return_ivar=False,
                                         **self._frame(dataset, rows, shifted))
        if self.standardizer is not None:
            # Over every finite pixel, clamped ends included (the paper's choice); masked
            # pixels (NaN) become 0, the spectrum's mean.
            flux = self.standardizer.transform(flux)
        return np.nan_to_num(flux, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32, copy=False)

    # -- augmentation ------------------------------------------------------------------------
    def augment(self, x: NDArray[np.float32], n: int, copies: int, noise_fraction: tuple[float, float],
                seed: int) -> NDArray[np.float32]:
        """Gaussian-noise copies (paper 001: std = f x std(spectrum), f ~ U(noise_fraction)), in place."""
        from astroreg.preprocess._augment import add_noisy_copies

        return add_noisy_copies(x, n, copies, noise_fraction, seed)

    def augment_batch(self, x: NDArray[np.float32], noise_fraction: tuple[float, float],
                      seed: int) -> NDArray[np.float32]:
        """One noisy copy of every spectrum of ``x`` (streamed training data: fresh noise per batch)."""
        aug = GaussianNoiseAugmenter(copies=1, level=tuple(noise_fraction), seed=seed, include_original=False)
        return aug.fit_transform(x)[0]

    # -- coverage and prediction ---------------------------------------------------------------
    def coverage(self, dataset: Dataset, rows: NDArray | slice) -> NDArray[np.float64]:
        """Fraction of good pixels on the grid for each of ``rows``, shape (n,).

        A grid pixel is good where its resampled ``ivar`` would be positive: inside the
        spectrum's coverage (in the rest frame when the input shifts it) with both
        neighbouring input pixels good (finite flux, ``ivar > 0``, no bad mask bit), the
        rule of ``ingest sdss-spectra --min-good-fraction``. Spectra stored on this grid at
        ingest are judged by their stored ``ivar``; others by the input pixels, without
        resampling the flux.
        """
        idx = row_index(dataset, rows)
        g = dataset.spectra
        plan = self._plan(dataset)
        if plan is not None and plan[0]:
            key = "ivar" if "ivar" in g else "flux"
            stored = dataset.read_rows(g[key], idx)
            return np.mean(stored > 0 if key == "ivar" else np.isfinite(stored), axis=1, dtype=np.float64)
        arrays = dataset.read_spectra(idx, keys=["flux", "wavelength"] + [k for k in ("ivar", "mask") if k in g])
        with np.errstate(divide="ignore", invalid="ignore"):
            loglam = np.log10(np.asarray(arrays["wavelength"], dtype=np.float64))
        shifted = plan is not None and plan[1]
        return self.spectra.coverage(arrays["flux"], loglam=loglam, ivar=arrays.get("ivar"), mask=arrays.get("mask"),
                                     **self._frame(dataset, idx, shifted))

    def guaranteed_coverage(self, dataset: Dataset) -> float:
        """The reader's ``--min-good-fraction`` for spectra prepared on this grid at ingest, else 0."""
        if not self.prepared(dataset):
            return 0.0
        return prepared_spectra_info(dataset.spectra.attrs).min_good_fraction

    def predict_reader(self, dataset: Dataset, network: Any | None, *, chunk_size: int,
                       n_objects: int, fold: bool = True) -> PredictReader:
        """Prepared spectra: read into two reused buffers, the standardisation folded into a dense network.

        Fresh 30 MB arrays cost page faults at every chunk, so the reading goes into one of
        two buffers; with only the standardisation left to do, a network whose input goes
        only into ``nn.Linear`` layers takes it inside its first layer
        (:func:`astroreg.models._fast.fold_standardization`) and reads the flux as stored.
        A per-pixel scaling (``settings.scaling``) comes after the standardisation, so it
        cannot be folded: the chunk is then standardised and scaled in place in numpy.
        """
        if not self.prepared(dataset):
            return super().predict_reader(dataset, network, chunk_size=chunk_size, n_objects=n_objects, fold=fold)
        from astroreg.models._fast import fold_standardization

        folded = None
        if fold and network is not None and self.standardizer is not None and not self.scales_pixels:
            folded = fold_standardization(network, standardize_rows_, inplace=True)
        buffers = [np.empty((min(chunk_size, n_objects), *self.shape), np.float32) for _ in range(2)]

        def read(rows, k: int) -> NDArray[np.float32]:
            return self.prepared_inputs(dataset, rows, out=buffers[k % 2], standardize=folded is None)

        # The training domain was fitted on standardised inputs; a folded network reads them raw.
        distance = {} if folded is None else {"prepare": standardize_rows_, "row_affine": row_standardization}
        return PredictReader(read=read, network=folded, light=True, threads="tune", distance=distance)

    # -- checks ------------------------------------------------------------------------------
    def check_loaded(self) -> None:
        super().check_loaded()
        if self.spectra is None:
            raise ValueError(f"input {self.name!r} (spectra) has no fitted resampler")
        n = self.shape[0]
        std = n if self.standardizer is None else self.standardizer.n_pixels_
        n_grid = self.spectra.wavelength_grid_.n_pixels
        if n_grid != n or std != n or len(self.shape) != 1:
            raise ValueError(f"a spectra grid of {n_grid} pixels (standardiser: {std}) does "
                             f"not give input shape {self.shape}")
        scaling = self.settings.scaling
        arrays = (self.pixel_offset_, self.pixel_scale_)
        if scaling == "none":
            if any(a is not None for a in arrays):
                raise ValueError(f"input {self.name!r} (spectra) has per-pixel scaling arrays but scaling: none")
            return
        if any(a is None or a.shape != (n,) or not np.isfinite(a).all() for a in arrays) \
                or not (self.pixel_scale_ > 0).all():
            raise ValueError(
                f"input {self.name!r} (spectra, scaling: {scaling}) needs pixel_offset_ and pixel_scale_ of shape "
                f"({n},), finite, with pixel_scale_ > 0; got shapes "
                f"{[None if a is None else a.shape for a in arrays]}"
            )

    def _frame(self, dataset: Dataset, rows: NDArray, shifted: bool) -> dict[str, NDArray[np.float64]]:
        """The rest-frame shift of ``rows`` for the resampler: ``{"rv_kms": ...}``, ``{"redshift": ...}`` or none.

        Velocities go in as velocities, so that paper 001's log-grid arithmetic (an additive
        loglam shift) is kept bit for bit.
        """
        s = self.settings
        if s.rest_frame_column is None or shifted:
            return {}
        if s.rest_frame_quantity == "velocity":
            return {"rv_kms": self._radial_velocity(dataset, rows)}
        z = column_values(dataset, s.rest_frame_column, rows, f"inputs.{self.name}.rest_frame_column")
        bad = ~np.isfinite(z) | (z <= -1)
        if bad.any():
            ids = dataset.ids[np.asarray(rows)][bad]
            raise ValueError(
                f"redshift {s.rest_frame_column!r} is missing or <= -1 for {bad.sum()} object(s), e.g. "
                f"{', '.join(map(str, ids[:5]))}; drop them from the dataset or set "
                f"inputs.{self.name}.rest_frame_column: null"
            )
        return {"redshift": z}

    def _radial_velocity(self, dataset: Dataset, rows: NDArray) -> NDArray[np.float64]:
        """RVs in km/s; missing ones from the redshift column when ``missing_rv == "redshift"``."""
        s = self.settings
        fallback = s.redshift_column if s.missing_rv == "redshift" else None
        return radial_velocity(dataset, s.rest_frame_column, rows, fallback_redshift=fallback, input_name=self.name)


def column_values(dataset: Dataset, column: str, rows: NDArray, key: str) -> NDArray[np.float64]:
    """Values of a tabular column, or of a target (as ingest writes RV_ADOP), for ``rows``; ``key`` names the setting."""
    if column in dataset.tabular_columns:
        return dataset.tabular([column], rows)[column].to_numpy(dtype=np.float64)
    if column in dataset.target_names:
        return np.asarray(dataset.target(column, rows), dtype=np.float64)
    raise ValueError(
        f"{key} {column!r} is not in {dataset.path}; its tabular columns are {list(dataset.tabular_columns)} and "
        f"targets {list(dataset.target_names)}: name the column (a velocity in km/s, or a redshift with "
        f"rest_frame_quantity: redshift) or set {key}: null"
    )


def radial_velocity(dataset: Dataset, column: str, rows: NDArray, *, fallback_redshift: str | None = None,
                    input_name: str = "flux") -> NDArray[np.float64]:
    """Radial velocities in km/s of ``rows`` from a tabular column (or a target, as ingest writes RV_ADOP).

    Missing values (NaN, as -9999 is stored) are taken from the redshift column
    ``fallback_redshift`` when given, with ``v = c ((1+z)^2 - 1) / ((1+z)^2 + 1)``, the
    inverse of the relativistic Doppler relation the rest-frame shift uses.
    """
    key = f"inputs.{input_name}"
    rv = column_values(dataset, column, rows, f"{key}.rest_frame_column")
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
            + f"; drop them from the dataset, set {key}.missing_rv: redshift with a redshift column, "
            f"or set {key}.rest_frame_column: null"
        )
    return rv


def _flux_unit(dataset: Dataset) -> str | None:
    """The ``flux_unit`` attribute of ``/spectra`` as text, or None when the dataset records none."""
    unit = dataset.spectra.attrs.get("flux_unit")
    if unit is None:
        return None
    return unit.decode() if isinstance(unit, bytes) else str(unit)
