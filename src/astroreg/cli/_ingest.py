"""``astroreg ingest``: turn survey files into an astroreg dataset.

Subcommands, one per input layout:

- ``images``: a folder of FITS stamps plus a catalogue (CSV, FITS table, Parquet).
- ``sdss-spectra``: a folder of SDSS ``spec-PLATE-MJD-FIBER.fits`` files plus a label
  catalogue (e.g. SSPP's sppParams).
- ``catalog``: photometric catalogues (CSV, FITS, Parquet, HDF5) of inputs and targets.
- ``gaia-xp``: Gaia XP (BP/RP) spectra, continuous or sampled, plus an optional label table
  joined by source_id.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from astroreg.cli._common import positive_int
from astroreg.cli._groups import (
    add_group,
    add_split_options,
    add_subcommand,
    split_fractions,
)

_IMAGES_EPILOG = """\
example (the galaxy-flux paper's layout: gal_morph.csv + NNNN.fits stamps):
  astroreg ingest images --catalog gal_morph.csv --images stamps/ --out data.h5 \\
      --target total_flux:ADU --target log_total_flux:dex --crop 143 --pixel-scale 0.168

Missing or unreadable FITS files and rows with a NaN target are skipped; the summary
and the full list (file, reason) are written to <out>.ingest-report.json. The exit
status is 0 when at least one object was ingested, 1 when none could be, 2 for bad
arguments or catalogue columns.
"""


_INGEST_EPILOG = """\
examples:
  astroreg ingest images --catalog gal_morph.csv --images stamps/ --out data.h5 --target total_flux:ADU
  astroreg ingest sdss-spectra --spectra spectra/ --catalog sppParams.fits --out stars.h5
  astroreg ingest catalog --catalog boss_dr10_0.csv boss_dr10_1.csv --out boss.h5 --target Z
  astroreg ingest gaia-xp --xp XP_CONTINUOUS_RAW.csv --labels sdss_z.fits --target z --out xp.h5
run `astroreg ingest LAYOUT --help` for the options of each layout.
"""

_SDSS_EPILOG = """\
example (SDSS spectra labelled by the SEGUE Stellar Parameter Pipeline):
  astroreg ingest sdss-spectra --spectra spectra/ --catalog sppParams.fits --out stars.h5 \\
      --id-columns PLATE MJD FIBER --target TEFF_ADOP:K --target FEH_ADOP:dex \\
      --target LOGG_ADOP:dex --target RV_ADOP:km/s --jobs 2

Each file is joined with the catalogue row of the same plate, MJD and fiber (read from the
file's HDU 2, else its header, else its name), or with --id-column on the file name without
.fits. Spectra are stored losslessly on SDSS's common log-wavelength grid (padding: ivar 0),
or resampled with --grid (and shifted to the rest frame with --rest-frame RV_ADOP: a
"prepared" dataset, on which `astroreg predict` only standardises). Unreadable,
truncated, duplicate and unmatched files are skipped; the summary and the full list
(file, reason) go to <out>.ingest-report.json. Targets of
-9999 are stored as missing (NaN). The exit status is 0 when at least one spectrum was
ingested, 1 when none could be, 2 for bad arguments or catalogue columns.
"""


_OVERWRITE_HELP = ("let --out replace a previous astroreg dataset (and its ingest report); any other file, "
                   "and the inputs, are never replaced. Without it an existing --out is refused")

_SPECTRUM_BYTES_PER_PIXEL = 12  # float32 flux and ivar, uint32 mask
_SDSS_NATIVE_PIXELS = 4700  # SDSS's common log-wavelength grid covers ~3550-10400 Angstrom in ~4650 pixels


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``astroreg ingest``, whose subcommands are the input layouts (see :func:`add_group`)."""
    return add_group(
        subparsers, "ingest", _add_layouts,
        help="turn survey files into an astroreg dataset (.h5)",
        description="Turn survey files into an astroreg dataset (.h5). Pick the input layout.",
        epilog=_INGEST_EPILOG,
    )


def _add_layouts(ingest: argparse.ArgumentParser) -> None:
    """The ``ingest`` parser's subcommands, one per input layout."""
    layouts = ingest.add_subparsers(title="input layouts", dest="ingest_layout", metavar="LAYOUT")
    layouts.required = True
    p = add_subcommand(
        layouts, "images",
        help="a folder of FITS stamps plus a catalogue with file names and targets",
        description="Ingest a folder of single-band FITS stamps and a catalogue (CSV, FITS table\n"
                    "or Parquet) with one row per stamp: the file name and the target values.",
        epilog=_IMAGES_EPILOG,
    )
    p.add_argument("--catalog", required=True, metavar="FILE",
                   help="catalogue: .csv .txt .fits .fit .fits.gz .parquet .pq")
    p.add_argument("--images", required=True, metavar="DIR", help="folder with the FITS stamps")
    _add_out(p, "data.h5")
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
    _add_splits(p, "train=0.6,val=0.15,test=0.25")
    p.add_argument("--jobs", type=positive_int, default=None, metavar="N",
                   help="threads reading FITS files (default: automatic; 1 = serial)")
    p.add_argument("--chunk-size", type=positive_int, default=256, metavar="N",
                   help="stamps read and written per chunk (default: %(default)s)")
    p.add_argument("--quiet", action="store_true", help="no progress bar and no summary")
    p.set_defaults(func=run)
    _register_sdss(layouts)
    _register_catalog(layouts)
    _register_gaia_xp(layouts)


def _register_sdss(layouts: Any) -> None:
    from astroreg.ingest._sdss import DEFAULT_MIN_GOOD_FRACTION, SDSS_ID_COLUMNS, SSPP_TARGETS

    p = add_subcommand(
        layouts, "sdss-spectra",
        help="a folder of SDSS spec-PLATE-MJD-FIBER.fits files plus a label catalogue",
        description="Ingest SDSS spectrum files (HDU 1 COADD, HDU 2 SPECOBJ/SPALL) and a label catalogue\n"
                    "(FITS table, CSV or Parquet) joined on plate, MJD and fiber.",
        epilog=_SDSS_EPILOG,
    )
    p.add_argument("--spectra", required=True, metavar="DIR",
                   help="folder with the spec-*.fits files (searched recursively)")
    p.add_argument("--catalog", required=True, metavar="FILE",
                   help="labels: .fits .fit .fits.gz .csv .txt .parquet .pq")
    _add_out(p, "stars.h5")
    ids = p.add_mutually_exclusive_group()
    ids.add_argument("--id-columns", nargs=3, default=list(SDSS_ID_COLUMNS), metavar=("PLATE", "MJD", "FIBER"),
                     help=f"catalogue columns with plate, MJD and fiber (default: {' '.join(SDSS_ID_COLUMNS)})")
    ids.add_argument("--id-column", default=None, metavar="COL",
                     help="join on this catalogue column instead, holding file names without .fits")
    p.add_argument("--target", action="append", type=_target, metavar="NAME[:UNIT]", dest="targets",
                   help="catalogue column stored as a target, with its unit (repeat for more; default: "
                        + " ".join(f"{k}:{v}" for k, v in SSPP_TARGETS.items()) + ")")
    p.add_argument("--grid", nargs=3, type=float, default=None, metavar=("LOGLAM_MIN", "LOGLAM_MAX", "N"),
                   help="resample at ingest onto N points uniform in log10(wavelength/Angstrom), e.g. the paper's "
                        "3.5754 3.9670 4000 (default: store native pixels)")
    p.add_argument("--rest-frame", default=None, metavar="COLUMN",
                   help="with --grid: shift each spectrum to its rest frame by this catalogue column of radial "
                        "velocities in km/s (e.g. RV_ADOP; missing ones from the HDU 2 redshift Z), so that a "
                        "recipe with the same grid and rest_frame_column only standardises at predict time")
    p.add_argument("--min-good-fraction", type=float, default=DEFAULT_MIN_GOOD_FRACTION, metavar="F",
                   help="skip (and report) spectra with fewer good pixels (finite flux, ivar > 0, no bad mask "
                        "bit) than this fraction of the --grid, or of their own pixels without --grid "
                        "(default: %(default)s; 0 keeps every spectrum)")
    _add_splits(p, "train=0.6,val=0.15,test=0.25")
    p.add_argument("--jobs", type=positive_int, default=None, metavar="N",
                   help="parallel workers (default: automatic, one per core; 1 = serial)")
    p.add_argument("--threads", action="store_true",
                   help="use threads rather than processes (faster on network file systems)")
    p.add_argument("--chunk-size", type=positive_int, default=256, metavar="N",
                   help="files read and written per chunk (default: %(default)s)")
    p.add_argument("--quiet", action="store_true", help="no progress bar and no summary")
    p.set_defaults(func=run_sdss_spectra)


def run_sdss_spectra(args: argparse.Namespace) -> int:
    """Run ``astroreg ingest sdss-spectra``; the exit status (0 when at least one spectrum was ingested).

    Returns 1 when no spectrum could be ingested and 2 when the arguments or the catalogue
    columns are wrong; the reason goes to stderr.
    """
    from astroreg.ingest._sdss import SSPP_TARGETS, ingest_sdss_spectra

    grid = None
    if args.grid is not None:
        lo, hi, n = args.grid
        grid = (lo, hi, int(n)) if n == int(n) else args.grid

    def ingest():
        files = _count_files(args.spectra, lambda name: name.startswith("spec-") and ".fit" in name, recursive=True)
        pixels = int(grid[2]) if grid is not None else _SDSS_NATIVE_PIXELS
        _check_out(args, [args.catalog, args.spectra], files * pixels * _SPECTRUM_BYTES_PER_PIXEL)
        return ingest_sdss_spectra(
            args.spectra,
            args.catalog,
            args.out,
            id_columns=tuple(args.id_columns),
            id_column=args.id_column,
            targets=dict(args.targets) if args.targets else SSPP_TARGETS,
            grid=grid,
            rest_frame=args.rest_frame,
            min_good_fraction=args.min_good_fraction,
            split_fractions=_split_fractions(args),
            seed=args.seed,
            n_jobs=args.jobs,
            parallel="threads" if args.threads else "processes",
            chunk_size=args.chunk_size,
            progress=not args.quiet,
        )

    return _exit_status("sdss-spectra", ingest)


def run(args: argparse.Namespace) -> int:
    """Run ``astroreg ingest images``; the exit status (0 when at least one object was ingested).

    Returns 1 when no object could be ingested and 2 when the arguments or the catalogue
    columns are wrong; the reason goes to stderr.
    """
    from astroreg.ingest._images import ingest_image_folder

    def ingest():
        stamps = _count_files(args.images, lambda name: ".fit" in name.lower())
        per_object = 4 * args.crop ** 2 if args.crop else _mean_size(args.images)
        _check_out(args, [args.catalog, args.images], stamps * per_object)
        return ingest_image_folder(
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
            split_fractions=_split_fractions(args),
            seed=args.seed,
            n_jobs=args.jobs,
            chunk_size=args.chunk_size,
            progress=not args.quiet,
        )

    return _exit_status("images", ingest)


def _check_out(args: argparse.Namespace, inputs: list, needed_bytes: float) -> None:
    """Refuse, before reading anything, an --out that is an input, exists, is a folder or will not fit."""
    from astroreg.data import check_output_file
    from astroreg.ingest._images import REPORT_SUFFIX

    check_output_file(args.out, kind="dataset", inputs=inputs, overwrite=args.overwrite, needed_bytes=needed_bytes)
    # The report belongs to its dataset: a previous report is replaced, any other file refused.
    check_output_file(args.out + REPORT_SUFFIX, kind="ingest-report", inputs=inputs, overwrite=True)


def _count_files(folder: str, keep, *, recursive: bool = False) -> int:
    """Number of files in ``folder`` whose name passes ``keep`` (0 for a folder that is missing)."""
    n = 0
    try:
        if recursive:
            for _, _, names in os.walk(folder):
                n += sum(1 for name in names if keep(name))
        else:
            with os.scandir(folder) as it:
                n = sum(1 for e in it if keep(e.name))
    except OSError:
        return 0
    return n


def _mean_size(folder: str) -> float:
    """Mean size in bytes of the FITS files of ``folder`` (uncropped stamps are stored about as large)."""
    sizes = []
    try:
        with os.scandir(folder) as it:
            for e in it:
                if ".fit" in e.name.lower() and len(sizes) < 1000:
                    sizes.append(e.stat().st_size)
    except OSError:
        return 0.0
    return sum(sizes) / len(sizes) if sizes else 0.0


def _split_fractions(args: argparse.Namespace):
    from astroreg.ingest._images import DEFAULT_SPLITS

    return split_fractions(args, DEFAULT_SPLITS)


def _exit_status(layout: str, ingest) -> int:
    """Run an ingest; 0 when something was ingested, 1 when nothing could be, 2 for bad input."""
    from astroreg.ingest._images import NothingIngestedError

    try:
        ingest()
    except NothingIngestedError as err:
        print(f"astroreg ingest {layout}: error: {err}", file=sys.stderr)
        return 1
    except (FileNotFoundError, ValueError) as err:
        print(f"astroreg ingest {layout}: error: {err}", file=sys.stderr)
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


def _add_out(p: argparse.ArgumentParser, example: str) -> None:
    p.add_argument("--out", required=True, metavar="FILE", help=f"dataset to write, e.g. {example}")
    p.add_argument("--overwrite", action="store_true", help=_OVERWRITE_HELP)


def _add_splits(p: argparse.ArgumentParser, default: str, *, no_help: str = "store no splits") -> None:
    add_split_options(p, help=f"random splits to store (default: {default})", no_help=no_help)
    p.add_argument("--seed", type=int, default=0, help="seed of the random splits (default: %(default)s)")


_CATALOG_EPILOG = """\
example (ANNz's BOSS DR10 files, '#F:MAG_U;...;D:Z' headers; prefixes are stripped):
  astroreg ingest catalog --catalog boss_dr10_0.csv boss_dr10_1.csv boss_dr10_3.csv \\
      --out boss.h5 --target Z --unit 'MAG*=mag' --splits train=0.6,val=0.2,test=0.2 --seed 0

Sentinels (default 99,-99,-9999; NaN and inf always) mark missing values; --missing sets
what happens to them per column (glob patterns allowed):
  drop                          drop the row (the default, --missing-default)
  limit:VALUE[:ERRCOL=ERRVALUE] use VALUE (e.g. a detection limit) and set ERRCOL there
  flag[:VALUE]                  add a 0/1 column COLUMN_missing; fill VALUE (default:
                                the median of the training rows)
  keep                          store NaN
e.g. --missing MAG_U=limit:26.0:MAGERR_U=1.0 --sentinel MAGERR_U=none
Exact duplicate rows are dropped. Counts, per-column ranges and the first dropped rows go
to <out>.ingest-report.json. Exit status 0 when rows were ingested, 1 when every row was
dropped, 2 for bad arguments, files or columns.
"""


def _register_catalog(layouts: Any) -> None:
    from astroreg.ingest._missing import DEFAULT_SENTINELS

    p = add_subcommand(
        layouts, "catalog",
        help="photometric catalogues (CSV, FITS, Parquet, HDF5) of inputs and targets",
        description="Ingest object catalogues (CSV/text with any delimiter, FITS tables, Parquet, HDF5 tables)\n"
                    "into a dataset of tabular inputs and targets.",
        epilog=_CATALOG_EPILOG,
    )
    p.add_argument("--catalog", nargs="+", required=True, metavar="FILE",
                   help="catalogues, concatenated (same columns): .csv .txt .fits .fit .fits.gz .parquet .pq "
                        ".h5 .hdf5 .hdf")
    p.add_argument("--test-catalog", nargs="+", default=None, metavar="FILE",
                   help="catalogues ingested as the test split (--splits then splits --catalog, default "
                        "train=0.8,val=0.2)")
    _add_out(p, "boss.h5")
    p.add_argument("--target", action="append", required=True, type=_target, metavar="NAME[:UNIT]",
                   dest="targets", help="target column and its unit, e.g. Z (repeat for more)")
    p.add_argument("--id", default=None, metavar="COL", dest="id_column",
                   help="column with unique object ids (default: generated, see --id-style)")
    p.add_argument("--id-style", choices=("file", "row"), default="file",
                   help="generated ids: FILESTEM:ROW or rowN (default: %(default)s)")
    p.add_argument("--tabular", nargs="+", default=None, metavar="COL",
                   help="columns stored as inputs (default: every other numeric column)")
    p.add_argument("--exclude", nargs="+", default=[], metavar="COL",
                   help="columns or glob patterns left out of the default inputs")
    p.add_argument("--unit", action="append", default=[], type=_assignment, metavar="COL=UNIT", dest="units",
                   help="unit of a column or glob pattern, e.g. 'MAG*=mag' (repeat for more)")
    p.add_argument("--sep", default=None, metavar="SEP",
                   help="delimiter of text catalogues: a character, 'tab' or 'whitespace' (default: sniffed)")
    p.add_argument("--table", default=None, metavar="NAME",
                   help="FITS HDU (index or EXTNAME) or HDF5 table path, when a file holds several")
    p.add_argument("--keep-prefixes", action="store_true",
                   help="keep ANNz type prefixes (F:, D:, I:, ...) in column names")
    p.add_argument("--sentinels", default=",".join(f"{v:g}" for v in DEFAULT_SENTINELS), metavar="V,V,...",
                   help="values read as missing in every column, or 'none' (default: %(default)s; NaN and inf "
                        "always)")
    p.add_argument("--sentinel", action="append", default=[], type=_assignment, metavar="COL=V,V,...",
                   dest="column_sentinels", help="a column's own sentinels, or COL=none (repeat for more)")
    p.add_argument("--missing", action="append", default=[], type=_assignment, metavar="COL=POLICY",
                   help="policy for a column's missing values (see below; repeat for more)")
    p.add_argument("--missing-default", default="drop", metavar="POLICY",
                   help="policy of the other columns: drop, flag[:VALUE] or keep (default: %(default)s)")
    _add_splits(p, "train=0.6,val=0.15,test=0.25", no_help="store no random splits")
    p.add_argument("--quiet", action="store_true", help="no summary")
    p.set_defaults(func=run_catalog)


def run_catalog(args: argparse.Namespace) -> int:
    """Run ``astroreg ingest catalog``; the exit status (0 when at least one row was ingested).

    Returns 1 when every row was dropped and 2 when the arguments, files or columns are
    wrong; the reason goes to stderr.
    """
    from astroreg.ingest._catalog import ingest_catalog

    sep = {"tab": "\t", "whitespace": r"\s+", "space": r"\s+"}.get(args.sep, args.sep)
    files = list(args.catalog) + list(args.test_catalog or [])

    def ingest():
        size = sum(os.path.getsize(f) for f in files if os.path.isfile(f))
        _check_out(args, files, 2 * size)
        return ingest_catalog(
            args.catalog,
            args.out,
            targets=dict(args.targets),
            tabular=args.tabular,
            exclude=args.exclude,
            id_column=args.id_column,
            id_style=args.id_style,
            units=dict(args.units),
            sep=sep,
            table=args.table,
            strip_prefixes=not args.keep_prefixes,
            sentinels=args.sentinels,
            column_sentinels=dict(args.column_sentinels),
            missing=dict(args.missing),
            missing_default=args.missing_default,
            test_catalogs=args.test_catalog,
            split_fractions=_split_fractions(args),
            seed=args.seed,
            progress=not args.quiet,
        )

    return _exit_status("catalog", ingest)


def _assignment(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip() or not value.strip():
        raise argparse.ArgumentTypeError(f"expected COLUMN=VALUE, e.g. MAG_U=limit:26.0, got {text!r}")
    return name.strip(), value.strip()


_GAIA_XP_EPILOG = """\
examples (paper 004: galaxy redshifts from Gaia BP/RP spectra):
  astroreg ingest gaia-xp --xp XP_CONTINUOUS_RAW.csv --labels sdss_specz.fits --id-column source_id \\
      --target z --out xp.h5
  astroreg ingest gaia-xp --xp XP_SAMPLED_RAW.csv --flux calibrated --out xp-predict.h5

Continuous spectra (bp_coefficients, ...) are sampled with GaiaXPy: --flux internal (the
paper's, electron/s, 120 samples per band equidistant in pseudo-wavelength) or --flux
calibrated (1e-17 W m-2 nm-1 at the same wavelengths). Sampled spectra are taken as they are:
the archive's 343 samples 336-1020 nm (calibrated, interpolated linearly), or bp_flux/rp_flux
of 120 internal samples each. --truncation drops samples at both ends of BP and RP (the
paper's 34,6,4,10 keeps 80 + 106 = 186, 366-996 nm). Sources with BP or RP missing, a bad
array, NaN flux or (with --labels) no label are reported by source_id and skipped; the
summary goes to <out>.ingest-report.json. Exit status 0 when sources were ingested, 1 when
none could be, 2 for bad arguments, files or columns.
"""


def _register_gaia_xp(layouts: Any) -> None:
    p = add_subcommand(
        layouts, "gaia-xp",
        help="Gaia XP (BP/RP) spectra, continuous or sampled, plus optional labels joined by source_id",
        description="Ingest Gaia XP spectra (CSV, ECSV or FITS from the Gaia archive or GaiaXPy) onto paper\n"
                    "004's layout of 186 BP/RP samples, joined to a label table by source_id.",
        epilog=_GAIA_XP_EPILOG,
    )
    p.add_argument("--xp", nargs="+", required=True, metavar="FILE",
                   help="XP spectrum files: .csv .ecsv .fits (continuous or sampled; forms may be mixed)")
    p.add_argument("--labels", default=None, metavar="TABLE",
                   help="label table (.csv .fits .parquet .h5 ...) joined on --id-column; without it the dataset "
                        "holds spectra and ids only, for prediction")
    p.add_argument("--id-column", default="source_id", metavar="COL",
                   help="the label table's Gaia source_id column (default: %(default)s)")
    p.add_argument("--target", action="append", type=_target, metavar="COLUMN[:UNIT]", dest="targets",
                   help="label column stored as a target, e.g. z (repeat for more; needs --labels)")
    _add_out(p, "xp.h5")
    p.add_argument("--truncation", default="34,6,4,10", metavar="BP_FIRST,BP_LAST,RP_FIRST,RP_LAST",
                   help="samples dropped at the ends of BP and RP (default: %(default)s, the paper's 186 samples)")
    p.add_argument("--flux", choices=("internal", "calibrated"), default="internal",
                   help="internal: internally calibrated flux in electron/s (the paper's); calibrated: absolute "
                        "flux in 1e-17 W m-2 nm-1 (default: %(default)s)")
    _add_splits(p, "the paper's train=0.63,val=0.27,test=0.10")
    p.add_argument("--chunk-size", type=positive_int, default=2_000, metavar="N",
                   help="sources read, converted and written at a time (default: %(default)s)")
    p.add_argument("--jobs", type=positive_int, default=None, metavar="N",
                   help="worker processes sampling chunks with GaiaXPy (default: automatic, one per core for "
                        "inputs over 50 MB; 1 = serial)")
    p.add_argument("--quiet", action="store_true", help="no progress bar and no summary")
    p.set_defaults(func=run_gaia_xp)


def run_gaia_xp(args: argparse.Namespace) -> int:
    """Run ``astroreg ingest gaia-xp``; the exit status (0 when at least one source was ingested).

    Returns 1 when no source could be ingested and 2 when the arguments, files or columns
    are wrong; the reason goes to stderr.
    """
    from astroreg.ingest._gaiaxp import PAPER_SPLITS, ingest_gaia_xp

    inputs = list(args.xp) + ([args.labels] if args.labels else [])

    def ingest():
        size = sum(os.path.getsize(f) for f in args.xp if os.path.isfile(f))
        # ~1.7 kB a source on disk against >= 10 kB a source in the text files
        _check_out(args, inputs, 0.2 * size)
        fractions = split_fractions(args, dict(PAPER_SPLITS))
        return ingest_gaia_xp(
            args.xp,
            args.out,
            labels=args.labels,
            id_column=args.id_column,
            targets=dict(args.targets or []),
            truncation=args.truncation,
            flux=args.flux,
            split_fractions=fractions,
            seed=args.seed,
            chunk_size=args.chunk_size,
            n_jobs=args.jobs,
            progress=not args.quiet,
        )

    return _exit_status("gaia-xp", ingest)
