"""``astroreg``: one command, with a subcommand per job."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from astroreg import __version__

EPILOG = """examples:
  astroreg demo                                   # simulate a small survey, train, compare with baselines
  astroreg simulate galaxy-images --n 40000 --out data/galaxy-images.h5
  astroreg train recipes/galaxy-flux.yaml
  astroreg predict runs/galaxy-flux-<stamp> --data new.h5 --out predictions.parquet
  astroreg simulate sdss-stars --n 50000 --out data/sdss-stars-mock --jobs 2
  astroreg ingest sdss-spectra --spectra data/sdss-stars-mock/spectra --catalog data/sdss-stars-mock/sspp-labels.fits \\
      --out data/sdss-stars.h5
  astroreg train stellar-params; astroreg ablate stellar-params; astroreg tune stellar-params --trials 50
run `astroreg <command> --help` for the options of each command."""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand registered."""
    from astroreg.cli import _ablate, _demo, _info, _ingest, _run, _simulate, _tune

    parser = argparse.ArgumentParser(
        prog="astroreg",
        description="Learn physical parameters of astronomical objects from survey data.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"astroreg {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more detail")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in (_demo, _simulate, _ingest, _run, _tune, _ablate, _info):
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``astroreg`` command; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError) as err:
        print(f"astroreg {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; finished files are complete, unfinished ones were not written", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
