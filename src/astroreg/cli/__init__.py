"""The ``astroreg`` command line."""

from astroreg.cli._main import build_parser, main

__all__ = ["build_parser", "main"]
