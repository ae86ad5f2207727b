"""``astroreg tune``."""

from __future__ import annotations


def register(sub) -> None:
    """Register the subcommand (being written)."""
