"""Commands made of subcommands (``astroreg ingest LAYOUT``, ``astroreg simulate SURVEY``).

Their parsers are built the same way: the command's own parser is filled only when it is
parsed (:func:`~astroreg.cli._common.add_filled_later`), each subcommand's ``--help`` ends
with an example epilog shown as written, and the commands that write a dataset share the
``--splits``/``--no-splits`` options.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from typing import Any

from astroreg.cli._common import add_filled_later


def add_group(subparsers: Any, name: str, fill: Callable[[argparse.ArgumentParser], None], *, help: str,
              description: str, epilog: str) -> argparse.ArgumentParser:
    """Add a command whose subcommands ``fill(parser)`` adds when it is parsed.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        What ``parser.add_subparsers()`` returned for the main ``astroreg`` parser.
    name : str
        The command, e.g. ``"ingest"``.
    fill : callable
        Adds the subcommands to the command's parser.
    help, description, epilog : str
        The command's line in ``astroreg --help``, and the head and tail of its own ``--help``
        (the epilog keeps its line breaks).

    Returns
    -------
    argparse.ArgumentParser
        The command's parser, whose own subcommands ``fill`` adds.
    """
    return add_filled_later(subparsers, name, fill, help=help, description=description, epilog=epilog,
                            formatter_class=argparse.RawDescriptionHelpFormatter)


def add_subcommand(group: Any, name: str, *, help: str, description: str, epilog: str) -> argparse.ArgumentParser:
    """Add a subcommand (an input layout, a mock survey) whose ``--help`` keeps the line breaks of its texts.

    Parameters
    ----------
    group : argparse._SubParsersAction
        What the command parser's ``add_subparsers()`` returned.
    name : str
        The subcommand, e.g. ``"images"``.
    help, description, epilog : str
        Its line in the command's ``--help``, and the head and tail of its own ``--help``.

    Returns
    -------
    argparse.ArgumentParser
        The subcommand's parser.
    """
    return group.add_parser(name, help=help, description=description, epilog=epilog,
                            formatter_class=argparse.RawDescriptionHelpFormatter)


def parse_splits(text: str) -> dict[str, float]:
    """argparse ``type=`` for ``--splits NAME=FRACTION,...``, e.g. ``train=0.8,test=0.2``.

    Raises
    ------
    argparse.ArgumentTypeError
        For a part without ``=``, a name or a number; argparse turns it into a usage error (exit 2).

    Examples
    --------
    >>> parse_splits("train=0.8,test=0.2")
    {'train': 0.8, 'test': 0.2}
    """
    out: dict[str, float] = {}
    for part in text.split(","):
        name, sep, frac = part.partition("=")
        try:
            out[name.strip()] = float(frac)
        except ValueError:
            sep = ""
        if not sep or not name.strip():
            raise argparse.ArgumentTypeError(
                f"expected NAME=FRACTION,... summing to 1, e.g. train=0.8,test=0.2, got {text!r}"
            )
    return out


def add_split_options(parser: argparse.ArgumentParser, *, help: str, no_help: str = "store no splits") -> None:
    """Add the mutually exclusive ``--splits NAME=FRAC,...`` and ``--no-splits`` (read by :func:`split_fractions`).

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The subcommand's parser.
    help, no_help : str
        Help of ``--splits`` (with its default) and of ``--no-splits``.
    """
    splits = parser.add_mutually_exclusive_group()
    splits.add_argument("--splits", type=parse_splits, default=None, metavar="NAME=FRAC,...", help=help)
    splits.add_argument("--no-splits", action="store_true", help=no_help)


def split_fractions(args: argparse.Namespace, default: Mapping[str, float]) -> Mapping[str, float] | None:
    """The split fractions that :func:`add_split_options`'s options ask for: ``None`` with ``--no-splits``,
    those of ``--splits``, else ``default`` (returned as given)."""
    if args.no_splits:
        return None
    return args.splits if args.splits is not None else default
