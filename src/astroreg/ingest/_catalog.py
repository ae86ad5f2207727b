"""Ingest photometric catalogues (CSV, FITS, Parquet, HDF5) into an astroreg dataset.

A catalogue is one row per object: magnitudes, errors, a target such as the spectroscopic
redshift. Several files are concatenated (they must have the same columns), ANNz-style
type prefixes (``F:MAG_U``) are stripped, exact duplicate rows are dropped, survey
sentinels (99, -99, -9999, NaN, inf) become missing values, and a per-column policy decides
what happens to them: drop the row, replace the value by a limit (a detection limit, with
the error column set to a given value), add a 0/1 flag feature, or keep NaN. Everything
dropped or replaced is counted in ``<out>.ingest-report.json``, beside per-column ranges.
"""

from __future__ import annotations

import fnmatch
import os
import types
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from astroreg.data._catalog import require_columns
from astroreg.data._dataset import DatasetWriter, _check_fractions, random_splits
from astroreg.ingest._catalog_read import read_all
from astroreg.ingest._images import (
    DEFAULT_SPLITS,
    REPORT_SUFFIX,
    IngestReport,
    finish_ingest,
)
from astroreg.ingest._missing import (
    DEFAULT_SENTINELS,
    MissingPolicy,
    match_columns,
    sentinel_values,
)

DEFAULT_SPLITS_WITH_TEST: Mapping[str, float] = types.MappingProxyType({"train": 0.8, "val": 0.2})
"""Split fractions of the main catalogues when a test catalogue gives the test split."""

_EXAMPLES = 20
_CHUNK = 65536


@dataclass(frozen=True)
class CatalogIngestReport(IngestReport):
    """Outcome of a catalogue ingest (see :class:`IngestReport`), with what was dropped or replaced.

    Attributes
    ----------
    files : list of dict
        Per input file: ``file``, ``rows``, ``role`` (``"main"`` or ``"test"``).
    n_duplicates : int
        Exact duplicate rows dropped (the first copy is kept; a main row that repeats a
        test-catalogue row is the one dropped).
    n_dropped : int
        Rows dropped for a missing value (policy ``drop``).
    missing : dict
        Per used column: ``policy``, ``missing`` (rows with a sentinel, NaN or inf after
        de-duplication), ``sentinels`` and the rows ``dropped``, ``replaced`` or ``flagged``.
    columns : dict
        Per stored column: ``role`` (target/tabular), ``unit``, ``min``, ``max``,
        ``n_nan`` of the stored values.
    splits : dict
        Split name to number of objects.
    renamed : dict
        Original column name to stripped name.
    """

    files: list[dict] = field(default_factory=list)
    n_duplicates: int = 0
    n_dropped: int = 0
    missing: dict = field(default_factory=dict)
    columns: dict = field(default_factory=dict)
    splits: dict = field(default_factory=dict)
    renamed: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """JSON-ready summary."""
        return {
            "out": str(self.out), "n_rows": self.n_rows, "n_ok": self.n_ok,
            "n_duplicates": self.n_duplicates, "n_dropped": self.n_dropped,
            "files": self.files, "splits": self.splits, "renamed": self.renamed,
            "missing": self.missing, "columns": self.columns,
            "dropped_examples": [{"row": f, "reason": r} for f, r in self.skipped],
        }

    def summary(self, max_lines: int = _EXAMPLES) -> str:
        """Counts, the missing-value actions per column and each stored column's range."""
        lines = [self._headline()]
        lines.append(f"  exact duplicate rows dropped: {self.n_duplicates}; rows dropped for missing values: "
                     f"{self.n_dropped}")
        for name, m in self.missing.items():
            if m["missing"]:
                done = ", ".join(f"{k} {m[k]}" for k in ("dropped", "replaced", "flagged", "kept") if m.get(k))
                lines.append(f"  {name}: {m['missing']} missing -> {m['policy']}" + (f" ({done})" if done else ""))
        if self.splits:
            lines.append("  splits: " + ", ".join(f"{k} {v}" for k, v in self.splits.items()))
        width = max((len(c) for c in self.columns), default=0)
        for name, c in self.columns.items():
            lo, hi = (f"{c[k]:<12.6g}" if c[k] is not None else f"{'-':<12}" for k in ("min", "max"))
            lines.append(f"  {name:<{width}}  {c['role']:<7} min {lo} max {hi}"
                         + (f" NaN {c['n_nan']}" if c["n_nan"] else "") + (f"  [{c['unit']}]" if c["unit"] else ""))
        lines.append(f"report: {self.report_path}")
        return "\n".join(lines)

    def _headline(self) -> str:
        if not self.n_ok:
            return f"ingested none of {self.n_rows} catalogue rows"
        return f"ingested {self.n_ok} of {self.n_rows} catalogue rows into {self.out}"


def ingest_catalog(
    catalogs: str | os.PathLike | Sequence[str | os.PathLike],
    out: str | os.PathLike,
    *,
    targets: Mapping[str, str] | Sequence[str],
    tabular: Sequence[str] | None = None,
    exclude: Sequence[str] = (),
    id_column: str | None = None,
    id_style: Literal["file", "row"] = "file",
    units: Mapping[str, str] | None = None,
    sep: str | None = None,
    table: str | int | None = None,
    strip_prefixes: bool = True,
    sentinels: Sequence[float] | None = DEFAULT_SENTINELS,
    column_sentinels: Mapping[str, Sequence[float] | str | None] | None = None,
    missing: Mapping[str, str | MissingPolicy] | None = None,
    missing_default: str | MissingPolicy = "drop",
    test_catalogs: str | os.PathLike | Sequence[str | os.PathLike] | None = None,
    split_fractions: Mapping[str, float] | None = DEFAULT_SPLITS,
    seed: int = 0,
    progress: bool = True,
) -> CatalogIngestReport:
    """Turn one or more object catalogues into an astroreg dataset of tabular inputs and targets.

    Parameters
    ----------
    catalogs : path-like or sequence of path-like
        CSV/text (any delimiter, ``#`` header line), FITS table, Parquet or HDF5 table
        (a group of column datasets as RAIL/tables_io write, a pandas ``to_hdf`` table or
        an astropy HDF5 table). Several files are concatenated and need the same columns.
    out : path-like
        Dataset file to write (``.h5``), atomically; ``<out>.ingest-report.json`` beside it.
    targets : mapping of str to str, or sequence of str
        Target columns and their units, e.g. ``{"Z": ""}`` (redshift is dimensionless).
    tabular : sequence of str, optional
        Columns stored as tabular inputs. Default: every other numeric column (not a
        target, the id column or ``exclude``).
    exclude : sequence of str
        Columns (or glob patterns) left out of the default ``tabular``.
    id_column : str, optional
        Column with object ids (unique). Default: generated, see ``id_style``.
    id_style : {"file", "row"}
        Generated ids: ``"<file stem>:<row in file>"`` (``boss_dr10_0:17``) or ``"row<k>"``
        counting all input rows (main catalogues, then the test catalogues).
    units : mapping of str to str, optional
        Units of columns (names or glob patterns), e.g. ``{"MAG_*": "mag"}``. Default: the
        file's units (FITS, astropy HDF5), else ``""``.
    sep : str, optional
        Delimiter of text catalogues; default sniffed.
    table : str or int, optional
        FITS HDU or HDF5 table path, when a file holds several tables.
    strip_prefixes : bool
        Strip ANNz type prefixes (``F:``, ``D:``, ``I:``, ... see :data:`ANNZ_TYPE_PREFIXES`).
    sentinels : sequence of float, optional
        Values read as missing in every used column; NaN and +-inf always are.
    column_sentinels : mapping, optional
        Per column (name or glob pattern): its own sentinel values instead of ``sentinels``
        (``None`` or ``"none"``: only NaN and inf), e.g. ``{"MAG_U": [99, -99]}``.
    missing : mapping of str to str or MissingPolicy, optional
        Per column (name or glob pattern) a :class:`MissingPolicy` or its text form:
        ``drop``, ``keep``, ``flag[:VALUE]``, ``limit:VALUE[:ERRCOL=ERRVALUE]``.
    missing_default : str or MissingPolicy
        Policy of the other columns (targets accept only ``drop`` and ``keep``).
    test_catalogs : path-like or sequence of path-like, optional
        Catalogues ingested as the ``test`` split; ``split_fractions`` then splits the
        main catalogues (default ``train=0.8, val=0.2``) and may not name ``test``.
    split_fractions : mapping of str to float, optional
        Random split fractions summing to 1; ``None`` stores no random splits.
    seed : int
        Seed of the random splits.
    progress : bool
        Print the summary.

    Returns
    -------
    CatalogIngestReport
        Counts, per-column missing-value actions and ranges, also written as JSON.

    Raises
    ------
    FileNotFoundError
        If a catalogue does not exist.
    ValueError
        Unreadable or empty files, catalogues with different columns, a missing column,
        bad options or ids; :class:`~astroreg.ingest.NothingIngestedError` when every
        row was dropped (the report is still written).

    Examples
    --------
    >>> report = ingest_catalog(  # doctest: +SKIP
    ...     ["boss_dr10_0.csv", "boss_dr10_1.csv"], "boss.h5", targets={"Z": ""},
    ...     units={"MAG*": "mag"}, missing={"MAG_U": "limit:26.5:MAGERR_U=1.0"})
    >>> report.n_ok  # doctest: +SKIP
    12000
    """
    out = Path(out)
    main_paths = [catalogs] if isinstance(catalogs, (str, os.PathLike)) else list(catalogs)
    test_paths = [] if test_catalogs is None else (
        [test_catalogs] if isinstance(test_catalogs, (str, os.PathLike)) else list(test_catalogs))
    if not main_paths:
        raise ValueError("no catalogue given; pass at least one file (CLI: --catalog FILE ...)")
    if id_style not in ("file", "row"):
        raise ValueError(f"id_style must be 'file' or 'row', got {id_style!r}")
    fractions = _fractions(split_fractions, bool(test_paths))
    default_policy = missing_default if isinstance(missing_default, MissingPolicy) \
        else MissingPolicy.parse(missing_default)
    if default_policy.action == "limit":
        raise ValueError("missing_default cannot be limit (a limit belongs to one column); give it per column "
                         "with missing={'COLUMN': 'limit:VALUE'} (CLI: --missing COLUMN=limit:VALUE)")

    renamed: dict[str, str] = {}
    frame, files = read_all(main_paths, "main", sep, table, strip_prefixes, renamed)
    n_main_rows = len(frame)
    file_of = np.repeat(np.arange(len(files)), [f["rows"] for f in files])
    row_in_file = np.concatenate([np.arange(f["rows"]) for f in files])
    if test_paths:
        test, test_files = read_all(test_paths, "test", sep, table, strip_prefixes, renamed)
        files += test_files
        file_of = np.concatenate([file_of, len(files) - len(test_files)
                                  + np.repeat(np.arange(len(test_files)), [f["rows"] for f in test_files])])
        row_in_file = np.concatenate([row_in_file] + [np.arange(f["rows"]) for f in test_files])
    source = ", ".join(Path(f["file"]).name for f in files)
    file_units = dict(frame.attrs.get("units", {}))

    target_units, tabular_cols = _resolve(frame, source, targets, tabular, exclude, id_column, file_units)
    used = list(target_units) + [c for c in tabular_cols if c not in target_units]
    if test_paths:
        need = used + ([id_column] if id_column else [])
        require_columns(test, need, ", ".join(f["file"] for f in test_files),
                        "a test catalogue needs the target, tabular and id columns of the main catalogues")
        test.attrs = {}
        frame.attrs = {}
        frame = pd.concat([frame, test[[c for c in frame.columns if c in test.columns]]], ignore_index=True)
    is_test = np.arange(len(frame)) >= n_main_rows

    # -- exact duplicates: keep the first copy, but the test copy over a main one
    order = np.concatenate([np.flatnonzero(is_test), np.flatnonzero(~is_test)]) if test_paths else np.arange(len(frame))
    dup = np.zeros(len(frame), bool)
    dup[order] = _duplicated(frame.iloc[order])
    n_duplicates = int(dup.sum())

    # -- ids
    ids = _make_ids(frame, id_column, id_style, files, file_of, row_in_file)

    # -- missing values
    numeric = [c for c in used if pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])]
    # copies: pandas hands out read-only views, and limits are written in place
    values = {c: np.array(frame[c].to_numpy(dtype=np.float64, na_value=np.nan)) for c in numeric}
    per_col_sent = match_columns(dict(column_sentinels or {}), numeric, "sentinel column")
    sent = {c: sentinel_values(per_col_sent[c]) if c in per_col_sent else sentinel_values(sentinels)
            for c in numeric}
    # a target takes the default only when it is drop or keep: a flag or limit would invent targets
    target_default = default_policy if default_policy.action in ("drop", "keep") else MissingPolicy("drop")
    policies = {c: target_default if c in target_units else default_policy for c in numeric}
    for c, p in match_columns(dict(missing or {}), numeric, "missing-value column").items():
        policies[c] = p if isinstance(p, MissingPolicy) else MissingPolicy.parse(p)
    for t in target_units:
        if t in policies and policies[t].action not in ("drop", "keep"):
            raise ValueError(f"target {t!r} can only have the missing-value policy drop or keep, got "
                             f"{policies[t]}; a limit or flag would invent target values")
    for c, p in policies.items():
        if p.action == "limit" and p.error_column is not None:
            require_columns(frame, [p.error_column], source, f"fix the error column of --missing {c}={p}")
            if p.error_column not in values:
                raise ValueError(f"error column {p.error_column!r} of --missing {c}={p} is not a used numeric "
                                 "column; store it as a tabular column or drop :ERRCOL=ERRVALUE")

    miss = {c: ~np.isfinite(values[c]) | np.isin(values[c], sent[c]) for c in numeric}
    keep = ~dup
    report_missing: dict[str, dict] = {}
    for c in numeric:
        report_missing[c] = {"policy": str(policies[c]), "sentinels": list(sent[c]),
                             "missing": int((miss[c] & keep).sum())}
    for c in numeric:  # limits first: they may clear the missing error values they overwrite
        p = policies[c]
        if p.action == "limit":
            rows = miss[c].copy()
            values[c][rows] = p.value
            report_missing[c]["replaced"] = int((rows & keep).sum())
            if p.error_column:
                values[p.error_column][rows] = p.error_value
                miss[p.error_column] = miss[p.error_column] & ~rows
            miss[c] = np.zeros(len(frame), bool)
    drop_cols = [c for c in numeric if policies[c].action == "drop"]
    dropped = np.zeros(len(frame), bool)
    examples: list[tuple[str, str]] = []
    for c in drop_cols:
        rows = miss[c] & keep
        report_missing[c]["dropped"] = int((rows & ~dropped).sum())
        for i in np.flatnonzero(rows & ~dropped)[: max(0, _EXAMPLES - len(examples))]:
            examples.append((f"{Path(files[file_of[i]]['file']).name}:{row_in_file[i]}",
                             f"{c} missing (value {frame[c].iloc[i]})"))
        dropped |= rows
    keep &= ~dropped
    for c in numeric:  # what is still missing (kept or flagged) is stored as NaN, never as the sentinel
        values[c][miss[c]] = np.nan
    n_dropped = int(dropped.sum())
    rows = np.flatnonzero(keep)
    n_main_kept = int((keep & ~is_test).sum())

    # -- splits on the kept rows (main rows first, test rows after them)
    splits = {}
    if n_main_kept and fractions is not None:
        splits = random_splits(n_main_kept, fractions, seed)
    if test_paths:
        splits = dict(splits) if splits else {"train": np.arange(n_main_kept, dtype=np.int64)}
        splits["test"] = np.arange(n_main_kept, len(rows), dtype=np.int64)

    # -- flags, filled from the training rows
    stored = {t: values[t][rows] for t in target_units}
    tab_values: dict[str, np.ndarray] = {}
    tab_units: dict[str, str] = {}
    col_units = _units(units, used, file_units)
    fit_rows = splits.get("train", np.arange(n_main_kept)) if splits else np.arange(len(rows))
    for c in tabular_cols:
        if c in values:
            v = values[c][rows]
            p = policies[c]
            if p.action == "flag":
                m = miss[c][rows]
                present = v[fit_rows][~m[fit_rows]]
                fill = p.value if p.value is not None else (float(np.median(present)) if present.size else 0.0)
                v = np.where(m, fill, v)
                tab_values[c] = v
                tab_units[c] = col_units.get(c, "")
                tab_values[f"{c}_missing"] = m.astype(np.uint8)
                tab_units[f"{c}_missing"] = ""
                report_missing[c].update(flagged=int(m.sum()), fill=fill)
                continue
            if p.action == "keep":
                report_missing[c]["kept"] = int(miss[c][rows].sum())
            tab_values[c] = v if not pd.api.types.is_integer_dtype(frame[c]) or miss[c][rows].any() \
                else frame[c].to_numpy()[rows]
        else:
            tab_values[c] = _other_values(frame[c], rows)
        tab_units[c] = col_units.get(c, "")
    for t in target_units:
        if policies.get(t) and policies[t].action == "keep":
            report_missing[t]["kept"] = int(miss[t][rows].sum())
    stored_ids = ids[rows]
    if id_column is not None:  # generated ids are unique by construction
        _check_ids(stored_ids, id_column, source)

    n_ok = len(rows)
    if n_ok:
        _write(out, stored_ids, tab_values, tab_units, stored, target_units, splits, fractions, seed, test_paths,
               source)
    report = CatalogIngestReport(
        out=out, report_path=out.with_name(out.name + REPORT_SUFFIX), n_rows=len(frame), n_ok=n_ok,
        skipped=examples, files=files, n_duplicates=n_duplicates, n_dropped=n_dropped,
        missing={c: m for c, m in report_missing.items()},
        columns=_column_stats(stored, target_units, tab_values, tab_units),
        splits={k: len(v) for k, v in splits.items()}, renamed=renamed,
    )
    settings = {
        "catalogs": [str(p) for p in main_paths], "test_catalogs": [str(p) for p in test_paths],
        "targets": target_units, "tabular": list(tab_values), "id_column": id_column, "id_style": id_style,
        "sep": sep, "table": table, "strip_prefixes": strip_prefixes, "sentinels": list(sentinel_values(sentinels)),
        "missing_default": str(default_policy),
        "split_fractions": None if fractions is None else dict(fractions), "seed": seed,
    }
    worst = max(drop_cols, key=lambda c: report_missing[c].get("dropped", 0), default=None)
    return finish_ingest(
        report, settings, progress=progress,
        nothing=f"all {len(frame)} rows of {source} were dropped ({n_duplicates} duplicates, {n_dropped} with a "
                "missing value under policy drop)",
        advice=(f"column {worst!r} is missing most often: give it another policy (CLI: --missing {worst}=flag or "
                f"limit:VALUE) or leave it out (--exclude {worst})") if worst else "check the catalogue",
    )


def _fractions(split_fractions, with_test: bool):
    if split_fractions is None:
        return None
    if with_test and split_fractions is DEFAULT_SPLITS:
        split_fractions = DEFAULT_SPLITS_WITH_TEST
    fractions = {str(k): float(v) for k, v in dict(split_fractions).items()}
    if with_test and "test" in fractions:
        raise ValueError(f"split fractions {fractions} name 'test', but the test split comes from the test "
                         "catalogue; give only the other splits, e.g. train=0.8,val=0.2")
    _check_fractions(fractions)
    return fractions


def _resolve(frame, source, targets, tabular, exclude, id_column, file_units):
    if isinstance(targets, str):
        targets = [targets]
    if isinstance(targets, Mapping):
        target_units = {str(k): str(v) for k, v in targets.items()}
    else:
        target_units = {str(t): str(file_units.get(t, "")) for t in targets}
    if not target_units:
        raise ValueError("no targets given; name at least one catalogue column, e.g. targets={'Z': ''} "
                         "(CLI: --target Z)")
    require_columns(frame, list(target_units), source, "pass targets that are catalogue columns (CLI: --target NAME)")
    if id_column is not None:
        require_columns(frame, [id_column], source, "pass an existing id column (CLI: --id) or leave it out")
    for t in target_units:
        if not pd.api.types.is_numeric_dtype(frame[t]) or pd.api.types.is_bool_dtype(frame[t]):
            sample = frame[t].dropna().astype(str).head(3).tolist()
            raise ValueError(f"target column {t!r} in {source} is not numeric (dtype {frame[t].dtype}, values like "
                             f"{sample}); pick a numeric column or clean the catalogue")
    columns = [str(c) for c in frame.columns]
    excluded = set()
    for pat in exclude:
        hits = [c for c in columns if fnmatch.fnmatchcase(c, pat)]
        if not hits:
            raise ValueError(f"exclude {pat!r} matches no column of {source}; columns are: {', '.join(columns)}")
        excluded.update(hits)
    reserved = set(target_units) | ({id_column} if id_column else set())
    if tabular is None:
        cols = [c for c in columns if c not in reserved and c not in excluded
                and pd.api.types.is_numeric_dtype(frame[c])]
    else:
        cols = [str(c) for c in dict.fromkeys(tabular)]
        require_columns(frame, cols, source, "drop it from the tabular columns (CLI: --tabular)")
        leaks = [c for c in cols if c in target_units]
        if leaks:
            raise ValueError(f"column {leaks[0]!r} is both a target and a tabular input, so a model would see its "
                             "own answer; remove it from the tabular columns")
    if not cols:
        raise ValueError(f"no tabular column left in {source} (columns: {', '.join(columns)}); a catalogue dataset "
                         "needs at least one input column: check --tabular/--exclude")
    return target_units, cols


def _units(units, used, file_units) -> dict[str, str]:
    out = {c: str(file_units.get(c, "") or "") for c in used}
    for c, u in match_columns(dict(units or {}), used, "unit column").items():
        out[c] = str(u)
    from astropy import units as au

    for c, u in out.items():
        if u and isinstance(au.Unit(u, parse_strict="silent"), au.UnrecognizedUnit):
            warnings.warn(f"unit {u!r} of column {c!r} is not an astropy unit; stored as given, but unit "
                          "conversions will refuse it", UserWarning, stacklevel=4)
    return out


def _make_ids(frame, id_column, id_style, files, file_of, row_in_file) -> np.ndarray:
    """Object ids, an object array of str of shape (n_rows,)."""
    if id_column is not None:
        return np.asarray(["" if pd.isna(v) else str(v).strip() for v in frame[id_column]], dtype=object)
    if id_style == "row":
        return np.asarray([f"row{i}" for i in range(len(frame))], dtype=object)
    stems = [_stem(f["file"]) for f in files]
    if len(set(stems)) < len(stems):
        clash = sorted({s for s in stems if stems.count(s) > 1})
        raise ValueError(f"catalogues {clash} share a file name, so file-based ids would repeat; use "
                         "id_style='row' (CLI: --id-style row) or an id column (--id)")
    prefix = [s + ":" for s in stems]
    return np.asarray([prefix[f] + str(r) for f, r in zip(file_of.tolist(), row_in_file.tolist())], dtype=object)


def _duplicated(frame: pd.DataFrame) -> np.ndarray:
    """``frame.duplicated(keep="first")``, exact, but compared in full only among rows whose hashes repeat."""
    hashes = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    candidates = np.flatnonzero(pd.Series(hashes).duplicated(keep=False).to_numpy())
    dup = np.zeros(len(frame), bool)
    if candidates.size:
        dup[candidates] = frame.iloc[candidates].duplicated(keep="first").to_numpy()
    return dup


def _stem(name: str) -> str:
    base = Path(name).name
    for suffix in (".fits.gz", ".csv.gz"):
        if base.lower().endswith(suffix):
            return base[: -len(suffix)]
    return Path(base).stem


def _check_ids(ids: np.ndarray, id_column: str | None, source: str) -> None:
    if (ids == "").any():
        raise ValueError(f"empty id in column {id_column!r} of {source}; fill it or drop --id to generate ids")
    if len(set(ids)) < len(ids):
        seen, repeated = set(), []
        for i in ids:
            if i in seen:
                repeated.append(i)
            seen.add(i)
        raise ValueError(f"ids repeat in column {id_column!r} of {source} (e.g. {repeated[:3]}, {len(repeated)} "
                         "repeats among rows that are not exact duplicates); pick a unique id column or drop --id")


def _other_values(series: pd.Series, rows: np.ndarray) -> np.ndarray:
    if pd.api.types.is_bool_dtype(series) and not series.isna().any():
        return series.to_numpy(dtype=bool)[rows]
    return np.asarray(["" if pd.isna(v) else str(v) for v in series.iloc[rows]], dtype=object)


def _column_stats(targets, target_units, tab_values, tab_units) -> dict:
    out = {}
    for role, cols, units in (("target", targets, target_units), ("tabular", tab_values, tab_units)):
        for c, v in cols.items():
            if v.dtype.kind not in "biuf":
                continue
            f = v.astype(np.float64)
            finite = f[np.isfinite(f)]
            out[c] = {"role": role, "unit": units.get(c, ""),
                      "min": float(finite.min()) if finite.size else None,
                      "max": float(finite.max()) if finite.size else None,
                      "n_nan": int((~np.isfinite(f)).sum())}
    return out


def _write(out, ids, tab_values, tab_units, targets, target_units, splits, fractions, seed, test_paths, source):
    writer = DatasetWriter(out, targets=target_units, tabular=tab_units,
                           description=f"catalogue ingest of {source}")
    writer.open()
    try:
        for start in range(0, len(ids), _CHUNK):
            sl = slice(start, start + _CHUNK)
            writer.append(ids[sl], tabular={c: v[sl] for c, v in tab_values.items()},
                          targets={t: v[sl] for t, v in targets.items()})
        if splits:
            if test_paths or fractions is None:
                writer.set_splits(splits, seed=seed)
            else:
                writer.make_splits(fractions, seed=seed)  # the same draw as random_splits above, fractions stored
        writer.close()
    except BaseException:
        writer.abort()
        raise
