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
from conftest import LINE_LOGLAM, line_spectra
from astroreg.ingest import ingest_sdss_spectra

pytestmark = [pytest.mark.filterwarnings("ignore::astropy.utils.exceptions.AstropyWarning"),
              # 10 ** the huge predictions for images 1000 times too bright, in total_flux_pred
              pytest.mark.filterwarnings("ignore:overflow encountered in power:RuntimeWarning")]


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


# -- a trained run: domain.json, predict's flags, the report ----------------------------------
@pytest.fixture(scope="module")
def image_run(blob_dataset, tmp_path_factory):
    from astroreg.config import load_recipe
    from astroreg.pipeline import train_recipe

    recipe = load_recipe("galaxy-flux", {
        "dataset.path": str(blob_dataset), "inputs.crop": 32, "training.epochs": 2, "training.seed": 0,
        "evaluation.reference": "mean_predictor",
        "evaluation.baselines": [{"name": "mean_predictor", "kind": "mean"}],
    })
    return train_recipe(recipe, runs_root=tmp_path_factory.mktemp("runs"), progress=False)


def _image_set(blob_dataset, path, scale_first=0, scale=1000.0):
    """The blob test split as a new dataset, the first ``scale_first`` images multiplied by ``scale``."""
    from astroreg.data import DatasetWriter

    with Dataset(blob_dataset) as ds:
        rows = ds.split("test")
        images = ds.read_images(rows).astype(np.float32)
        ids = [f"t{i}" for i in range(len(rows))]
        spec = ds.image_spec
    images[:scale_first] *= scale
    with DatasetWriter(path, images=spec, targets={}) as w:
        w.append(ids, images=images)
    return path, len(ids)


def test_run_keeps_its_training_domain_as_json(image_run, blob_dataset):
    from astroreg.modalities import raw_targets
    from astroreg.pipeline import Run

    saved = json.loads((image_run / "domain.json").read_text())  # plain JSON, nothing to unpickle
    with Dataset(blob_dataset) as ds:
        y = raw_targets(Run.open(image_run).recipe, ds, ds.split("train"))[:, 0]
    assert saved["targets"]["log_total_flux"]["min"] == pytest.approx(y.min())
    assert saved["targets"]["log_total_flux"]["max"] == pytest.approx(y.max())
    dist = saved["input_distance"]
    assert len(dist["center"]) == len(dist["scale"]) == 32 * 32
    assert dist["threshold"] >= dist["train_quantile"] > 0 and dist["val_flagged"] <= 0.01
    assert saved["min_coverage"] is None  # images have no coverage
    assert saved["categories"] == {}  # img_number, R_e, bt are numbers


def test_predict_flags_inputs_far_from_the_training_inputs(image_run, blob_dataset, tmp_path, capsys):
    from astroreg.pipeline import predict

    data, n = _image_set(blob_dataset, tmp_path / "new.h5", scale_first=20)
    out = predict(image_run, data, tmp_path / "pred.parquet", progress=True)
    frame = pd.read_parquet(out)
    assert frame["in_domain"].dtype == bool
    far, ordinary = frame.iloc[:20], frame.iloc[20:]
    assert not far["in_domain"].any()
    assert far["domain_reason"].str.split(";").apply(lambda r: "input_distance" in r).all()
    far_input = ordinary["domain_reason"].str.split(";").apply(lambda r: "input_distance" in r)
    assert far_input.mean() <= 0.02
    # The other ordinary objects flagged are predictions beyond the training labels, which a
    # 2-epoch network makes at the ends of the range; nothing else.
    label = json.loads((image_run / "domain.json").read_text())["targets"]["log_total_flux"]
    pred = ordinary["log_total_flux_pred"]
    beyond = (pred < label["min"]) | (pred > label["max"])
    np.testing.assert_array_equal(ordinary["in_domain"], ~far_input & ~beyond)
    n_out = int((~frame["in_domain"]).sum())
    assert f"outside the training domain: {n_out} of {n} objects" in capsys.readouterr().out


def test_predictions_outside_the_training_labels_are_flagged(image_run, blob_dataset, tmp_path):
    from astroreg.pipeline import predict

    run = tmp_path / "run"
    shutil.copytree(image_run, run)
    domain = json.loads((run / "domain.json").read_text())
    first = pd.read_parquet(image_run / "predictions.parquet")["log_total_flux_pred"]
    middle = float(first.median())
    # A training label range that ends at the median prediction: the upper half lies outside it.
    domain["targets"]["log_total_flux"]["max"] = middle
    (run / "domain.json").write_text(json.dumps(domain))
    data, _ = _image_set(blob_dataset, tmp_path / "new.h5")
    frame = pd.read_parquet(predict(run, data, tmp_path / "pred.parquet", progress=False))
    above = frame["log_total_flux_pred"] > middle
    assert above.sum() > 10
    assert frame.loc[above, "domain_reason"].str.contains("label_range:log_total_flux").all()
    assert not frame.loc[above, "in_domain"].any()
    assert not frame.loc[~above, "domain_reason"].str.contains("label_range").any()


def test_report_counts_the_flagged_test_objects(image_run):
    frame = pd.read_parquet(image_run / "predictions.parquet")
    assert {"in_domain", "domain_reason"} <= set(frame.columns)
    n_out = int((~frame["in_domain"]).sum())
    report = (image_run / "report.md").read_text()
    assert "## Training domain" in report
    assert f"{n_out} of {len(frame)} objects of the test split" in report


def test_run_without_a_domain_predicts_without_flags(image_run, blob_dataset, tmp_path, caplog):
    from astroreg.pipeline import predict

    run = tmp_path / "old-run"
    shutil.copytree(image_run, run)
    (run / "domain.json").unlink()
    data, _ = _image_set(blob_dataset, tmp_path / "new.h5", scale_first=5)
    with caplog.at_level("WARNING"):
        frame = pd.read_parquet(predict(run, data, tmp_path / "pred.parquet", progress=False))
    assert "in_domain" not in frame.columns and len(frame) > 0
    assert "no domain.json" in caplog.text


def test_unreadable_domain_file_is_a_clear_error(image_run, blob_dataset, tmp_path):
    from astroreg.pipeline import predict

    run = tmp_path / "run"
    shutil.copytree(image_run, run)
    (run / "domain.json").write_text("{not json")
    data, _ = _image_set(blob_dataset, tmp_path / "new.h5")
    with pytest.raises(ValueError, match="domain.json is not a readable astroreg training domain"):
        predict(run, data, tmp_path / "pred.parquet", progress=False)


# -- spectra: coverage and a foreign continuum -------------------------------------------------
SPEC_LOGLAM = LINE_LOGLAM


def _spectra(n, seed):
    return line_spectra(n, np.random.default_rng(seed))


def _write_spectra(path, flux, ivar, targets=None, splits=False, classes=None):
    from astroreg.data import DatasetWriter, SpectraSpec

    spec = SpectraSpec(n_pixels=SPEC_LOGLAM.size, wavelength=tuple(10**SPEC_LOGLAM), with_mask=False)
    classes = np.full(len(flux), "STAR", dtype=object) if classes is None else np.asarray(classes, dtype=object)
    with DatasetWriter(path, spectra=spec, targets={"a": "K"} if targets is not None else {},
                       tabular={"CLASS": ""}) as w:
        w.append([f"s{i}" for i in range(len(flux))], spectra={"flux": flux, "ivar": ivar},
                 targets=None if targets is None else {"a": targets}, tabular={"CLASS": classes})
        if splits:
            w.make_splits({"train": 0.6, "val": 0.15, "test": 0.25}, seed=0)
    return path


@pytest.fixture(scope="module")
def spectra_run(tmp_path_factory):
    from astroreg.config import recipe_from_dict
    from astroreg.pipeline import train_recipe

    flux, d = _spectra(300, 0)
    path = _write_spectra(tmp_path_factory.mktemp("data") / "spec.h5", flux, np.ones_like(flux),
                          targets=5000 + 3000 * d[:, 0] - 1500 * d[:, 1], splits=True)
    recipe = recipe_from_dict({
        "name": "spec-domain", "dataset": {"path": str(path)}, "inputs": {"modality": "spectra"},
        "targets": [{"name": "a", "unit": "K"}],
        "preprocess": {"spectra": {"grid": [3.601, 3.659, 96]}},
        "model": {"name": "residual_mlp", "params": {"stem": 16, "blocks": [16], "heads": [8]}},
        "training": {"epochs": 2, "batch_size": 64},
        "evaluation": {"reference": "mean_predictor", "baselines": [{"name": "mean_predictor", "kind": "mean"}]},
    })
    return train_recipe(recipe, runs_root=tmp_path_factory.mktemp("runs"), progress=False)


def test_spectra_with_low_coverage_or_a_foreign_continuum_are_flagged(spectra_run, tmp_path):
    from astroreg.pipeline import predict

    flux, _ = _spectra(120, 1)
    ivar = np.ones_like(flux)
    ivar[:10, :90] = 0.0  # 70 % of the pixels without data
    flux[10:20] = 30.0 * (10**SPEC_LOGLAM / 4000.0) ** -8  # a steep power law, no ripple, no lines
    classes = np.array(["STAR"] * 20 + ["GALAXY"] * 5 + ["STAR"] * 95, dtype=object)  # as SDSS's HDU 2 CLASS
    data = _write_spectra(tmp_path / "new.h5", flux, ivar, classes=classes)
    saved = json.loads((spectra_run / "domain.json").read_text())
    assert saved["min_coverage"] == 0.5 and saved["categories"] == {"CLASS": ["STAR"]}

    frame = pd.read_parquet(predict(spectra_run, data, tmp_path / "pred.parquet", progress=False))
    reasons = frame["domain_reason"].str.split(";")
    assert reasons[:10].apply(lambda r: "coverage" in r).all()
    assert reasons[10:20].apply(lambda r: "input_distance" in r).all()
    assert reasons[20:25].apply(lambda r: "category:CLASS" in r).all()
    assert not frame["in_domain"][:25].any()
    ordinary = reasons[25:]
    assert ordinary.apply(lambda r: "coverage" not in r and "input_distance" not in r).mean() >= 0.98


def test_domain_flags_and_json_round_trip(tmp_path):
    from astroreg.preprocess._domain import TrainingDomain

    rng = np.random.default_rng(0)
    domain = TrainingDomain(target_names=("teff", "logg"), label_min=(4000.0, 0.0), label_max=(7000.0, 5.0),
                            center=np.zeros(8, np.float32), scale=np.ones(8, np.float32), threshold=3.0,
                            train_quantile=2.5, margin=1.2, val_flagged=0.0, min_coverage=0.5, n_train=10, n_val=5,
                            n_features=8, categories={"CLASS": ("STAR",)})
    x = rng.normal(size=(5, 8)).astype(np.float32) * 0.5
    x[1] *= 1000.0
    x[4, 0] = np.nan
    distance = domain.input_distance(x)
    assert distance[1] > domain.threshold > distance[0]
    # log g -0.002 (the star) and a NaN prediction lie outside the training labels.
    y = np.array([[5000.0, 4.0], [5000.0, 4.0], [5000.0, -0.002], [np.nan, 4.0], [5000.0, 4.0]])
    galaxy = {"CLASS": np.array([False, False, False, False, True])}
    inside, reason = domain.flag(distance, y, coverage=np.array([1.0, 1.0, 1.0, 1.0, 0.2]), unseen=galaxy)
    # A NaN input feature counts as CLIP (10) standard deviations: with 8 features, far enough.
    assert list(reason) == ["", "input_distance", "label_range:logg", "label_range:teff",
                            "input_distance;coverage;category:CLASS"]
    np.testing.assert_array_equal(inside, [True, False, False, False, False])
    domain.save(tmp_path / "domain.json")
    back = TrainingDomain.load(tmp_path / "domain.json")
    assert back.label_min == domain.label_min and back.min_coverage == 0.5 and back.categories == domain.categories
    np.testing.assert_array_equal(back.input_distance(x), distance)


def test_coverage_of_native_and_prepared_spectra_agree(tmp_path):
    from astroreg.config import recipe_from_dict
    from astroreg.modalities import RecipePreprocessor

    folder = tmp_path / "spectra"
    folder.mkdir()
    keys = [(1, 1, i) for i in range(6)]
    for k in keys:
        _spec_file(folder / f"s{k[2]}.fits", k, pix0=36000 + 4 * k[2])  # 60 pixels, shifted a little each
    labels = _labels(keys, tmp_path / "labels.csv")
    grid = (3.6, 3.6069, 40)
    ingest_sdss_spectra(folder, labels, tmp_path / "n.h5", targets={"TEFF_ADOP": "K"}, progress=False)
    ingest_sdss_spectra(folder, labels, tmp_path / "p.h5", targets={"TEFF_ADOP": "K"}, grid=grid, progress=False)
    got = {}
    for name in ("n", "p"):
        recipe = recipe_from_dict({
            "name": "cov", "dataset": {"path": str(tmp_path / f"{name}.h5")}, "inputs": {"modality": "spectra"},
            "targets": [{"name": "TEFF_ADOP"}], "preprocess": {"spectra": {"grid": list(grid)}},
            "model": {"name": "residual_mlp"}})
        with Dataset(tmp_path / f"{name}.h5") as ds:
            pre = RecipePreprocessor.fit(recipe, ds, np.arange(len(ds)))
            got[name] = (pre.single.prepared(ds), pre.guaranteed_coverage(ds), pre.coverage(ds, slice(0, len(ds))))
    assert got["n"][:2] == (False, 0.0) and got["p"][:2] == (True, 0.5)
    np.testing.assert_allclose(got["n"][2], got["p"][2])
    # The later files start further right: fewer of the grid's first pixels are covered.
    assert got["n"][2][0] > got["n"][2][-1] >= 0.5


def test_distance_of_unstandardised_spectra_equals_that_of_standardised_ones():
    """A folded network reads prepared spectra unstandardised; their distance must not change."""
    from astroreg.preprocess._domain import TrainingDomain
    from astroreg.preprocess._spectra import standardize_rows_

    rng = np.random.default_rng(1)
    domain = TrainingDomain(target_names=("a",), label_min=(0.0,), label_max=(1.0,),
                            center=rng.normal(size=50).astype(np.float32), scale=np.full(50, 0.5, np.float32),
                            threshold=3.0, train_quantile=3.0, margin=1.0, val_flagged=0.0, min_coverage=None,
                            n_train=1, n_val=1, n_features=50)
    raw = (rng.normal(size=(150, 50)) * 7 + 30).astype(np.float32)
    expect = domain.input_distance(standardize_rows_(raw.copy()))
    np.testing.assert_allclose(domain.input_distance(raw, prepare=standardize_rows_), expect, rtol=1e-6)
    assert not np.allclose(domain.input_distance(raw), expect)


def test_distance_reads_at_most_max_features_evenly_spaced(tmp_path):
    """A 143x143 stamp has 20,449 features: the distance reads every 20th (1,023 of them, spanning the
    stamp), and domain.json stores only their centre and scale."""
    from astroreg.preprocess._domain import MAX_FEATURES, TrainingDomain, feature_index

    idx = np.arange(143 * 143)[feature_index(143 * 143)]
    assert 0.9 * MAX_FEATURES < len(idx) <= MAX_FEATURES and idx[0] == 0 and idx[-1] > 0.99 * 143 * 143 - 25
    assert len(set(np.diff(idx))) == 1
    np.testing.assert_array_equal(np.arange(50)[feature_index(50)], np.arange(50))
    n_read = len(idx)
    rng = np.random.default_rng(3)
    domain = TrainingDomain(target_names=("a",), label_min=(0.0,), label_max=(1.0,),
                            center=np.zeros(n_read, np.float32), scale=np.ones(n_read, np.float32),
                            threshold=1.5, train_quantile=1.5, margin=1.0, val_flagged=0.0, min_coverage=None,
                            n_train=1, n_val=1, n_features=143 * 143)
    x = rng.normal(size=(4, 1, 143, 143)).astype(np.float32)
    x[2] *= 100.0
    d = domain.input_distance(x)
    assert d[2] > 5 and np.all(np.delete(d, 2) < 1.2)
    path = domain.save(tmp_path / "domain.json")
    assert path.stat().st_size < 100_000
    np.testing.assert_array_equal(TrainingDomain.load(path).input_distance(x), d)


def test_no_domain_flags_skips_the_columns_with_the_same_predictions(image_run, blob_dataset, tmp_path):
    from astroreg.cli import main

    data, _ = _image_set(blob_dataset, tmp_path / "new.h5", scale_first=5)
    with_flags, without = tmp_path / "a.parquet", tmp_path / "b.parquet"
    assert main(["predict", str(image_run), "--data", str(data), "--out", str(with_flags), "--quiet"]) == 0
    assert main(["predict", str(image_run), "--data", str(data), "--out", str(without), "--quiet",
                 "--no-domain-flags"]) == 0
    a, b = pd.read_parquet(with_flags), pd.read_parquet(without)
    assert {"in_domain", "domain_reason"} <= set(a.columns) and not {"in_domain", "domain_reason"} & set(b.columns)
    assert not a["in_domain"].all()  # the scaled objects are flagged when the checks run
    pd.testing.assert_frame_equal(a.drop(columns=["in_domain", "domain_reason"]), b)


def test_row_standardization_gives_the_distance_of_standardised_spectra():
    """The folded path's distance (row offset and factor, only the read pixels transformed) equals that of
    fully standardised spectra, including a constant row, a row whose mean dwarfs its spread and a row with
    a NaN pixel (these through the full standardisation)."""
    from astroreg.preprocess._domain import MAX_FEATURES, TrainingDomain, feature_index
    from astroreg.preprocess._spectra import row_standardization, standardize_rows_

    rng = np.random.default_rng(2)
    n_pix = 4000
    k = len(range(n_pix)[feature_index(n_pix)])
    assert k <= MAX_FEATURES
    domain = TrainingDomain(target_names=("a",), label_min=(0.0,), label_max=(1.0,),
                            center=rng.normal(size=k).astype(np.float32) * 0.1,
                            scale=np.full(k, 0.7, np.float32), threshold=3.0, train_quantile=3.0, margin=1.0,
                            val_flagged=0.0, min_coverage=None, n_train=1, n_val=1, n_features=n_pix)
    raw = (rng.normal(size=(200, n_pix)) * 7 + 30).astype(np.float32)
    raw[3] = 12.5                                   # constant: standardises to 0
    raw[7] = 1e5 + rng.normal(size=n_pix) * 1e-1    # |mean| >> std: the mean square would lose it
    raw[11, 5] = np.nan                             # a bad pixel: the reference standardiser
    expect = domain.input_distance(standardize_rows_(raw.copy()))
    got = domain.input_distance(raw, prepare=standardize_rows_, row_affine=row_standardization)
    np.testing.assert_allclose(got, expect, rtol=1e-4)
    offset, factor = row_standardization(raw)
    assert np.isnan(offset[[7, 11]]).all() and np.isfinite(np.delete(factor, [3, 7, 11])).all()
