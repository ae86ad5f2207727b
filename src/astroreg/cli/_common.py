"""Helpers shared by the subcommands."""

from __future__ import annotations

import argparse

import yaml


def add_command(sub, name: str, *, help: str, example: str) -> argparse.ArgumentParser:
    """Add a subcommand whose ``--help`` ends with an example."""
    return sub.add_parser(name, help=help, description=help, epilog=f"example:\n  {example}",
                          formatter_class=argparse.RawDescriptionHelpFormatter)


def positive_int(text: str) -> int:
    """argparse ``type=`` for counts that must be at least 1 (``--chunk-size``, ``--jobs``, ``--n``).

    Raises
    ------
    argparse.ArgumentTypeError
        For anything but a whole number >= 1; argparse turns it into a usage error (exit 2).

    Examples
    --------
    >>> positive_int("256")
    256
    """
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {value}")
    return value


def parse_overrides(items: list[str] | None) -> dict:
    """``--set training.epochs=3`` pairs as a dict, values parsed as YAML scalars.

    Raises
    ------
    ValueError
        For an item without ``=`` or a value that is not valid YAML; the message names the
        key and the value.
    """
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--set expects KEY=VALUE (e.g. training.epochs=3), got {item!r}")
        try:
            out[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError as err:
            problem = getattr(err, "problem", None) or type(err).__name__
            raise ValueError(
                f"--set {key.strip()}: value {value!r} is not valid YAML ({problem}); quote a string "
                f"(--set '{key.strip()}=\"...\"') or close the brackets (e.g. {key.strip()}=[1, 2])"
            ) from None
    return out
