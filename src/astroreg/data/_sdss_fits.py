"""Moved to :mod:`astroreg.ingest._sdss_fits`: a forward for callers not yet updated (remove once none imports it).

Names are looked up in :mod:`astroreg.ingest._sdss_fits` on first use, so importing this module does not load
the reader (nor, through it, :mod:`astroreg.preprocess`).
"""

import importlib


def __getattr__(name: str):
    return getattr(importlib.import_module("astroreg.ingest._sdss_fits"), name)
