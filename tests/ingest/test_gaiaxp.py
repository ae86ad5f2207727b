"""``astroreg ingest gaia-xp``: the real DR3 files in both forms, bad rows, the label join, errors, the CLI."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from astroreg.cli import main
from astroreg.config._inputs import SpectraInput
from astroreg.data import Dataset, prepared_spectra_info
from astroreg.ingest import NothingIngestedError, ingest_gaia_xp
from astroreg.modalities import create_input
from astroreg.preprocess._wavelength import parse_grid
from astroreg.preprocess._xp_layout import XP_SAMPLES, kept_wavelengths, xp_grid

MISSING_BP = "5405570973190252288"
REAL_IDS = ["5853498713190525696", "5762406957886626816"]


@pytest.fixture(scope="module")
def xp_dir(shared_dir):
    d = shared_dir / "data" / "gaiaxp"
    if not (d / "XP_CONTINUOUS_RAW.csv").is_file():
        pytest.skip(f"{d} (real Gaia XP files) is absent")
    return d


def _ingest(files, out, **kw):
    return ingest_gaia_xp(files, out, progress=False, **kw)


def test_continuous_internal_keeps_the_papers_186_samples_and_skips_the_source_without_bp(xp_dir, tmp_path):
    out = tmp_path / "xp.h5"
    report = _ingest(xp_dir / "XP_CONTINUOUS_RAW_with_missing_BP.csv", out)
    assert (report.n_rows, report.n_ok) == (3, 2)
    assert report.skipped == [(MISSING_BP, "BP coefficients missing (the source has no BP spectrum)")]
    saved = json.loads(report.report_path.read_text())
    assert saved["skipped"][0]["source_id"] == MISSING_BP and saved["flux_unit"] == "electron/s"
    with Dataset(out) as ds:
        assert list(ds.ids) == REAL_IDS and ds.target_names == ()
        flux = ds.spectra["flux"][...]
        assert flux.shape == (2, 186) and np.isfinite(flux).all() and (flux.max(axis=1) > 0).all()
        assert (ds.spectra["ivar"][...] > 0).all()
        wl_nm = ds.spectra["wavelength"][...] / 10.0
        assert np.allclose(wl_nm, np.concatenate([kept_wavelengths()["BP"], kept_wavelengths()["RP"]]))
        assert wl_nm[0] == pytest.approx(366, abs=1) and wl_nm[-1] == pytest.approx(996, abs=1)
        assert wl_nm[79] < 640 < wl_nm[-1] and wl_nm[80] < wl_nm[79]  # BP's 80 end where RP's 106 begin
        attrs = ds.spectra.attrs
        assert attrs["flux_unit"] == "electron/s" and attrs["xp_flux_kind"] == "internal"
        assert attrs["xp_truncation"] == "34,6,4,10"
        assert parse_grid(prepared_spectra_info(attrs).grid) == xp_grid()
        assert set(ds.split_names) == {"train", "val", "test"}
        # the recipe's input reads it as stored: the fast path of a prepared dataset
        xp = create_input("xp", SpectraInput(grid="gaia-xp", resample=False, standardize=False, scaling="minmax"))
        xp.fit(ds, np.arange(2))
        assert xp.prepared(ds) and xp.shape == (186,)
        x = xp.transform(ds, np.arange(2))
        assert np.allclose(x.min(axis=0), 0.0) and np.allclose(x.max(axis=0), 1.0)


def test_calibrated_flux_from_coefficients_agrees_with_the_archives_sampled_spectra(xp_dir, tmp_path):
    cont = _ingest(xp_dir / "XP_CONTINUOUS_RAW.csv", tmp_path / "c.h5", flux="calibrated")
    samp = _ingest(xp_dir / "XP_SAMPLED_RAW_dr3int6.csv", tmp_path / "s.h5", flux="calibrated")
    assert cont.n_ok == samp.n_ok == 2 and cont.flux_unit == "1e-17 W m-2 nm-1"
    with Dataset(tmp_path / "c.h5") as a, Dataset(tmp_path / "s.h5") as b:
        assert a.spectra.attrs["xp_flux_kind"] == b.spectra.attrs["xp_flux_kind"] == "calibrated"
        fa, fb = a.spectra["flux"][...], b.spectra["flux"][...]
        assert fa.shape == fb.shape == (2, 186)
        assert 1e-1 < np.median(np.abs(fa)) < 1e3  # 1e-17 W m^-2 nm^-1 (stars of G ~ 12-17), not electron/s
        # the sampled file holds the same two sources (from an internal release): a few per cent apart
        assert np.median(np.abs(fb / fa - 1)) < 0.1
    with pytest.raises(ValueError, match="use --flux calibrated"):
        _ingest(xp_dir / "XP_SAMPLED_RAW_dr3int6.csv", tmp_path / "i.h5", flux="internal")


def test_ecsv_and_fits_array_columns_give_the_csv_spectra(xp_dir, tmp_path):
    from astropy.io import fits
    from astropy.table import Table

    from astroreg.ingest._gaiaxp_read import array_columns, parse_array

    frame = pd.read_csv(xp_dir / "XP_CONTINUOUS_RAW_with_missing_BP.csv")
    arrays = {c: [parse_array(v) if isinstance(v, str) else np.zeros(0) for v in frame[c]]
              for c in array_columns("continuous")}
    # ECSV: fixed-length array columns (the two complete sources)
    table = Table({c: np.stack(arrays[c][::2]) if c in arrays else frame[c].to_numpy()[::2] for c in frame.columns})
    table.write(tmp_path / "xp.ecsv")
    # FITS: variable-length columns, the missing BP an empty array, as the archive writes them
    cols = [fits.Column(name=c, format="PD()", array=np.array([*arrays[c], None], dtype=object)[:-1])
            if c in arrays else fits.Column(name=c, format="K" if c == "source_id" else "D",
                                            array=frame[c].to_numpy(np.int64 if c == "source_id" else float))
            for c in frame.columns]
    fits.BinTableHDU.from_columns(cols).writeto(tmp_path / "xp.fits")
    _ingest(xp_dir / "XP_CONTINUOUS_RAW.csv", tmp_path / "csv.h5")
    _ingest(tmp_path / "xp.ecsv", tmp_path / "ecsv.h5")
    report = _ingest(tmp_path / "xp.fits", tmp_path / "fits.h5")
    assert [s for s, _ in report.skipped] == [MISSING_BP]
    with Dataset(tmp_path / "csv.h5") as a, Dataset(tmp_path / "ecsv.h5") as b, Dataset(tmp_path / "fits.h5") as c:
        assert list(a.ids) == list(b.ids) == list(c.ids) == REAL_IDS
        assert np.array_equal(a.spectra["flux"][...], b.spectra["flux"][...])
        assert np.array_equal(a.spectra["flux"][...], c.spectra["flux"][...])


def test_gaiaxpy_convert_output_at_the_layouts_sampling_gives_the_continuous_ingest(xp_dir, tmp_path):
    from astroreg.preprocess._xp_layout import import_gaiaxpy

    convert = import_gaiaxpy("gaiaxpy").convert

    from astroreg.preprocess._xp_layout import pseudo_wavelengths

    frame = pd.read_csv(xp_dir / "XP_CONTINUOUS_RAW.csv")
    parts = []
    for band in ("BP", "RP"):  # convert wants increasing pseudo-wavelengths: BP's come out blue-last
        out, _ = convert(frame, sampling=np.sort(pseudo_wavelengths(band)), save_file=False)
        parts.append(out[out["xp"] == band])
    converted = pd.concat(parts, ignore_index=True)
    for c in ("flux", "flux_error"):
        converted[c] = ["(" + ", ".join(f"{v:.17g}" for v in a) + ")" for a in converted[c]]
    converted.to_csv(tmp_path / "conv.csv", index=False)
    _ingest(tmp_path / "conv.csv", tmp_path / "conv.h5")
    _ingest(xp_dir / "XP_CONTINUOUS_RAW.csv", tmp_path / "cont.h5")
    with Dataset(tmp_path / "conv.h5") as a, Dataset(tmp_path / "cont.h5") as b:
        assert list(a.ids) == list(b.ids) == REAL_IDS
        assert np.allclose(a.spectra["flux"][...], b.spectra["flux"][...], rtol=1e-6)
        assert np.allclose(a.spectra["ivar"][...], b.spectra["ivar"][...], rtol=1e-5)


def test_label_join_by_source_id_reports_sources_without_labels(xp_dir, tmp_path):
    labels = tmp_path / "labels.csv"
    pd.DataFrame({"source_id": [int(REAL_IDS[1]), 1234567890123456789, int(MISSING_BP)],
                  "z": [0.123, 0.5, 0.2]}).to_csv(labels, index=False)
    report = _ingest(xp_dir / "XP_CONTINUOUS_RAW_with_missing_BP.csv", tmp_path / "xp.h5", labels=labels,
                     targets={"z": ""})
    assert report.n_ok == 1 and report.n_unlabelled == 1 and report.unlabelled_examples == [REAL_IDS[0]]
    assert report.n_labels == 3 and report.n_labels_unmatched == 2
    assert [s for s, _ in report.skipped] == [MISSING_BP]
    with Dataset(tmp_path / "xp.h5") as ds:
        assert list(ds.ids) == [REAL_IDS[1]] and ds.target("z").tolist() == [0.123]
    # ids read as floating point (an empty cell) would lose digits: refused, not rounded
    pd.DataFrame({"source_id": [float(REAL_IDS[1]), np.nan], "z": [0.1, 0.2]}).to_csv(labels, index=False)
    with pytest.raises(ValueError, match="cannot hold 19-digit Gaia source_ids exactly"):
        _ingest(xp_dir / "XP_CONTINUOUS_RAW.csv", tmp_path / "xp2.h5", labels=labels, targets={"z": ""})


def test_bad_rows_are_reported_by_source_id_and_the_rest_written(xp_dir, tmp_path):
    frame = pd.read_csv(xp_dir / "XP_CONTINUOUS_RAW.csv", dtype={"source_id": str})
    bad = pd.concat([frame] * 3, ignore_index=True)
    bad["source_id"] = ["1", "2", "3", "4", "5", "6"]
    coef = bad.loc[1, "rp_coefficients"]
    bad.loc[1, "rp_coefficients"] = coef.replace(coef.split(",")[3], " nan", 1)
    bad.loc[2, "bp_coefficients"] = bad.loc[2, "bp_coefficients"].rsplit(",", 1)[0] + ")"
    bad.loc[3, "source_id"] = "2"
    bad.loc[4, "rp_coefficients"] = "(1.0, banana)"
    path = tmp_path / "bad.csv"
    bad.to_csv(path, index=False)
    report = _ingest(path, tmp_path / "xp.h5", chunk_size=4)
    # two worker processes, a chunk of two sources each: the same outcome, in the same order
    parallel = _ingest(path, tmp_path / "xp2.h5", chunk_size=2, n_jobs=2)
    assert parallel.skipped == report.skipped and parallel.n_ok == report.n_ok
    with Dataset(tmp_path / "xp.h5") as a, Dataset(tmp_path / "xp2.h5") as b:
        assert np.array_equal(a.spectra["flux"][...], b.spectra["flux"][...])
    assert report.n_rows == 6 and report.n_ok == 2
    assert [sid for sid, _ in report.skipped] == ["2", "2", "3", "5"]
    (_, dup), (_, nan), (_, short), (_, text) = report.skipped
    assert dup.startswith("duplicate source_id")
    assert nan == "RP coefficients, errors, correlations or standard deviation not finite"
    assert short == "BP: 54 coefficients but bp_n_parameters is 55"
    assert text.startswith("rp_coefficients: not a list of numbers")
    with Dataset(tmp_path / "xp.h5") as ds:
        assert list(ds.ids) == ["1", "6"]


def test_smsgen_like_sampled_spectra_are_truncated_and_bad_lengths_skipped(tmp_path):
    rng = np.random.default_rng(0)
    n = 5
    bp, rp = rng.uniform(1, 2, (n, XP_SAMPLES)), rng.uniform(1, 2, (n, XP_SAMPLES))
    rp[3] = -rp[3]  # nowhere positive: warned about, kept

    def cells(a):
        return ["(" + ", ".join(f"{v:.17g}" for v in row) + ")" for row in a]

    frame = pd.DataFrame({"source_id": np.arange(10, 10 + n), "bp_flux": cells(bp), "rp_flux": cells(rp)})
    frame.loc[2, "bp_flux"] = "(" + ", ".join(["1.0"] * 119) + ")"
    frame.loc[3, "bp_flux"] = "(" + ", ".join(["-1.0"] * 120) + ")"
    frame.to_csv(tmp_path / "sms.csv", index=False)
    with pytest.warns(UserWarning, match="1 Gaia XP sources have no positive flux sample"):
        report = _ingest(tmp_path / "sms.csv", tmp_path / "xp.h5", truncation="34,6,4,10")
    assert report.n_ok == 4
    assert report.skipped == [("12", "bp_flux has 119 samples, expected 120 (the layout's sampling per band)")]
    assert report.nonpositive_examples == ["13"]
    with Dataset(tmp_path / "xp.h5") as ds:
        assert "ivar" not in ds.spectra and list(ds.ids) == ["10", "11", "13", "14"]
        flux = ds.spectra["flux"][...]
        assert np.allclose(flux[0], np.concatenate([bp[0, 34:114], rp[0, 4:110]]).astype(np.float32))
    with pytest.raises(ValueError, match="use --flux internal"):
        _ingest(tmp_path / "sms.csv", tmp_path / "c.h5", flux="calibrated")


def test_unreadable_file_missing_column_and_nothing_left_are_one_clear_error(xp_dir, tmp_path):
    corrupt = tmp_path / "xp.fits"
    corrupt.write_bytes(b"SIMPLE  =                    T" + bytes(range(256)) * 4)
    with pytest.raises(ValueError, match=r"could not read Gaia XP file .*xp\.fits.*Download it again"):
        _ingest(corrupt, tmp_path / "a.h5")
    frame = pd.read_csv(xp_dir / "XP_CONTINUOUS_RAW.csv", dtype={"source_id": str})
    frame.drop(columns=["rp_coefficient_correlations"]).to_csv(tmp_path / "cols.csv", index=False)
    with pytest.raises(ValueError, match=r"lacks columns \['rp_coefficient_correlations'\]"):
        _ingest(tmp_path / "cols.csv", tmp_path / "b.h5")
    pd.DataFrame({"source_id": [1], "bp_flux": ["(1.0)"], "rp_flux": ["(1.0)"]}).to_csv(tmp_path / "one.csv",
                                                                                        index=False)
    with pytest.raises(NothingIngestedError, match="no usable Gaia XP source"):
        _ingest(tmp_path / "one.csv", tmp_path / "c.h5")
    assert not list(tmp_path.glob("*.h5")) and not list(tmp_path.glob(".*part"))


def test_cli_writes_atomically_and_refuses_an_existing_output(xp_dir, tmp_path, capsys):
    out = tmp_path / "xp.h5"
    labels = tmp_path / "z.csv"
    pd.DataFrame({"source_id": [int(i) for i in REAL_IDS], "z": [0.1, 0.3]}).to_csv(labels, index=False)
    args = ["ingest", "gaia-xp", "--xp", str(xp_dir / "XP_CONTINUOUS_RAW_with_missing_BP.csv"), "--labels",
            str(labels), "--target", "z", "--out", str(out), "--quiet", "--seed", "3"]
    assert main(args) == 0
    with Dataset(out) as ds:
        assert ds.target("z").tolist() == [0.1, 0.3] and ds.split_seed == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["xp.h5", "xp.h5.ingest-report.json", "z.csv"]
    before = out.stat().st_mtime_ns
    assert main(args) == 2
    assert "pass --overwrite" in capsys.readouterr().err and out.stat().st_mtime_ns == before
    assert main(args + ["--overwrite", "--truncation", "30,6,4,10"]) == 0
    with Dataset(out) as ds:
        assert ds.spectra["flux"].shape == (2, 190) and ds.spectra.attrs["xp_truncation"] == "30,6,4,10"
    assert main(args + ["--overwrite", "--truncation", "34,6"]) == 2
    assert "BP_FIRST,BP_LAST,RP_FIRST,RP_LAST" in capsys.readouterr().err
