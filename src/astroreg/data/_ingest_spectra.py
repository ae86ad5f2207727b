"""Moved to :mod:`astroreg.ingest._sdss`: a forward for callers not yet updated (remove once none imports it).

Names are looked up in :mod:`astroreg.ingest._sdss` on first use, so importing this module does not load
the reader (nor, through it, :mod:`astroreg.preprocess`).
"""

import importlib

# The generic prepared-spectra attribute names, from where they now live (no reader import).
from astroreg.data._prepared import (  # noqa: F401
    PREPARED_ATTRS,
    PREPARED_BAD_BITS,
    PREPARED_BAD_PIXELS,
    PREPARED_BY,
    PREPARED_GRID,
    PREPARED_MIN_GOOD,
    PREPARED_REDSHIFT,
    PREPARED_REST_FRAME,
)


def __getattr__(name: str):
    return getattr(importlib.import_module("astroreg.ingest._sdss"), name)
