"""Score a stellar-params run on the mock survey against the TRUE labels as well as the SSPP-like ones.

The mock catalogue (``astroreg simulate sdss-stars``) holds the adopted labels that the
run trains and is scored on (``TEFF_ADOP`` ..., with SSPP-like errors) and the true
labels the spectra were made from (``TEFF_TRUE`` ...). This script re-scores the run's
network, its network baselines (their run folders under ``baselines/``) and refits its
OLS and Ridge baselines on the same preprocessed training spectra (or reads their kept
predictions, ``baseline_predictions.parquet``, in runs that have it), then writes one table
of MAE against both label sets, with the network's ratios to OLS and Ridge.

Usage::

    python scripts/mock_truth_check.py RUN_DIR data/sdss-stars-mock/sspp-labels.fits --out truth.csv
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
from astropy.table import Table

from astroreg.baselines import make_estimator
from astroreg.config import BaselineConfig
from astroreg.data import Dataset, atomic_path
from astroreg.pipeline import Run
from astroreg.pipeline._predict import predict_frame
from astroreg.training._data import preprocess_rows

LABELS = {"teff": "TEFF", "feh": "FEH", "logg": "LOGG"}


def _catalogue(path: str) -> pd.DataFrame:
    cat = Table.read(path).to_pandas()
    cat.index = [f"{p:04d}-{m:05d}-{f:04d}" for p, m, f in zip(cat.PLATE, cat.MJD, cat.FIBERID)]
    return cat


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run")
    ap.add_argument("catalog")
    ap.add_argument("--out", default=None, help="CSV to write (default: <run>/truth_check.csv)")
    args = ap.parse_args()
    run = Run.open(args.run)
    recipe = run.recipe
    cat = _catalogue(args.catalog)
    splits = np.load(run.path / "splits.npz")
    preds: dict[str, np.ndarray] = {}
    with Dataset(recipe.dataset.path) as ds:
        test = splits["test"]
        ids = np.asarray(ds.ids[test]).astype(str)
        frame = pd.read_parquet(run.path / "predictions.parquet").set_index("id").loc[ids]
        preds[recipe.model.name] = frame[[f"{t}_pred" for t in LABELS]].to_numpy()
        for cfg in recipe.evaluation.baselines:
            if cfg.kind == "network":
                sub = Run.open(run.path / "baselines" / cfg.name)
                f = predict_frame(sub, ds, test, progress=False).set_index("id").loc[ids]
                preds[cfg.name] = f[[f"{t}_pred" for t in LABELS]].to_numpy()
        linear = [c for c in recipe.evaluation.baselines if c.kind in ("linear_regression", "ridge")]
        stored = run.path / "baseline_predictions.parquet"
        if linear and stored.exists():  # runs since baseline predictions are kept
            kept = pd.read_parquet(stored)
            for cfg in linear:
                f = kept[kept["model"] == cfg.name].set_index("id").loc[ids]
                preds[cfg.name] = f[[f"{t}_pred" for t in LABELS]].to_numpy()
        elif linear:
            pre = run.load_preprocessor()
            train = splits["train"]
            x_train = preprocess_rows(pre, ds, train)
            x_test = preprocess_rows(pre, ds, test)
            y = np.stack([ds.target(t.source, train) for t in recipe.targets], axis=1)
            ok = np.isfinite(y).all(axis=1)
            for cfg in linear:
                est = make_estimator(BaselineConfig(name=cfg.name, kind=cfg.kind, params=cfg.params), y.shape[1])
                preds[cfg.name] = est.fit(x_train[ok], y[ok]).predict(x_test)
    rows = []
    for model, p in preds.items():
        for j, (t, col) in enumerate(LABELS.items()):
            adopted = cat.loc[ids, f"{col}_ADOP"].to_numpy(float)
            truth = cat.loc[ids, f"{col}_TRUE"].to_numpy(float)
            known = adopted > -9000
            rows.append({"model": model, "target": t,
                         "mae_adopted": float(np.mean(np.abs(p[known, j] - adopted[known]))),
                         "mae_true": float(np.mean(np.abs(p[known, j] - truth[known]))),
                         "label_error_mae": float(np.mean(np.abs(adopted[known] - truth[known])))})
    table = pd.DataFrame(rows)
    net = table[table.model == recipe.model.name].set_index("target")
    for name in [c.name for c in linear]:
        ref = table[table.model == name].set_index("target")
        for kind in ("adopted", "true"):
            table.loc[table.model == recipe.model.name, f"net/{name} ({kind})"] = (
                net[f"mae_{kind}"] / ref[f"mae_{kind}"]).reindex(table.loc[table.model == recipe.model.name, "target"]).to_numpy()
    out = args.out or run.path / "truth_check.csv"
    with atomic_path(out) as tmp:
        table.to_csv(tmp, index=False)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(table.round(4).to_string(index=False))
    print(f"written: {out}")


if __name__ == "__main__":
    main()
