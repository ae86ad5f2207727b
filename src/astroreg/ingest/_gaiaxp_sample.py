"""Sample Gaia XP spectra of any form onto the kept samples of the layout: parsing, checks, GaiaXPy.

The part of :func:`~astroreg.ingest.ingest_gaia_xp` that runs on one chunk of sources
(in a worker process when there are several): array cells parsed, lengths and values
checked, continuous spectra sampled with GaiaXPy (``convert`` for internal flux at the
layout's pseudo-wavelengths, ``calibrate`` for absolute flux at the kept wavelengths),
the archive's 343 samples interpolated linearly, 120-sample spectra truncated.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from astroreg.ingest._gaiaxp_read import (
    ARCHIVE_SAMPLED_NM,
    BAND_PREFIXES,
    ID_COLUMN,
    array_columns,
    parse_array,
)
from astroreg.preprocess._xp_layout import (
    import_gaiaxpy,
    BANDS,
    XP_SAMPLES,
    XpTruncation,
    kept_wavelengths,
    pseudo_wavelengths,
)


@dataclass
class ChunkState:
    """What an ingest (or one chunk of it, in a worker) read, left out and warned about."""

    n_sources: int = 0
    skipped: list = field(default_factory=list)
    seen: set = field(default_factory=set)
    n_unlabelled: int = 0
    unlabelled: list = field(default_factory=list)
    labelled_rows: set = field(default_factory=set)
    nonpositive: list = field(default_factory=list)

    def skip(self, source: str, reason: str) -> None:
        self.skipped.append((source, reason))


def process_chunk(form: str, selected: dict, converter: XpSampler):
    """Parse, check and sample the selected rows of a chunk (in a worker process when there are several).

    Returns ``(ids, flux, error or None, label rows, state)`` where ``state`` holds this
    chunk's skipped and nonpositive sources only.
    """
    state = ChunkState()
    good = _parse(form, selected, state)
    if good is None:
        return np.zeros(0, np.int64), None, None, [], state
    return (*converter(form, good, state), state)


def _parse(form: str, selected: dict, state: ChunkState) -> dict | None:
    """The selected rows whose arrays parse and check, arrays as float64; the others go to ``state``."""
    good: dict = {ID_COLUMN: [], "_row": []}
    cols = [c for c in array_columns(form) if c in selected]
    scalars = [c for c in selected if c not in cols and c not in (ID_COLUMN, "_row")]
    for i, (sid, row) in enumerate(zip(selected[ID_COLUMN], selected["_row"])):
        parsed, reason = {}, None
        for c in cols:
            try:
                parsed[c] = parse_array(selected[c][i])
            except ValueError as err:
                reason = f"{c}: {err}"
                break
        reason = reason or _check_arrays(form, parsed, {c: selected[c][i] for c in scalars})
        if reason is not None:
            state.skip(str(sid), reason)
            continue
        good[ID_COLUMN].append(sid)
        good["_row"].append(row)
        for c in cols:
            good.setdefault(c, []).append(parsed[c])
        for c in scalars:
            good.setdefault(c, []).append(selected[c][i])
    return good if good[ID_COLUMN] else None


def _check_arrays(form: str, parsed: dict, scalars: dict) -> str | None:
    """Why a row's arrays are unusable (missing band, wrong length, not finite), or None."""
    if form == "continuous":
        for b in BAND_PREFIXES:
            band = b.upper()
            coef = parsed[f"{b}_coefficients"]
            if coef is None:
                return f"{band} coefficients missing (the source has no {band} spectrum)"
            n = _as_int(scalars.get(f"{b}_n_parameters"))
            if n is None or n != coef.size:
                return f"{band}: {coef.size} coefficients but {b}_n_parameters is {scalars.get(f'{b}_n_parameters')}"
            err, corr = parsed[f"{b}_coefficient_errors"], parsed[f"{b}_coefficient_correlations"]
            if err is None or corr is None:
                return f"{band} coefficient errors or correlations missing"
            if err.size != n or corr.size != n * (n - 1) // 2:
                return (f"{band}: {err.size} coefficient errors and {corr.size} correlations for {n} coefficients "
                        f"(expected {n} and {n * (n - 1) // 2})")
            sd = scalars.get(f"{b}_standard_deviation")
            if not all(np.isfinite(a).all() for a in (coef, err, corr)) or sd is None or not np.isfinite(float(sd)):
                return f"{band} coefficients, errors, correlations or standard deviation not finite"
        return None
    if form == "calibrated":
        f = parsed["flux"]
        if f is None:
            return "flux missing"
        if f.size != ARCHIVE_SAMPLED_NM.size:
            return (f"flux has {f.size} samples; sampled Gaia XP spectra have {ARCHIVE_SAMPLED_NM.size} (336-1020 nm "
                    "every 2 nm, the archive's and GaiaXPy calibrate's default sampling)")
        e = parsed.get("flux_error")
        if e is not None and e.size != f.size:
            return f"flux_error has {e.size} samples but flux {f.size}"
        return None
    for b in BAND_PREFIXES:
        f = parsed.get(f"{b}_flux")
        if f is None:
            return f"{b.upper()} flux missing (the source has no {b.upper()} spectrum)"
        if f.size != XP_SAMPLES:
            return f"{b}_flux has {f.size} samples, expected {XP_SAMPLES} (the layout's sampling per band)"
        e = parsed.get(f"{b}_flux_error")
        if e is not None and e.size != XP_SAMPLES:
            return f"{b}_flux_error has {e.size} samples, expected {XP_SAMPLES}"
    return None


def _as_int(value) -> int | None:
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return int(f) if np.isfinite(f) and f == int(f) else None


def pivot_converted(frame: pd.DataFrame, state: ChunkState, path: Path) -> pd.DataFrame:
    """GaiaXPy ``convert`` output (a row per source and band) as one row per source with ``bp_flux``/``rp_flux``.

    ``convert`` samples in increasing pseudo-wavelength, which for BP is decreasing
    wavelength: the samples are put in the layout's order (increasing wavelength) here.
    A cell that does not parse is kept as it is, for the chunk's checks to report.
    """
    out: dict = {}
    rank = {b: np.argsort(np.argsort(pseudo_wavelengths(b))) for b in BANDS}
    for sid, xp, fl, err in zip(frame[ID_COLUMN], frame["xp"].astype(str).str.upper(), frame["flux"],
                                frame["flux_error"] if "flux_error" in frame else [None] * len(frame)):
        if xp not in BANDS:
            state.skip(str(sid), f"xp is {xp!r} in {path.name}; expected BP or RP")
            continue
        row = out.setdefault(sid, {ID_COLUMN: sid})
        for key, cell in ((f"{xp.lower()}_flux", fl), (f"{xp.lower()}_flux_error", err)):
            try:
                values = parse_array(cell)
            except ValueError:
                values = cell
            if isinstance(values, np.ndarray) and values.size == XP_SAMPLES:
                values = values[rank[xp]]
            row[key] = values
    cols = [ID_COLUMN, "bp_flux", "rp_flux", "bp_flux_error", "rp_flux_error"]
    return pd.DataFrame([{c: r.get(c) for c in cols} for r in out.values()], columns=cols)


# -- conversion onto the layout ----------------------------------------------------------------
XP_FLUX_SCALE = {"internal": 1.0, "calibrated": 1e17}
"""Factor from GaiaXPy's units to the stored ones: calibrated flux is stored in 1e-17 W m-2 nm-1,
so that fluxes and their inverse variances stay well inside float32 (an error of 1e-20 W m-2 nm-1
would give an ivar of 1e40, beyond float32's 3.4e38)."""

class XpSampler:
    """Turns prepared rows of any form into flux (and error) on the kept samples, shape (n, n_kept)."""

    def __init__(self, truncation: XpTruncation, flux: str) -> None:
        self.truncation = truncation
        self.flux = flux
        kept = kept_wavelengths(truncation)
        self.kept_nm = np.concatenate([kept[b] for b in BANDS])

    def __call__(self, form: str, good: dict, state: ChunkState):
        ids = np.asarray(good[ID_COLUMN], dtype=np.int64)
        rows = good["_row"]
        if form == "continuous":
            fl, err = self._continuous(good, ids)
        elif form == "calibrated":
            fl, err = self._interpolated(good)
        else:
            fl, err = self._truncated(good)
        scale = XP_FLUX_SCALE[self.flux]
        if scale != 1.0:
            fl = fl * scale
            err = None if err is None else err * scale
        ok = np.isfinite(fl).all(axis=1)
        if err is not None:
            ok_err = np.isfinite(err).all(axis=1) & (err > 0).all(axis=1)
            for i in np.flatnonzero(ok & ~ok_err):
                state.skip(str(ids[i]), "flux error not finite or not positive at some kept sample")
            ok_bad = ok
            ok = ok & ok_err
        else:
            ok_bad = ok
        for i in np.flatnonzero(~ok_bad):
            n_bad = int((~np.isfinite(fl[i])).sum())
            state.skip(str(ids[i]), f"{n_bad} of {fl.shape[1]} kept flux samples are NaN or infinite")
        nonpos = ok & ~(fl > 0).any(axis=1)
        state.nonpositive += [str(s) for s in ids[nonpos]]
        keep = np.flatnonzero(ok)
        return ids[keep], fl[keep], None if err is None else err[keep], [rows[i] for i in keep]

    def _continuous(self, good: dict, ids: np.ndarray):
        frame = pd.DataFrame({k: v for k, v in good.items() if k != "_row"})
        frame[ID_COLUMN] = ids
        for b in BAND_PREFIXES:
            frame[f"{b}_n_parameters"] = frame[f"{b}_n_parameters"].astype(np.int64)
            frame[f"{b}_standard_deviation"] = frame[f"{b}_standard_deviation"].astype(np.float64)
        if self.flux == "internal":
            pwl = {b: pseudo_wavelengths(b) for b in BANDS}
            union = np.unique(np.concatenate(list(pwl.values())))
            out = _gaiaxpy("convert", frame, union)
            parts_f, parts_e = [], []
            for b in BANDS:
                sub = out[out["xp"].astype(str).str.upper() == b]
                _check_order(sub[ID_COLUMN].to_numpy(np.int64), ids)
                idx = np.searchsorted(union, pwl[b])[self.truncation.kept(b)]
                parts_f.append(np.stack(sub["flux"].to_numpy())[:, idx])
                parts_e.append(np.stack(sub["flux_error"].to_numpy())[:, idx])
            return np.concatenate(parts_f, axis=1), np.concatenate(parts_e, axis=1)
        wl, inverse = np.unique(self.kept_nm, return_inverse=True)
        out = _gaiaxpy("calibrate", frame, wl)
        _check_order(out[ID_COLUMN].to_numpy(np.int64), ids)
        return np.stack(out["flux"].to_numpy())[:, inverse], np.stack(out["flux_error"].to_numpy())[:, inverse]

    def _interpolated(self, good: dict):
        from scipy.interpolate import interp1d

        fl = np.stack(good["flux"])
        f = interp1d(ARCHIVE_SAMPLED_NM, fl, axis=1, assume_sorted=True)(self.kept_nm)
        errs = good.get("flux_error")
        if errs is None or any(e is None for e in errs):
            return f, None
        return f, interp1d(ARCHIVE_SAMPLED_NM, np.stack(errs), axis=1, assume_sorted=True)(self.kept_nm)

    def _truncated(self, good: dict):
        fl = np.concatenate([np.stack(good[f"{b.lower()}_flux"])[:, self.truncation.kept(b)] for b in BANDS], axis=1)
        errs = [good.get(f"{b.lower()}_flux_error") for b in BANDS]
        if any(e is None or any(x is None for x in e) for e in errs):
            return fl, None
        err = np.concatenate([np.stack(e)[:, self.truncation.kept(b)] for e, b in zip(errs, BANDS)], axis=1)
        return fl, err


def _check_order(got: np.ndarray, want: np.ndarray) -> None:
    if got.shape != want.shape or not np.array_equal(got, want):
        raise RuntimeError("GaiaXPy returned the sources in another order or number than given; this GaiaXPy "
                           "version is not supported: report it with `pip show gaiaxpy`")


def _gaiaxpy(kind: str, frame: pd.DataFrame, sampling: np.ndarray) -> pd.DataFrame:
    """GaiaXPy ``convert`` (pseudo-wavelengths) or ``calibrate`` (nm) of ``frame``, offline and quiet.

    GaiaXPy prints progress bars and "Reading input..." lines to stdout, which would mix
    with astroreg's own progress bar: its private ``_convert``/``_calibrate`` take
    ``disable_info=True`` (used when this GaiaXPy has them), and stdout is captured.
    """
    import inspect

    if kind == "convert":
        module = import_gaiaxpy("gaiaxpy.converter.converter")

        public, private = module.convert, getattr(module, "_convert", None)
    else:
        module = import_gaiaxpy("gaiaxpy.calibrator.calibrator")

        public, private = module.calibrate, getattr(module, "_calibrate", None)
    kwargs = {"sampling": np.ascontiguousarray(sampling, dtype=np.float64), "save_file": False}
    fn = public
    if private is not None and "disable_info" in inspect.signature(private).parameters:
        fn, kwargs["disable_info"] = private, True
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out, _ = fn(frame, **kwargs)
    return out
