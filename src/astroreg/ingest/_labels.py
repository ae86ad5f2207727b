"""Label tables joined to survey files by a key: numeric target columns and the row of each key.

The SDSS spectra ingest (:mod:`astroreg.ingest._sdss`, keys: plate, MJD and fiber, or file
names) and the Gaia XP ingest (:mod:`astroreg.ingest._gaiaxp`, keys: source_ids) read their
targets and index their label rows the same way.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping

import numpy as np
import pandas as pd
from numpy.typing import NDArray

MISSING_LABEL = -9999.0
"""A label of this value is missing (SSPP's convention) and is stored as NaN."""


def target_values(frame: pd.DataFrame, targets: Mapping[str, str] | Iterable[str], source: str,
                  advice: str) -> dict[str, NDArray[np.float64]]:
    """Each target column as float64, NaN where missing (empty, NaN or :data:`MISSING_LABEL`).

    Parameters
    ----------
    frame : pandas.DataFrame
        The label table, with every target column (checked by the caller).
    targets : iterable of str
        Target column names (a mapping's keys).
    source : str
        The table as the error message names it.
    advice : str
        What to do, ending the error message.

    Returns
    -------
    dict of str to numpy.ndarray
        Target name to an array of shape ``(n_rows,)``.

    Raises
    ------
    ValueError
        For a target column that is not numeric (booleans included), with its dtype and a
        few of its values.
    """
    values = {}
    for t in targets:
        col = frame[t]
        if not pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
            sample = col.dropna().astype(str).head(3).tolist()
            raise ValueError(f"target column {t!r} in {source} is not numeric (dtype {col.dtype}, values like "
                             f"{sample}); {advice}")
        v = col.to_numpy(dtype=np.float64, na_value=np.nan)
        values[t] = np.where(v == MISSING_LABEL, np.nan, v)
    return values


def first_rows(keys: Iterable[Hashable | None]) -> tuple[dict, dict]:
    """Index a label table's join keys, one per row (``None``: the row has no usable key).

    Returns
    -------
    rows : dict
        Key to the first row that holds it.
    repeats : dict
        Key to its number of rows, for the keys on more than one row.

    Examples
    --------
    >>> first_rows(["a", None, "b", "a"])
    ({'a': 0, 'b': 2}, {'a': 2})
    """
    rows: dict = {}
    repeats: dict = {}
    for i, k in enumerate(keys):
        if k is None:
            continue
        if k in rows:
            repeats[k] = repeats.get(k, 1) + 1
        else:
            rows[k] = i
    return rows, repeats
