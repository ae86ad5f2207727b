"""Read object catalogues (CSV, FITS tables, Parquet) into pandas DataFrames.

One entry point, :func:`read_catalog`, picks the reader from the file extension, so the
ingest code and the CLI accept whatever table format a survey ships. Column checks go
through :func:`require_columns`, whose message lists the columns that are there.
"""

from __future__ import annotations

import csv
import difflib
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

SUPPORTED_EXTENSIONS: tuple[str, ...] = (".csv", ".txt", ".fits", ".fit", ".fits.gz", ".parquet", ".pq")
"""File name endings that :func:`read_catalog` understands (case-insensitive)."""

_KIND = {
    ".csv": "csv", ".txt": "csv",
    ".fits": "fits", ".fit": "fits", ".fits.gz": "fits",
    ".parquet": "parquet", ".pq": "parquet",
}
# Delimiters tried when sniffing a text table, in order of preference on a tie.
_DELIMITERS = (",", ";", "\t", "|")
_SNIFF_LINES = 50
_MAX_LISTED = 40


def catalog_kind(path: str | os.PathLike) -> str:
    """Reader used for ``path``: ``"csv"``, ``"fits"`` or ``"parquet"``.

    Raises
    ------
    ValueError
        If the extension is not one of :data:`SUPPORTED_EXTENSIONS`.
    """
    name = Path(path).name.lower()
    # Longest ending first, so ".fits.gz" wins over a bare ".gz".
    for ext in sorted(_KIND, key=len, reverse=True):
        if name.endswith(ext):
            return _KIND[ext]
    raise ValueError(
        f"cannot read catalogue {Path(path).name!r}: unknown extension; supported are "
        f"{' '.join(SUPPORTED_EXTENSIONS)}; convert the table to one of these (e.g. CSV or Parquet)"
    )


def read_catalog(
    path: str | os.PathLike,
    columns: Sequence[str] | None = None,
    *,
    hdu: int | str | None = None,
    sep: str | None = None,
) -> pd.DataFrame:
    """Read a catalogue of objects into a DataFrame, one row per object.

    Parameters
    ----------
    path : path-like
        A CSV or text table (``.csv``, ``.txt``; the delimiter, one of ``, ; TAB |`` or
        whitespace, is sniffed; a header line commented with ``#`` above numeric rows
        is used as the header), a FITS binary/ASCII table (``.fits``, ``.fit``,
        ``.fits.gz``) or a Parquet file (``.parquet``, ``.pq``).
    columns : sequence of str, optional
        Read only these columns, in this order. All columns when ``None``.
    hdu : int or str, optional
        FITS only: index or EXTNAME of the table HDU. Default: the first table HDU.
    sep : str, optional
        Text tables only: the field delimiter (e.g. ``";"``; ``r"\\s+"`` for whitespace).
        Default: sniffed.

    Returns
    -------
    pandas.DataFrame
        Shape (n_objects, n_columns). FITS columns are converted to native byte order,
        byte strings are decoded to ``str``, multidimensional columns (e.g. a column of
        shape (n_objects, 8)) are dropped with a warning, and the column units are kept
        in ``frame.attrs["units"]`` (dict of column name to unit string).

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file is empty or has no rows, the extension is not supported, the file
        cannot be parsed, or a requested column is missing.

    Examples
    --------
    >>> cat = read_catalog("gal_morph_test.csv", columns=["file_name", "total_flux"])  # doctest: +SKIP
    >>> cat.shape  # doctest: +SKIP
    (10000, 2)
    """
    path = Path(path)
    kind = catalog_kind(path)
    if not path.exists():
        raise FileNotFoundError(f"catalogue {path} does not exist; check the path (relative paths start at {Path.cwd()})")
    if path.is_dir():
        raise ValueError(f"catalogue {path} is a folder, expected a table file ({' '.join(SUPPORTED_EXTENSIONS)})")
    if path.stat().st_size == 0:
        raise ValueError(f"catalogue {path} is empty (0 bytes); write the table again or pick another file")
    if hdu is not None and kind != "fits":
        raise ValueError(f"hdu={hdu!r} only applies to FITS tables, but {path.name} is read as {kind}; drop hdu=")
    if sep is not None and kind != "csv":
        raise ValueError(f"sep={sep!r} only applies to text tables, but {path.name} is read as {kind}; drop sep=")
    columns = None if columns is None else [str(c) for c in columns]
    if kind == "csv":
        frame = _read_text(path, columns, sep)
    elif kind == "fits":
        frame = _read_fits(path, columns, hdu)
    else:
        frame = _read_parquet(path, columns)
    if len(frame) == 0:
        raise ValueError(f"catalogue {path} is empty: it has columns {list(frame.columns)[:_MAX_LISTED]} but no rows")
    return frame


def require_columns(frame: pd.DataFrame, columns: Sequence[str], source: str | os.PathLike, hint: str = "") -> None:
    """Raise a helpful error when ``frame`` lacks any of ``columns``.

    Parameters
    ----------
    frame : pandas.DataFrame
        The catalogue.
    columns : sequence of str
        Column names that must be present.
    source : str or path-like
        Where the catalogue came from, named in the message.
    hint : str
        What the user should do, e.g. ``"set --file-column"``. A generic hint when empty.

    Raises
    ------
    ValueError
        ``"column 'X' not found in <source>; columns are: ...; <hint>"``.
    """
    have = [str(c) for c in frame.columns]
    missing = [str(c) for c in dict.fromkeys(columns) if str(c) not in have]
    if not missing:
        return
    listed = ", ".join(have[:_MAX_LISTED])
    if len(have) > _MAX_LISTED:
        listed += f", ... ({len(have) - _MAX_LISTED} more)"
    what = f"column {missing[0]!r}" if len(missing) == 1 else "columns " + ", ".join(repr(m) for m in missing)
    close = [m for c in missing for m in difflib.get_close_matches(c, have, n=1, cutoff=0.75)]
    did_you_mean = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
    hint = hint or "check the spelling (names are case-sensitive) or pass the right column name"
    raise ValueError(f"{what} not found in {source}{did_you_mean}; columns are: {listed}; {hint}")


# -- text tables --------------------------------------------------------------------
def _sample_lines(path: Path) -> list[str]:
    lines: list[str] = []
    with open(path, encoding="utf-8", errors="replace", newline="") as fh:
        for line in fh:
            if line.strip():
                lines.append(line.rstrip("\r\n"))
            if len(lines) >= _SNIFF_LINES:
                break
    return lines


def _field_count(line: str, delimiter: str) -> int:
    return len(next(csv.reader([line], delimiter=delimiter)))


def _sniff_delimiter(lines: Sequence[str]) -> str | None:
    """The delimiter that splits every line into the same number (> 1) of fields.

    Among several, the one giving the most fields wins (a ';'-table with decimal commas
    splits its header into fewer fields on ',' than its rows, so ',' is rejected).
    ``None`` means whitespace-separated (or a single column).
    """
    best, best_n = None, 1
    for delim in _DELIMITERS:
        counts = {_field_count(line, delim) for line in lines}
        if len(counts) == 1 and (n := counts.pop()) > best_n:
            best, best_n = delim, n
    if best is None and len(lines[0].split()) <= 1:
        # Ragged rows: trust the header line, so the parser reports the bad row.
        for delim in _DELIMITERS:
            if (n := _field_count(lines[0], delim)) > best_n:
                best, best_n = delim, n
    return best


def _is_numeric_row(fields: Sequence[str]) -> bool:
    try:
        [float(f) for f in fields if f.strip()]
    except ValueError:
        return False
    return True


def _read_text(path: Path, columns: list[str] | None, sep: str | None = None) -> pd.DataFrame:
    lines = _sample_lines(path)
    if not lines:
        raise ValueError(f"catalogue {path} is empty (only blank lines); write the table again or pick another file")
    n_comment = 0
    while n_comment < len(lines) and lines[n_comment].lstrip().startswith("#"):
        n_comment += 1
    body = lines[n_comment:]
    header_line = lines[n_comment - 1].lstrip().lstrip("#").strip() if n_comment else None
    if sep is None:
        delim = _sniff_delimiter(body or [header_line or ""])
    else:
        delim = None if sep.strip() in ("", r"\s+") else sep
    sep = delim if delim is not None else r"\s+"

    def split(line: str) -> list[str]:
        return next(csv.reader([line], delimiter=delim)) if delim else line.split()

    names = None
    # ANNz-style tables comment their header ("#F:MAG_U;F:MAG_G;..." above comma-separated
    # rows): use it when the rows below are numbers and the field counts agree, whatever
    # delimiter the header itself uses.
    if header_line and body and _is_numeric_row(split(body[0])):
        n_fields = len(split(body[0]))
        for hdelim in (delim, *_DELIMITERS, None):
            fields = [f.strip() for f in (header_line.split() if hdelim is None else header_line.split(hdelim))]
            if n_fields > 1 and len(fields) == n_fields:
                names = fields
                break
    kwargs = dict(sep=sep, skiprows=_leading_comment_count(path), skip_blank_lines=True)
    if names is not None:
        kwargs.update(header=None, names=names)
    try:
        head = pd.read_csv(path, nrows=0, **kwargs)
        head.columns = [str(c).strip() for c in head.columns]
        if columns is not None:
            require_columns(head, columns, path)
        frame = pd.read_csv(path, **kwargs)
    except UnicodeDecodeError as err:
        raise ValueError(
            f"catalogue {path} is not UTF-8 text (byte {err.object[err.start:err.start + 1]!r} cannot be "
            f"decoded); save it as UTF-8, e.g. iconv -f latin1 -t utf-8 {path.name} > utf8.csv"
        ) from None
    except pd.errors.ParserError as err:
        sep_name = {None: "whitespace", "\t": "TAB"}.get(delim, repr(delim))
        raise ValueError(
            f"could not parse catalogue {path} as a {sep_name}-separated table: {err}; "
            "check that every row has the same number of fields"
        ) from None
    except pd.errors.EmptyDataError:
        raise ValueError(f"catalogue {path} is empty (no header line); write the table again") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame if columns is None else frame[columns]


def _leading_comment_count(path: Path) -> int:
    """Number of physical lines (blank ones included) before the first non-comment line."""
    n = 0
    with open(path, encoding="utf-8", errors="replace", newline="") as fh:
        for line in fh:
            if line.strip() and not line.lstrip().startswith("#"):
                break
            n += 1
    return n


# -- FITS tables ----------------------------------------------------------------------
def _read_fits(path: Path, columns: list[str] | None, hdu: int | str | None) -> pd.DataFrame:
    from astropy.io import fits
    from astropy.table import Table

    try:
        with fits.open(path, memmap=False) as hdul:
            tables = [i for i, h in enumerate(hdul) if isinstance(h, (fits.BinTableHDU, fits.TableHDU))]
            if hdu is None:
                if not tables:
                    kinds = ", ".join(f"{i}:{type(h).__name__}" for i, h in enumerate(hdul))
                    raise ValueError(
                        f"{path} has no table HDU (HDUs are {kinds}); a catalogue must be a FITS "
                        "binary or ASCII table"
                    )
                hdu = tables[0]
            try:
                chosen = hdul[hdu]
            except (IndexError, KeyError):
                raise ValueError(
                    f"{path} has no HDU {hdu!r}; table HDUs are at indices {tables}; pass one of those as hdu="
                ) from None
            if not isinstance(chosen, (fits.BinTableHDU, fits.TableHDU)):
                raise ValueError(
                    f"HDU {hdu!r} of {path} is a {type(chosen).__name__}, not a table; table HDUs are at "
                    f"indices {tables}"
                )
            table = Table.read(chosen)
    except Exception as err:  # astropy raises OSError, TypeError, KeyError, IndexError, ... for damaged files
        if isinstance(err, ValueError) and str(path) in str(err):
            raise  # one of the messages above
        raise ValueError(f"could not read catalogue {path} as a FITS table ({_oneline(err)}); is the file "
                         "complete?") from None

    if columns is not None:
        require_columns(pd.DataFrame(columns=table.colnames), columns, path)
        table = table[columns]
    multi = [name for name in table.colnames if table[name].ndim > 1]
    if multi:
        shapes = ", ".join(f"{n} {table[n].shape[1:]}" for n in multi)
        warnings.warn(
            f"{path.name}: dropped multidimensional columns {shapes}; a catalogue keeps one value per "
            "object and column (split them into scalar columns if you need them)",
            UserWarning,
            stacklevel=3,
        )
        table.remove_columns(multi)
    units = {name: str(table[name].unit) if table[name].unit is not None else "" for name in table.colnames}
    data = {}
    for name in table.colnames:
        data[name] = _native_column(table[name])
    frame = pd.DataFrame(data, columns=table.colnames)
    frame.attrs["units"] = units
    return frame


def _native_column(col) -> np.ndarray | pd.api.extensions.ExtensionArray:
    """A FITS column as a native-endian numpy array (masked values become NaN / None / <NA>)."""
    mask = np.ma.getmaskarray(col) if getattr(col, "mask", None) is not None else None
    values = np.asarray(col)
    if values.dtype.kind == "S":
        values = np.char.decode(values, "utf-8", errors="replace").astype(str)
    if values.dtype.kind in "biuf" and not values.dtype.isnative:
        values = values.astype(values.dtype.newbyteorder("="))
    if mask is not None and mask.any():
        if values.dtype.kind == "f":
            values = np.where(mask, np.nan, values)
        elif values.dtype.kind in "iu":
            return pd.array(np.ma.masked_array(values, mask).tolist(), dtype="Int64")
        else:
            values = np.where(mask, None, values.astype(object))
    return values


# -- Parquet --------------------------------------------------------------------------
def _read_parquet(path: Path, columns: list[str] | None) -> pd.DataFrame:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(path)
        if columns is not None:
            require_columns(pd.DataFrame(columns=schema.names), columns, path)
        return pq.read_table(path, columns=columns).to_pandas()
    except Exception as err:  # a damaged file: ArrowInvalid, OSError, or bad pandas metadata (UnicodeDecodeError, ...)
        if isinstance(err, ValueError) and not isinstance(err, (pa.ArrowException, UnicodeDecodeError)) \
                and str(path) in str(err):
            raise  # require_columns' message
        raise ValueError(f"could not read catalogue {path} as Parquet ({_oneline(err)}); is the file "
                         "complete?") from None


def _oneline(err: BaseException) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= 300 else text[:297] + "..."
