"""Missing values in catalogues: sentinel values and the per-column policies that handle them."""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

DEFAULT_SENTINELS: tuple[float, ...] = (99.0, -99.0, -9999.0)
"""Values read as missing in every used column unless configured otherwise (NaN and +-inf always are)."""


@dataclass(frozen=True)
class MissingPolicy:
    """What to do with a column's missing values.

    Parameters
    ----------
    action : {"drop", "limit", "flag", "keep"}
        ``drop`` the row; replace by a ``limit`` value; ``flag``: add a 0/1 column
        ``<column>_missing`` and fill the value (``value``, default the median of the
        training rows); ``keep`` NaN.
    value : float, optional
        The limit (required for ``limit``) or the fill value of ``flag``.
    error_column : str, optional
        ``limit`` only: a column (e.g. the magnitude error) set to ``error_value`` where
        the limit was used.
    error_value : float, optional
        The value written into ``error_column``.

    Examples
    --------
    >>> MissingPolicy.parse("limit:25.3:MAGERR_U=1.0")
    MissingPolicy(action='limit', value=25.3, error_column='MAGERR_U', error_value=1.0)
    """

    action: Literal["drop", "limit", "flag", "keep"] = "drop"
    value: float | None = None
    error_column: str | None = None
    error_value: float | None = None

    @classmethod
    def parse(cls, text: str) -> MissingPolicy:
        """Parse ``drop``, ``keep``, ``flag[:VALUE]`` or ``limit:VALUE[:ERRCOL=ERRVALUE]``."""
        how = "expected drop, keep, flag[:VALUE] or limit:VALUE[:ERRCOL=ERRVALUE], e.g. limit:25.3:MAGERR_U=1.0"
        parts = str(text).strip().split(":", 2)
        action = parts[0].strip().lower()
        try:
            if action in ("drop", "keep") and len(parts) == 1:
                return cls(action)
            if action == "flag" and len(parts) <= 2:
                return cls("flag", float(parts[1]) if len(parts) == 2 else None)
            if action == "limit" and len(parts) >= 2:
                err_col = err_val = None
                if len(parts) == 3:
                    err_col, sep, val = parts[2].partition("=")
                    if not sep or not err_col.strip():
                        raise ValueError
                    err_col, err_val = err_col.strip(), float(val)
                return cls("limit", float(parts[1]), err_col, err_val)
        except ValueError:
            pass
        raise ValueError(f"missing-value policy {text!r} not understood; {how}")

    def __str__(self) -> str:
        if self.action == "limit":
            err = f":{self.error_column}={self.error_value:g}" if self.error_column else ""
            return f"limit:{self.value:g}{err}"
        if self.action == "flag" and self.value is not None:
            return f"flag:{self.value:g}"
        return self.action


def match_columns(patterns: Mapping[str, object], columns: Sequence[str], what: str) -> dict[str, object]:
    """Per column the value of its exact name, else of the first glob pattern that matches it."""
    out: dict[str, object] = {}
    for pat, value in patterns.items():
        hits = [c for c in columns if c == pat] or [c for c in columns if fnmatch.fnmatchcase(c, pat)]
        if not hits:
            raise ValueError(f"{what} {pat!r} matches no used column; used columns are: {', '.join(columns)}")
        for c in hits:
            if c == pat or c not in out:
                out[c] = value
    return out


def sentinel_values(values) -> tuple[float, ...]:
    if values is None:
        return ()
    try:
        if isinstance(values, str):
            text = values.strip().lower()
            return () if text in ("", "none") else tuple(float(v) for v in text.split(","))
        return tuple(float(v) for v in values)
    except (TypeError, ValueError):
        raise ValueError(f"sentinels {values!r} are not numbers; give comma-separated values such as 99,-99 "
                         "or 'none'") from None
