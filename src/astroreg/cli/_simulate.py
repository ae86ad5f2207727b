"""``astroreg simulate``: built-in mock surveys.

Subcommands, one per survey:

- ``galaxy-images``: HSC-like bulge + disk galaxies drawn with GalSim (seed paper 002).
- ``sdss-stars``: SDSS DR12 stellar spectra with SSPP-like labels from a physical emulator (paper 001).
- ``galaxy-photometry``: a flux-limited ugriz catalogue with true mass, SFR, size and Sigma_SFR (paper 000).
- ``gaia-xp-galaxies``: Gaia BP/RP spectra of galaxies with known redshift on paper 004's 186 samples.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

from astroreg.cli._common import positive_int
from astroreg.cli._groups import (
    add_group,
    add_split_options,
    add_subcommand,
    split_fractions,
)

_DATASET_SUFFIXES = (".h5", ".hdf5")
_FITS_HEADERS = 2 * 2880  # bytes of the primary header and padding of one stamp file
_SPECTRUM_FILE = 140_000  # bytes of one mock spec-*.fits (COADD + SPECOBJ HDUs of ~3850 pixels)

_GALAXY_EPILOG = """\
examples:
  astroreg simulate galaxy-images --n 40000 --out data/galaxy-images.h5
  astroreg simulate galaxy-images --n 1000 --out mock/ --seed 1 --jobs 2
  astroreg simulate galaxy-images --catalog gal_morph_test.csv --out paper_test.h5

--out ending in .h5 writes an astroreg dataset (images, targets total_flux and
log_total_flux, the other catalogue columns as tabular); any other --out is a folder
that receives one <img_number>.fits stamp per galaxy and the catalogue gal_morph.csv,
ready for `astroreg ingest images`. The same --seed gives the same images whatever
--jobs. Defaults: 143x143 pixels of 0.168 arcsec, Moffat PSF (beta 3, FWHM 0.6-0.7
arcsec), CCD noise with gain 3 e-/ADU and a subtracted sky of 15 ADU/pixel (sky noise
2.24 ADU/pixel).
"""


_STARS_EPILOG = """\
examples:
  astroreg simulate sdss-stars --n 50000 --out data/sdss-stars-mock --seed 2024 --jobs 2
  astroreg simulate sdss-stars --n 500 --out mock-stars --label-noise 0

writes DIR/spectra/spec-PPPP-MMMMM-FFFF.fits (SDSS DR12 format: COADD and SPECOBJ HDUs)
and DIR/sspp-labels.fits (PLATE, MJD, FIBERID, TEFF_ADOP, FEH_ADOP, LOGG_ADOP, RV_ADOP,
their _UNC errors, ~1% of each set to -9999 as SSPP does, and the true values *_TRUE),
the adopted labels being a fit of the emulator to each noisy spectrum with a colour
temperature and the population as priors (their errors follow the spectrum's noise),
ready for `astroreg ingest sdss-spectra`. Spectra: Planck continuum and ~510 absorption
lines whose strengths follow Teff, log g and [Fe/H] (Saha-Boltzmann, curve of growth,
damping wings), R = 2000, RV within +-300 km/s, S/N per pixel log-normal around 25.
The same --seed gives the same files whatever --jobs. See docs/sdss-stars-mock.md.
"""


_PHOTOMETRY_EPILOG = """\
examples:
  astroreg simulate galaxy-photometry --n 100000 --out data/sigma-sfr.h5 --seed 0
  astroreg simulate galaxy-photometry --n 100000 --out mock.parquet --out data/sigma-sfr.h5

--out ending in .parquet writes the catalogue (mag_u..mag_z and magerr_*, 99 where a band is
not detected, redshift, r_e_arcsec, log_mstar, log_sfr, log_sigma_sfr, quenched, and the
true values *_true, r_e_kpc, a_v, ...); ending in .h5 an astroreg dataset (tabular:
magnitudes and errors, a non-detection at the band's limit with error 1, z_spec,
r_e_arcsec; targets: log_sigma_sfr, log_sfr, log_mstar, redshift; random splits). Give
--out twice for both from one draw. The SDSS filter curves SLOAN_SDSS.{u,g,r,i,z}.dat are
read from --filters, $ASTROREG_SDSS_FILTERS or ../shared/data/sdss. 100,000 galaxies take
a few seconds. See docs/galaxy-photometry-mock.md.
"""


_GAIAXP_EPILOG = """\
examples:
  astroreg simulate gaia-xp-galaxies --n 100000 --out data/gaia-xp-galaxies.h5 --seed 0
  astroreg simulate gaia-xp-galaxies --n 5000 --out faint.h5 --g-range 20 21 --splits train=0.8,test=0.2

writes an astroreg dataset: /spectra flux (1e-17 W m-2 nm-1, calibrated) and ivar on paper
004's 186 kept Gaia XP samples (80 BP + 106 RP, 366-996 nm; prepared: a recipe reads it with
inputs: {xp: {kind: spectra, grid: gaia-xp, resample: false, standardize: false}}), the
target z (0-0.6, distributed as paper 004's sample), the true parameters as tabular columns
(g_mag, type_index, w_E..w_Im, ebv, ew_<line>, snr_median) and random splits (default the
paper's train=0.63,val=0.27,test=0.10). 100,000 galaxies take about a minute on 2 cores.
See docs/gaia-xp-mock.md.
"""


def _g_range(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a G magnitude such as 17 or 21, got {text!r}") from None


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``astroreg simulate``, whose subcommands are the mock surveys (see :func:`add_group`)."""
    return add_group(
        subparsers, "simulate", _add_surveys,
        help="make a built-in mock survey (FITS stamps + catalogue, or an astroreg dataset)",
        description="Make a built-in mock survey. Pick the survey.",
        epilog="example:\n  astroreg simulate galaxy-images --n 40000 --out data/galaxy-images.h5\n"
               "run `astroreg simulate SURVEY --help` for the options of each survey.",
    )


def _add_surveys(simulate: argparse.ArgumentParser) -> None:
    """The ``simulate`` parser's subcommands, one per mock survey."""
    from astroreg.sim._galaxy_defaults import GAIN, SKY_LEVEL, STAMP_SIZE
    from astroreg.sim._star_lines import RESOLUTION

    surveys = simulate.add_subparsers(title="mock surveys", dest="survey", metavar="SURVEY")
    surveys.required = True
    p = add_subcommand(
        surveys, "galaxy-images",
        help="HSC-like bulge+disk galaxy images with GalSim (galaxy-flux paper)",
        description="Draw HSC-like bulge + disk Sersic galaxies with GalSim, with parameters drawn\n"
                    "from the galaxy-flux paper's distributions or read from a catalogue.",
        epilog=_GALAXY_EPILOG,
    )
    p.add_argument("--n", type=positive_int, default=None, metavar="N",
                   help="galaxies to simulate; with --catalog, the first N rows (default: all rows)")
    p.add_argument("--catalog", default=None, metavar="FILE",
                   help="render the galaxies of this catalogue (CSV, FITS table or Parquet with the "
                        "paper's columns) instead of drawing parameters")
    p.add_argument("--out", required=True, metavar="PATH",
                   help="a .h5 dataset file, or a folder for FITS stamps + gal_morph.csv")
    p.add_argument("--overwrite", action="store_true",
                   help="let --out replace a previous mock of this kind (an astroreg dataset, or a folder with "
                        "gal_morph.csv), once the new one is complete; any other existing file or folder is refused")
    p.add_argument("--seed", type=int, default=0, help="seed of parameters, PSFs and noise (default: %(default)s)")
    p.add_argument("--stamp-size", type=int, default=STAMP_SIZE, metavar="PIX",
                   help="stamp side in pixels (default: %(default)s)")
    p.add_argument("--jobs", type=positive_int, default=None, metavar="N",
                   help="worker processes (default: all cores)")
    p.add_argument("--noiseless", action="store_true", help="no noise: the PSF-convolved model only")
    p.add_argument("--gain", type=float, default=GAIN, metavar="E_PER_ADU",
                   help="gain for the Poisson noise, e-/ADU (default: %(default)s)")
    p.add_argument("--sky-level", type=float, default=SKY_LEVEL, metavar="ADU",
                   help="subtracted sky level, ADU/pixel (default: %(default)s)")
    p.add_argument("--exact", action="store_true",
                   help="draw with GalSim's default accuracy and exact Sersic indices (about 5x slower)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)

    s = add_subcommand(
        surveys, "sdss-stars",
        help="SDSS stellar spectra (spec-*.fits) with SSPP-like labels from a physical emulator (paper 001)",
        description="Write mock SDSS DR12 stellar spectra and a label catalogue with the SSPP column names.",
        epilog=_STARS_EPILOG,
    )
    s.add_argument("--n", type=positive_int, required=True, metavar="N", help="number of stars (spectra)")
    s.add_argument("--out", required=True, metavar="DIR",
                   help="folder for spectra/ and sspp-labels.fits (created if absent)")
    s.add_argument("--overwrite", action="store_true",
                   help="let --out replace a previous sdss-stars mock (a folder with sspp-labels.fits and spectra/), "
                        "once the new one is complete; any other existing folder is refused")
    s.add_argument("--seed", type=int, default=0, help="seed of labels, noise and masks (default: %(default)s)")
    s.add_argument("--jobs", type=positive_int, default=None, metavar="N", help="worker processes (default: all cores)")
    s.add_argument("--label-noise", type=float, default=1.0, metavar="SCALE",
                   help="scale of the *_ADOP labels' errors against the truth (a fit to the spectrum "
                        "with priors); 0 = true labels "
                        "(default: %(default)s)")
    s.add_argument("--missing-fraction", type=float, default=0.01, metavar="F",
                   help="fraction of each *_ADOP label set to -9999 (default: %(default)s)")
    s.add_argument("--resolution", type=float, default=RESOLUTION, metavar="R",
                   help="instrumental resolving power lambda/FWHM (default: %(default)s)")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.set_defaults(func=run_stars)

    g = add_subcommand(
        surveys, "galaxy-photometry",
        help="flux-limited ugriz galaxy catalogue with true SFR, mass, size and Sigma_SFR (paper 000)",
        description="Draw a flux-limited mock SDSS ugriz galaxy catalogue from published scaling relations\n"
                    "(mass function, main sequence, quenching, sizes) and empirical templates.",
        epilog=_PHOTOMETRY_EPILOG,
    )
    g.add_argument("--n", type=positive_int, required=True, metavar="N", help="galaxies in the catalogue")
    g.add_argument("--out", required=True, action="append", metavar="FILE",
                   help="a .parquet catalogue or a .h5 dataset; give it twice for both")
    g.add_argument("--overwrite", action="store_true",
                   help="let --out replace a previous output of the same kind (a galaxy-photometry catalogue, "
                        "an astroreg dataset) once the new one is complete; any other file is refused")
    g.add_argument("--seed", type=int, default=0, help="seed of the draws and of the splits (default: %(default)s)")
    g.add_argument("--z-min", type=float, default=0.02, help="lowest redshift (default: %(default)s)")
    g.add_argument("--z-max", type=float, default=0.3, help="highest redshift, at most 0.5 (default: %(default)s)")
    g.add_argument("--r-limit", type=float, default=20.5, metavar="MAG",
                   help="flux limit: measured r at most this (default: %(default)s)")
    g.add_argument("--detection-snr", type=float, default=3.0, metavar="SNR",
                   help="measured S/N below which a band is not detected (default: %(default)s)")
    g.add_argument("--filters", default=None, metavar="DIR",
                   help="folder of SLOAN_SDSS.{u,g,r,i,z}.dat (default: $ASTROREG_SDSS_FILTERS or ../shared/data/sdss)")
    add_split_options(g, help="random splits stored in a .h5 output (default: train=0.6,val=0.15,test=0.25)")
    g.set_defaults(func=run_photometry)

    x = add_subcommand(
        surveys, "gaia-xp-galaxies",
        help="Gaia BP/RP (XP) spectra of galaxies with known redshift on paper 004's 186 samples",
        description="Draw mock Gaia XP spectra of galaxies (redshift as paper 004's sample, CWW templates,\n"
                    "emission lines, dust, Gaia XP resolution and photon noise) into an astroreg dataset.",
        epilog=_GAIAXP_EPILOG,
    )
    x.add_argument("--n", type=positive_int, required=True, metavar="N", help="number of galaxies")
    x.add_argument("--out", required=True, metavar="FILE", help="the .h5 dataset to write")
    x.add_argument("--overwrite", action="store_true",
                   help="let --out replace a previous astroreg dataset once the new one is complete; any other "
                        "file is refused")
    x.add_argument("--seed", type=int, default=0, help="seed of the galaxies, noise and splits (default: %(default)s)")
    x.add_argument("--g-range", type=_g_range, nargs=2, default=(17.0, 21.0), metavar=("G_MIN", "G_MAX"),
                   help="range of G magnitude (Vega), drawn uniformly (default: 17 21)")
    add_split_options(x, help="random splits stored in the dataset (default: train=0.63,val=0.27,test=0.10, "
                              "paper 004)")
    x.add_argument("--quiet", action="store_true", help="no progress bar")
    x.set_defaults(func=run_gaiaxp)


def run(args: argparse.Namespace) -> int:
    """Handle ``astroreg simulate galaxy-images``; returns the exit status."""
    from astroreg.data import build_dir, check_output_dir, check_output_file

    if args.n is None and args.catalog is None:
        raise ValueError("give --n (galaxies to draw) or --catalog (a catalogue to render), or both")
    out = Path(args.out)
    is_dataset = out.suffix.lower() in _DATASET_SUFFIXES
    kwargs = dict(
        catalog=args.catalog, seed=args.seed, stamp_size=args.stamp_size, n_jobs=args.jobs,
        noiseless=args.noiseless, gain=args.gain, sky_level=args.sky_level, progress=not args.quiet,
    )
    if args.exact:
        kwargs.update(sersic_step=None, fast=False)
    per_object = 4 * args.stamp_size ** 2
    if is_dataset:
        check_output_file(out, kind="dataset", inputs=[args.catalog], overwrite=args.overwrite,
                          needed_bytes=(args.n or 0) * per_object)
    else:
        check_output_dir(out, kind="galaxy-images", inputs=[args.catalog], overwrite=args.overwrite,
                         needed_bytes=(args.n or 0) * (per_object + _FITS_HEADERS))
    from astroreg.sim import (
        simulate_galaxy_images,  # GalSim loads slowly: only once the output is fine
    )

    if is_dataset:
        cat = simulate_galaxy_images(args.n, dataset=out, **kwargs)
        print(f"wrote {len(cat)} galaxies to the dataset {out}")
        return 0
    out, cat = build_dir(out, lambda partial: simulate_galaxy_images(args.n, out_dir=partial, **kwargs),
                         kind="galaxy-images", overwrite=args.overwrite)
    print(f"wrote {len(cat)} FITS stamps and gal_morph.csv to {out}")
    return 0


def run_stars(args: argparse.Namespace) -> int:
    """Handle ``astroreg simulate sdss-stars``; returns the exit status."""
    from astroreg.data import build_dir, check_output_dir

    out = Path(args.out)
    check_output_dir(out, kind="sdss-stars", overwrite=args.overwrite, needed_bytes=args.n * _SPECTRUM_FILE)
    from astroreg.sim import simulate_sdss_stars  # only once the output is fine

    out, survey = build_dir(out, lambda partial: simulate_sdss_stars(
        args.n, partial, seed=args.seed, n_jobs=args.jobs, label_noise=args.label_noise,
        missing_fraction=args.missing_fraction, resolution=args.resolution, progress=not args.quiet,
    ), kind="sdss-stars", overwrite=args.overwrite)
    built = survey.out_dir  # the .partial it was written in
    survey = dataclasses.replace(survey, out_dir=out, spectra_dir=out / survey.spectra_dir.relative_to(built),
                                 labels_path=out / survey.labels_path.relative_to(built))
    print(f"wrote {survey.n_spectra} spectra to {survey.spectra_dir} and their labels to {survey.labels_path}")
    print(f"next: {survey.ingest_command()}")
    return 0


def run_photometry(args: argparse.Namespace) -> int:
    """Handle ``astroreg simulate galaxy-photometry``; returns the exit status."""
    from astroreg.data import check_output_file

    outs = [Path(p) for p in args.out]
    if len({p.resolve() for p in outs}) < len(outs):
        raise ValueError(f"--out names one file twice ({', '.join(map(str, outs))}); give different files")
    kinds = [p.suffix.lower() for p in outs]
    if len(set(kinds)) < len(kinds):
        raise ValueError(f"--out gives two files of one kind ({', '.join(map(str, outs))}); give at most one "
                         ".parquet and one .h5")
    from astroreg.sim._galaxy_photometry import UNITS, simulate_galaxy_photometry
    from astroreg.sim._galaxy_photometry_output import (
        check_catalog_output,
        write_photometry_catalog,
        write_photometry_dataset,
    )

    for out in outs:
        if out.suffix.lower() in _DATASET_SUFFIXES:
            check_output_file(out, kind="dataset", overwrite=args.overwrite, needed_bytes=args.n * 8 * 20)
        else:
            check_catalog_output(out, overwrite=args.overwrite, n=args.n)
    from astroreg.ingest._images import DEFAULT_SPLITS

    fractions = split_fractions(args, dict(DEFAULT_SPLITS))
    settings = {"seed": args.seed, "z_range": [args.z_min, args.z_max], "r_limit": args.r_limit,
                "detection_snr": args.detection_snr}
    cat = simulate_galaxy_photometry(args.n, seed=args.seed, z_range=(args.z_min, args.z_max),
                                     r_limit=args.r_limit, detection_snr=args.detection_snr,
                                     filter_dir=args.filters)
    for out in outs:
        if out.suffix.lower() in _DATASET_SUFFIXES:
            write_photometry_dataset(cat, out, split_fractions=fractions, seed=args.seed,
                                     detection_snr=args.detection_snr, settings=settings)
            print(f"wrote {len(cat)} galaxies to the dataset {out}")
        else:
            write_photometry_catalog(cat, out, settings=settings)
            print(f"wrote {len(cat)} galaxies ({len(UNITS)} columns with units) to the catalogue {out}")
    return 0


def run_gaiaxp(args: argparse.Namespace) -> int:
    """Handle ``astroreg simulate gaia-xp-galaxies``; returns the exit status."""
    from astroreg.data import check_output_file
    from astroreg.sim._gaiaxp_galaxies import check_arguments
    from astroreg.sim._gaiaxp_output import (
        BYTES_PER_GALAXY,
        PAPER_SPLITS,
        write_gaiaxp_dataset,
    )

    check_arguments(args.n, tuple(args.g_range))
    out = Path(args.out)
    check_output_file(out, kind="dataset", overwrite=args.overwrite, needed_bytes=args.n * BYTES_PER_GALAXY)
    fractions = split_fractions(args, dict(PAPER_SPLITS))
    write_gaiaxp_dataset(args.n, out, seed=args.seed, g_range=tuple(args.g_range), split_fractions=fractions,
                         progress=not args.quiet)
    print(f"wrote {args.n} galaxies (186 Gaia XP samples each, target z) to the dataset {out}")
    return 0
