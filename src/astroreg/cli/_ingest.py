"""``astroreg ingest``: turn survey files into an astroreg dataset.

Subcommands, one per input layout:

- ``images``: a folder of FITS stamps plus a catalogue (CSV, FITS table, Parquet).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

_IMAGES_EPILOG = """\
example (the galaxy-flux paper's layout: gal_morph.csv + NNNN.fits stamps):
  astroreg ingest images --catalog gal_morph.csv --images stamps/ --out data.h5 \\
      --target total_flux:ADU --target log_total_flux:dex --crop 143 --pixel-scale 0.168

Missing or unreadable FITS files and rows with a NaN target are skipped; the summary
and the full list (file, reason) are written to <out>.ingest-report.json. The exit
status is 0 when at least one object was ingested, 1 when none could be, 2 for bad
arguments or catalogue columns.
"""


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``ingest`` command (with its ``images`` subcommand) to a CLI.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        What ``parser.add_subparsers()`` returned for the main ``astroreg`` parser.

    Returns
    -------
    argparse.ArgumentParser
        The ``ingest`` parser, whose own subcommands hold the input layouts.
    """
    ingest = subparsers.add_parser(
        "ingest",
        help="turn survey files into an astroreg dataset (.h5)",
        description="Turn survey files into an astroreg dataset (.h5). Pick the input layout.",
    )
    layouts = ingest.add_subparsers(title="input layouts", dest="ingest_layout", metavar="LAYOUT")
    layouts.required = True
    p = layouts.add_parser(
        "images",
        help="a folder of FITS stamps plus a catalogue with file names and targets",
        description="Ingest a folder of single-band FITS stamps and a catalogue (CSV, FITS table\n"
                    "or Parquet) with one row per stamp: the file name and the target values.",
        epilog=_IMAGES_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--catalog", required=True, metavar="FILE",
                   help="catalogue: .csv .txt .fits .fit .fits.gz .parquet .pq")
    p.add_argument("--images", required=True, metavar="DIR", help="folder with the FITS stamps")
    p.add_argument("--out", required=True, metavar="FILE", help="dataset to write, e.g. data.h5")
    p.add_argument("--target", action="append", required=True, type=_target, metavar="NAME[:UNIT]",
                   dest="targets", help="target column and its unit, e.g. total_flux:ADU (repeat for more)")
    p.add_argument("--file-column", default="file_name", metavar="COL",
                   help="catalogue column with the FITS file names (default: %(default)s)")
    p.add_argument("--id-column", default=None, metavar="COL",
                   help="catalogue column with object ids (default: the file name without .fits)")
    tab = p.add_mutually_exclusive_group()
    tab.add_argument("--tabular", nargs="+", default=None, metavar="COL",
                     help="catalogue columns stored as tabular inputs (default: every other numeric column)")
    tab.add_argument("--no-tabular", action="store_true", help="store no tabular columns")
    p.add_argument("--crop", type=_crop, default=143, metavar="N",
                   help="centre-crop stamps to N x N pixels, or 'none' to keep them whole (default: %(default)s)")
    p.add_argument("--band", default="i", help="band (filter) name of the stamps (default: %(default)s)")
    p.add_argument("--pixel-scale", type=float, default=None, metavar="ARCSEC",
                   help="pixel scale in arcsec/pixel (default: from the FITS header PIXSCALE or WCS)")
    p.add_argument("--unit", default="ADU", help="pixel unit (default: %(default)s)")
    splits = p.add_mutually_exclusive_group()
    splits.add_argument("--splits", type=_splits, default=None, metavar="NAME=FRAC,...",
                        help="random splits to store (default: train=0.6,val=0.15,test=0.25)")
    splits.add_argument("--no-splits", action="store_true", help="store no splits")
    p.add_argument("--seed", type=int, default=0, help="seed of the random splits (default: %(default)s)")
    p.add_argument("--jobs", type=int, default=None, metavar="N",
                   help="threads reading FITS files (default: automatic; 1 = serial)")
    p.add_argument("--chunk-size", type=int, default=256, metavar="N",
                   help="stamps read and written per chunk (default: %(default)s)")
    p.add_argument("--quiet", action="store_true", help="no progress bar and no summary")
    p.set_defaults(func=run)
    return ingest


def run(args: argparse.Namespace) -> int:
    """Run ``astroreg ingest images``; the exit status (0 when at least one object was ingested).

    Returns 1 when no object could be ingested and 2 when the arguments or the catalogue
    columns are wrong; the reason goes to stderr.
    """
    from astroreg.data._ingest_images import DEFAULT_SPLITS, NothingIngestedError, ingest_image_folder

    if args.no_splits:
        fractions = None
    else:
        fractions = args.splits if args.splits is not None else DEFAULT_SPLITS
    try:
        ingest_image_folder(
            args.catalog,
            args.images,
            args.out,
            file_column=args.file_column,
            targets=dict(args.targets),
            tabular=[] if args.no_tabular else args.tabular,
            id_column=args.id_column,
            crop=args.crop,
            band=args.band,
            pixel_scale=args.pixel_scale,
            unit=args.unit,
            split_fractions=fractions,
            seed=args.seed,
            n_jobs=args.jobs,
            chunk_size=args.chunk_size,
            progress=not args.quiet,
        )
    except NothingIngestedError as err:
        print(f"astroreg ingest images: error: {err}", file=sys.stderr)
        return 1
    except (FileNotFoundError, ValueError) as err:
        print(f"astroreg ingest images: error: {err}", file=sys.stderr)
        return 2
    return 0


def _target(text: str) -> tuple[str, str]:
    name, _, unit = text.partition(":")
    if not name.strip():
        raise argparse.ArgumentTypeError(f"expected NAME[:UNIT], e.g. total_flux:ADU, got {text!r}")
    return name.strip(), unit.strip()


def _crop(text: str) -> int | None:
    if text.strip().lower() == "none":
        return None
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive number of pixels or 'none', got {text!r}")
    return value


def _splits(text: str) -> dict[str, float]:
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
