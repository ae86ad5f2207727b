"""Helpers shared by the subcommands."""

from __future__ import annotations

import argparse

import yaml


def add_command(sub, name: str, *, help: str, example: str) -> argparse.ArgumentParser:
    """Add a subcommand whose ``--help`` ends with an example."""
    return sub.add_parser(name, help=help, description=help, epilog=f"example:\n  {example}",
                          formatter_class=argparse.RawDescriptionHelpFormatter)


def parse_overrides(items: list[str] | None) -> dict:
    """``--set training.epochs=3`` pairs as a dict, values parsed as YAML scalars."""
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--set expects KEY=VALUE (e.g. training.epochs=3), got {item!r}")
        out[key.strip()] = yaml.safe_load(value)
    return out
