"""Read catalogue files for the catalogue ingest: any supported format, ANNz prefixes stripped, files concatenated."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from astroreg.data._catalog import read_catalog
from astroreg.ingest._hdf5_tables import is_hdf5_path, read_hdf5_table

ANNZ_TYPE_PREFIXES: tuple[str, ...] = ("US", "UI", "UL", "B", "F", "D", "C", "S", "I", "L")
"""ANNz column type prefixes (``F:MAG_U`` is a float column ``MAG_U``), stripped from names."""

_PREFIX = re.compile(r"^(?:" + "|".join(ANNZ_TYPE_PREFIXES) + r"):(.+)$")


def strip_type_prefixes(names: Sequence[str]) -> dict[str, str]:
    """Map names with an ANNz type prefix (``F:MAG_U``) to the bare name (``MAG_U``).

    Raises
    ------
    ValueError
        If stripping makes two names equal.
    """
    renamed = {n: m.group(1).strip() for n in names if (m := _PREFIX.match(str(n)))}
    final = [renamed.get(n, n) for n in names]
    clash = sorted({n for n in final if final.count(n) > 1})
    if clash:
        raise ValueError(f"stripping ANNz type prefixes makes columns {clash} appear twice; keep the prefixes "
                         "(strip_prefixes=False, CLI: --keep-prefixes)")
    return renamed


def read_table(path: str | os.PathLike, *, sep: str | None = None, table: str | int | None = None) -> pd.DataFrame:
    """One catalogue file as a DataFrame: text, FITS and Parquet via :func:`astroreg.data.read_catalog`, HDF5 here.

    ``table`` is the FITS HDU (index or EXTNAME) or the path of the table inside an HDF5 file.
    """
    path = Path(path)
    if is_hdf5_path(path):
        if not path.exists():
            raise FileNotFoundError(f"catalogue {path} does not exist; check the path")
        if path.stat().st_size == 0:
            raise ValueError(f"catalogue {path} is empty (0 bytes); write the table again or pick another file")
        if sep is not None:
            raise ValueError(f"sep={sep!r} only applies to text tables, but {path.name} is HDF5; drop sep=")
        frame = read_hdf5_table(path, None if table is None else str(table))
        if len(frame) == 0:
            raise ValueError(f"catalogue {path} is empty: it has columns {list(frame.columns)[:20]} but no rows")
        return frame
    hdu = int(table) if isinstance(table, str) and table.isdigit() else table
    frame = read_catalog(path, hdu=hdu, sep=sep)
    names = [str(c) for c in frame.columns]
    if names and all(_is_number(n) for n in names):
        raise ValueError(f"catalogue {path} has no header line (its first line is numbers: {names[:4]}); add a "
                         "line of column names, e.g. '#F:MAG_U;F:MAGERR_U;...;D:Z' as ANNz files have")
    return frame


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def read_all(paths: Sequence, role: str, sep, table, strip: bool, renamed: dict) -> tuple[pd.DataFrame, list]:
    frames, info, first_cols, first_name = [], [], None, None
    units: dict[str, str] = {}
    for p in paths:
        frame = read_table(p, sep=sep, table=table)
        file_units = dict(frame.attrs.get("units", {}))
        if strip:
            names = strip_type_prefixes([str(c) for c in frame.columns])
            renamed.update(names)
            frame = frame.rename(columns=names)
            file_units = {names.get(k, k): v for k, v in file_units.items()}
        cols = [str(c) for c in frame.columns]
        if first_cols is None:
            first_cols, first_name = cols, Path(p).name
        elif set(cols) != set(first_cols):
            missing = [c for c in first_cols if c not in cols]
            extra = [c for c in cols if c not in first_cols]
            raise ValueError(
                f"catalogue {p} has different columns from {first_name}: missing {missing}, extra {extra}; "
                "concatenated catalogues need the same columns"
            )
        else:
            frame = frame[first_cols]
        for k, v in file_units.items():
            units.setdefault(k, v)
        frames.append(frame)
        info.append({"file": str(p), "rows": len(frame), "role": role})
    out = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0].reset_index(drop=True)
    out.attrs["units"] = units
    return out, info
