"""Read catalogue tables stored in HDF5 files, in the layouts surveys and tools write.

Three layouts are recognised, anywhere in the file:

- a group of 1-D column datasets of equal length, as RAIL and ``tables_io`` write them
  (e.g. ``/photometry/mag_u_lsst``, ``/photometry/redshift``); a dataset attribute
  ``unit`` (or ``units``) is kept as the column's unit;
- a pandas ``DataFrame.to_hdf`` group, ``format="fixed"`` or ``format="table"`` (with or
  without ``data_columns``), read with h5py, so PyTables need not be installed. Column
  names that PyTables stores as pickled lists are read with :mod:`pickletools` (the
  opcodes are listed, never executed); object columns, which pandas pickles, are dropped
  with a warning;
- a 1-D compound dataset, as ``astropy.table.Table.write(..., format="hdf5")`` writes it
  (read through astropy, so serialised units come along).
"""

from __future__ import annotations

import pickletools
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

HDF5_EXTENSIONS: tuple[str, ...] = (".h5", ".hdf5", ".hdf", ".he5")
"""File name endings read as HDF5 tables by the catalogue ingest (case-insensitive)."""

_MAX_LISTED = 20


@dataclass(frozen=True)
class _Candidate:
    path: str
    kind: str  # "columns", "pandas", "compound"

    def describe(self) -> str:
        return {"columns": "group of column datasets", "pandas": "pandas to_hdf table",
                "compound": "astropy/compound table"}[self.kind] + f" {self.path!r}"


def is_hdf5_path(path: str | Path) -> bool:
    """Whether ``path`` ends in one of :data:`HDF5_EXTENSIONS`."""
    return Path(path).name.lower().endswith(HDF5_EXTENSIONS)


def read_hdf5_table(path: str | Path, key: str | None = None) -> pd.DataFrame:
    """Read one table from an HDF5 file into a DataFrame.

    Parameters
    ----------
    path : path-like
        The HDF5 file.
    key : str, optional
        Path of the table inside the file (a group of columns, a pandas key or a compound
        dataset), e.g. ``"photometry"``. Needed only when the file holds several tables.

    Returns
    -------
    pandas.DataFrame
        Shape (n_objects, n_columns); units in ``frame.attrs["units"]``.

    Raises
    ------
    ValueError
        If the file is not readable HDF5, holds no table (or several and no ``key``), is
        already an astroreg dataset, or its columns differ in length.

    Examples
    --------
    >>> frame = read_hdf5_table("test_dc2_training_9816.hdf5", key="photometry")  # doctest: +SKIP
    """
    import h5py

    path = Path(path)
    try:
        f = h5py.File(path, "r")
    except Exception as err:  # h5py raises OSError for garbage and truncated files
        raise ValueError(f"could not read catalogue {path} as HDF5 ({_oneline(err)}); is the file complete?") from None
    try:
        with f:
            if f.attrs.get("astroreg_format") is not None:
                raise ValueError(f"{path} is already an astroreg dataset; use it in a recipe (data.path) "
                                 "instead of ingesting it as a catalogue")
            found = _find_tables(f)
            chosen = _choose(path, found, key)
            if chosen.kind == "columns":
                frame = _read_columns(path, f[chosen.path] if chosen.path != "/" else f)
            elif chosen.kind == "pandas":
                frame = _read_pandas(path, f[chosen.path])
            else:
                frame = None
        if frame is None:
            frame = _read_compound(path, chosen.path)
    except Exception as err:  # damaged metadata: OSError, KeyError, RuntimeError, ValueError from h5py
        if isinstance(err, ValueError) and str(path) in str(err):
            raise  # one of the messages above
        raise ValueError(f"could not read catalogue {path} as HDF5 ({_oneline(err)}); is the file complete?") from None
    frame.attrs["hdf5_table"] = chosen.path
    return frame


def _find_tables(f) -> list[_Candidate]:
    import h5py

    found: list[_Candidate] = []

    def visit(group, name: str) -> None:
        if "pandas_type" in group.attrs:
            found.append(_Candidate(name, "pandas"))
            return
        has_columns = False
        for child_name, child in group.items():
            child_path = f"{name.rstrip('/')}/{child_name}" if name != "/" else child_name
            if isinstance(child, h5py.Group):
                visit(child, child_path)
            elif isinstance(child, h5py.Dataset) and child.ndim == 1 and not child_name.endswith("__table_column_meta__"):
                if child.dtype.names is not None:
                    found.append(_Candidate(child_path, "compound"))
                else:
                    has_columns = True
        if has_columns:
            found.append(_Candidate(name, "columns"))

    visit(f, "/")
    return found


def _choose(path: Path, found: list[_Candidate], key: str | None) -> _Candidate:
    listed = "; ".join(c.describe() for c in found[:_MAX_LISTED])
    if key is not None:
        want = key.strip("/") or "/"
        for c in found:
            if c.path.strip("/") == want.strip("/") or (want == "/" and c.path == "/"):
                return c
        raise ValueError(f"no table {key!r} in {path}; tables are: {listed or 'none'}; pass one of those "
                         "as key= (CLI: --table)")
    if not found:
        raise ValueError(
            f"no table found in {path}: expected a group of 1-D column datasets (RAIL/tables_io), a pandas "
            "to_hdf table or an astropy HDF5 table; convert the catalogue to one of these, CSV or Parquet"
        )
    if len(found) > 1:
        raise ValueError(f"{path} holds {len(found)} tables: {listed}; pass the one to read as key= "
                         "(CLI: --table)")
    return found[0]


def _decode(values: np.ndarray) -> np.ndarray:
    if values.dtype.kind == "S":
        return np.char.decode(values, "utf-8", errors="replace").astype(str)
    if values.dtype.kind == "O":
        return np.asarray([v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in values], dtype=object)
    if values.dtype.kind in "biuf" and not values.dtype.isnative:
        return values.astype(values.dtype.newbyteorder("="))
    return values


def _text(value) -> str:
    if isinstance(value, (bytes, np.bytes_)):
        return bytes(value).decode("utf-8", "replace")
    return str(value)


def _read_columns(path: Path, group) -> pd.DataFrame:
    import h5py

    data, units, lengths = {}, {}, {}
    for name, child in group.items():
        if isinstance(child, h5py.Dataset) and child.ndim == 1 and child.dtype.names is None \
                and not name.endswith("__table_column_meta__"):
            data[name] = _decode(child[()])
            lengths[name] = len(data[name])
            for attr in ("unit", "units", "UNIT"):
                if attr in child.attrs:
                    units[name] = _text(child.attrs[attr])
                    break
    if len(set(lengths.values())) > 1:
        sizes = ", ".join(f"{k}: {v}" for k, v in list(lengths.items())[:_MAX_LISTED])
        raise ValueError(f"the column datasets of group {group.name!r} in {path} differ in length ({sizes}); "
                         "a table needs one value per object in every column")
    frame = pd.DataFrame(data)
    frame.attrs["units"] = {k: units.get(k, "") for k in data}
    return frame


def _pickled_strings(value) -> list[str]:
    """The strings inside a PyTables attribute: a pickled list, read opcode by opcode (never unpickled)."""
    if isinstance(value, np.ndarray):
        return [_text(v) for v in value.ravel()]
    raw = bytes(value) if isinstance(value, (bytes, np.bytes_)) else str(value).encode("latin-1")
    out = []
    for op, arg, _ in pickletools.genops(raw):
        if op.name in ("UNICODE", "STRING", "BINUNICODE", "SHORT_BINUNICODE", "BINUNICODE8",
                       "BINSTRING", "SHORT_BINSTRING") and arg is not None:
            out.append(arg.decode("utf-8", "replace") if isinstance(arg, bytes) else str(arg))
    return out


def _read_pandas(path: Path, group) -> pd.DataFrame:
    kind = _text(group.attrs["pandas_type"])
    if kind == "frame":
        return _read_pandas_fixed(path, group)
    if kind == "frame_table":
        return _read_pandas_table(path, group)
    raise ValueError(f"{group.name!r} in {path} is a pandas {kind!r}, not a DataFrame; write the catalogue with "
                     "DataFrame.to_hdf (or as Parquet)")


def _warn_pickled(path: Path, names: list[str]) -> None:
    if names:
        warnings.warn(
            f"{path.name}: dropped columns {names}: pandas stored them as pickled Python objects, which astroreg "
            "does not unpickle; write the catalogue with to_hdf(format='table') or as Parquet to keep them",
            UserWarning, stacklevel=4,
        )


def _read_pandas_fixed(path: Path, group) -> pd.DataFrame:
    order = [_text(v) for v in group["axis0"][()]]
    data: dict[str, np.ndarray] = {}
    pickled: list[str] = []
    for i in range(int(group.attrs.get("nblocks", 0))):
        items = [_text(v) for v in group[f"block{i}_items"][()]]
        values = group[f"block{i}_values"]
        if _text(values.attrs.get("CLASS", b"")) == "VLARRAY" or values.dtype.kind == "O":
            pickled += items
            continue
        arr = _decode(values[()])
        if arr.ndim == 1:
            arr = arr[:, None]
        elif not int(values.attrs.get("transposed", 0)):
            arr = arr.T
        for j, name in enumerate(items):
            data[name] = arr[:, j]
    _warn_pickled(path, pickled)
    names = [c for c in order if c in data]
    frame = pd.DataFrame({c: data[c] for c in names}, columns=names)
    frame.attrs["units"] = {c: "" for c in names}
    return frame


def _read_pandas_table(path: Path, group) -> pd.DataFrame:
    table = group["table"]
    rows = table[()]
    order = _pickled_strings(group.attrs["non_index_axes"]) if "non_index_axes" in group.attrs else []
    data: dict[str, np.ndarray] = {}
    for field in rows.dtype.names:
        if field == "index":
            continue
        names = _pickled_strings(table.attrs[f"{field}_kind"]) if f"{field}_kind" in table.attrs else [field]
        meta = _text(table.attrs.get(f"{field}_meta", b""))
        if meta == "category":
            raise ValueError(f"column(s) {names} in {path} are pandas categoricals, which are not read; convert "
                             "them to strings or numbers before to_hdf")
        arr = _decode(rows[field])
        if arr.ndim == 1:
            arr = arr[:, None]
        for j, name in enumerate(names[: arr.shape[1]]):
            data[name] = arr[:, j]
    names = [c for c in order if c in data] + [c for c in data if c not in order]
    frame = pd.DataFrame({c: data[c] for c in names}, columns=names)
    frame.attrs["units"] = {c: "" for c in names}
    return frame


def _read_compound(path: Path, key: str) -> pd.DataFrame:
    from astropy.table import Table

    try:
        table = Table.read(path, path=key, format="hdf5", character_as_bytes=False)
    except Exception as err:  # astropy's YAML metadata may be missing or odd: fall back to the plain array
        import h5py

        with h5py.File(path, "r") as f:
            rows = f[key][()]
        frame = pd.DataFrame({n: _decode(rows[n]) for n in rows.dtype.names if rows[n].ndim == 1})
        frame.attrs["units"] = {c: "" for c in frame.columns}
        del err
        return frame
    multi = [n for n in table.colnames if table[n].ndim > 1]
    table.remove_columns(multi)
    frame = pd.DataFrame({n: _decode(np.asarray(table[n])) for n in table.colnames}, columns=table.colnames)
    frame.attrs["units"] = {n: str(table[n].unit) if table[n].unit is not None else "" for n in table.colnames}
    return frame


def _oneline(err: BaseException) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= 300 else text[:297] + "..."
