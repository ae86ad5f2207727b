"""Issue 9, finding 8: out-of-domain input is marked, never passed on silently.

Ingest skips and reports spectra with too few good pixels on the grid; a trained run keeps
a description of its training domain (``domain.json``); ``predict`` flags every object
outside it (``in_domain``, ``domain_reason``) and the run's report counts them.
"""

from __future__ import annotations

import argparse
import json
import shutil

import numpy as np
import pandas as pd
import pytest
from astropy.io import fits

from astroreg.data import Dataset
from astroreg.data._ingest_spectra import ingest_sdss_spectra

pytestmark = pytest.mark.filterwarnings("ignore::astropy.utils.exceptions.AstropyWarning")


# -- ingest: good-pixel coverage ------------------------------------------------------------
def _spec_file(path, ids, *, pix0=36000, n=60, ivar=4.0, z=1e-4):
    """A small SDSS-layout spectrum file: COADD in HDU 1, SPECOBJ (ids, Z) in HDU 2."""
    rng = np.random.default_rng(ids[2])
    cols = [fits.Column(name="flux", format="E", array=rng.normal(10, 1, n)),
            fits.Column(name="loglam", format="E", array=(pix0 + np.arange(n)) * 1e-4),
            fits.Column(name="ivar", format="E", array=np.full(n, ivar)),
            fits.Column(name="and_mask", format="J", array=np.zeros(n, int))]
    specobj = fits.BinTableHDU.from_columns([
        fits.Column(name="PLATE", format="J", array=[ids[0]]),
        fits.Column(name="MJD", format="J", array=[ids[1]]),
        fits.Column(name="FIBERID", format="J", array=[ids[2]]),
        fits.Column(name="Z", format="E", array=[z]),
    ], name="SPECOBJ")
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(cols, name="COADD"), specobj]).writeto(path)


def _labels(keys, path, rv=None):
    n = len(keys)
    pd.DataFrame({"PLATE": [k[0] for k in keys], "MJD": [k[1] for k in keys], "FIBERID": [k[2] for k in keys],
                  "TEFF_ADOP": 5000.0 + 100 * np.arange(n),
                  "RV_ADOP": np.zeros(n) if rv is None else rv}).to_csv(path, index=False)
    return path


def test_spectrum_without_good_pixels_on_the_grid_is_skipped_and_reported(tmp_path, capsys):
    folder = tmp_path / "spectra"
    folder.mkdir()
    _spec_file(folder / "a.fits", (1, 1, 1))  # covers the grid
    _spec_file(folder / "b.fits", (1, 1, 2), pix0=37000)  # 3.70-3.706: nothing on the grid
    _spec_file(folder / "c.fits", (1, 1, 3), ivar=0.0)  # on the grid, every pixel without data
    labels = _labels([(1, 1, 1), (1, 1, 2), (1, 1, 3)], tmp_path / "labels.csv")
    out = tmp_path / "g.h5"

    report = ingest_sdss_spectra(folder, labels, out, targets={"TEFF_ADOP": "K"}, grid=(3.6, 3.606, 30), n_jobs=1)

    assert report.n_ok == 1 and [f for f, _ in report.skipped] == ["b.fits", "c.fits"]
    assert all("too few good pixels: 0 of 30" in r and "--min-good-fraction" in r for _, r in report.skipped)
    assert report.n_low_coverage == 2
    saved = json.loads((tmp_path / "g.h5.ingest-report.json").read_text())
    assert saved["n_skipped"] == 2 and saved["n_low_coverage"] == 2 and saved["min_good_fraction"] == 0.5
    assert "too few good pixels" in saved["skipped"][0]["reason"]
    assert "2 spectra skipped with fewer than 50% good pixels" in capsys.readouterr().out
    with Dataset(out) as ds:
        assert list(ds.ids) == ["0001-00001-0001"]
    # Natively the file's own pixels count: b.fits (good, elsewhere) is kept, c.fits is not.
    native = ingest_sdss_spectra(folder, labels, tmp_path / "n.h5", targets={"TEFF_ADOP": "K"}, progress=False)
    assert native.n_ok == 2 and [f for f, _ in native.skipped] == ["c.fits"]
    assert "of its own pixels" in native.skipped[0][1]
    # 0 keeps every spectrum, as before.
    kept = ingest_sdss_spectra(folder, labels, tmp_path / "k.h5", targets={"TEFF_ADOP": "K"},
                               grid=(3.6, 3.606, 30), min_good_fraction=0.0, progress=False)
    assert kept.n_ok == 3


def test_cli_min_good_fraction(tmp_path, capsys):
    from astroreg.cli import _ingest as cli

    folder = tmp_path / "spectra"
    folder.mkdir()
    _spec_file(folder / "a.fits", (1, 1, 1), n=20)  # 20 good pixels of the 30 on the grid
    labels = _labels([(1, 1, 1)], tmp_path / "labels.csv")
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers(dest="command"))
    base = ["ingest", "sdss-spectra", "--spectra", str(folder), "--catalog", str(labels), "--target", "TEFF_ADOP:K",
            "--grid", "3.6", "3.6029", "30", "--quiet", "--no-splits"]
    args = parser.parse_args([*base, "--out", str(tmp_path / "a.h5"), "--min-good-fraction", "0.9"])
    assert args.func(args) == 1
    assert "too few good pixels" in capsys.readouterr().err
    args = parser.parse_args([*base, "--out", str(tmp_path / "b.h5")])  # default 0.5
    assert args.func(args) == 0
    args = parser.parse_args([*base, "--out", str(tmp_path / "c.h5"), "--min-good-fraction", "1.5"])
    assert args.func(args) == 2
    assert "min_good_fraction must be a number in [0, 1]" in capsys.readouterr().err


def test_real_quasar_shifted_to_its_rest_frame_is_skipped(shared_dir, tmp_path):
    quasar = shared_dir / "data" / "sdss" / "spectra" / "spec-5290-55862-0984.fits"
    star = shared_dir / "data" / "sdss" / "spectra" / "spec-3126-54804-0211.fits"
    if not quasar.exists() or not star.exists():
        pytest.skip("the real SDSS spectra are absent")
    folder = tmp_path / "spectra"
    folder.mkdir()
    for f in (quasar, star):
        shutil.copy(f, folder / f.name)
    # No RV for either: the rest frame comes from the HDU 2 redshift (the quasar's z = 2.56).
    labels = _labels([(5290, 55862, 984), (3126, 54804, 211)], tmp_path / "labels.csv", rv=[np.nan, np.nan])
    report = ingest_sdss_spectra(folder, labels, tmp_path / "q.h5", targets={"TEFF_ADOP": "K"},
                                 grid=(3.5754, 3.9670, 4000), rest_frame="RV_ADOP", progress=False)
    assert report.n_ok == 1 and report.skipped[0][0] == quasar.name
    assert "0 of 4000" in report.skipped[0][1] and "rest frame of RV_ADOP" in report.skipped[0][1]
