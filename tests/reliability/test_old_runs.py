"""Run folders written before named inputs (preprocessors.json version 1, model.pt with one unnamed input).

The two folders under ``tests/fixtures/runs-v1/`` were trained by astroreg at commit c10db72
(the last one before issue 10) on the datasets rebuilt below, and hold that version's
predictions of their test split. Today's astroreg must read them, as the one named input
they now are, and predict the same numbers (bit for bit on the CPU that recorded them, to
float32 rounding on others).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from astroreg.data import DatasetWriter, SpectraSpec
from astroreg.modalities import RecipePreprocessor
from astroreg.pipeline import Run, predict

from conftest import make_blob_dataset

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "runs-v1"


def _spectra_dataset(path: Path) -> Path:
    """The 200 spectra the v1 spectra run was trained on (same seed and code as then)."""
    rng = np.random.default_rng(0)
    loglam = np.linspace(3.60, 3.66, 128)
    n = 200
    depth = rng.uniform(0.05, 0.6, n)
    flux = (1 - depth[:, None] * np.exp(-0.5 * ((loglam - 3.63) / 0.0015) ** 2)) * rng.uniform(5, 50, (n, 1))
    flux += 0.01 * rng.normal(size=flux.shape)
    spec = SpectraSpec(n_pixels=loglam.size, wavelength=tuple(10**loglam), with_mask=False)
    with DatasetWriter(path, spectra=spec, targets={"a": "K"}, tabular={"RV": "km/s"}) as w:
        w.append([f"s{i}" for i in range(n)], spectra={"flux": flux, "ivar": np.ones_like(flux)},
                 targets={"a": 5000 + 3000 * depth}, tabular={"RV": rng.uniform(-50, 50, n)})
        w.make_splits({"train": 0.6, "val": 0.15, "test": 0.25}, seed=0)
    return path


@pytest.mark.parametrize("kind, name", [("images", "image"), ("spectra", "flux")])
def test_a_version_1_run_folder_predicts_what_it_predicted_then(tmp_path, kind, name):
    run = shutil.copytree(FIXTURES / kind, tmp_path / "run")
    doc = json.loads((run / "preprocessors.json").read_text())
    assert doc["version"] == 1 and doc["preprocessor"]["modality"] == kind  # the old layout, untouched
    data = (make_blob_dataset(tmp_path / "blobs.h5", n=300, size=16, seed=5) if kind == "images"
            else _spectra_dataset(tmp_path / "spectra.h5"))
    pre = RecipePreprocessor.load(run / "preprocessors.json")
    assert pre.input_kinds == {name: kind}
    assert list(Run.open(run).recipe.inputs) == [name]  # its old-form config.yaml, as one named input
    out = predict(run, data, tmp_path / "now.parquet", split="test", progress=False)
    now, then = pd.read_parquet(out), pd.read_parquet(run / "predictions.parquet")
    assert list(now["id"]) == list(then["id"])
    pred = [c for c in then if c.endswith("_pred")]
    # Bit for bit on the kind of CPU that recorded them; float32 kernels differ between CPUs (AVX2,
    # AVX-512, another vendor's), which moves the last float32 bit: 1e-6 is a few float32 units, far
    # below what a wrongly converted weight, input name or scaling would do.
    np.testing.assert_allclose(now[pred].to_numpy(), then[pred].to_numpy(), rtol=1e-6, atol=0)
    assert (run / "preprocessors.json").read_text() == (FIXTURES / kind / "preprocessors.json").read_text()


def test_a_damaged_version_1_file_is_a_one_line_error(tmp_path):
    run = shutil.copytree(FIXTURES / "spectra", tmp_path / "run")
    doc = json.loads((run / "preprocessors.json").read_text())
    del doc["preprocessor"]["spectra"]
    (run / "preprocessors.json").write_text(json.dumps(doc))
    with pytest.raises(ValueError, match=r"preprocessors\.json is truncated or not an astroreg preprocessor file "
                                         r"\(a version-1 file that cannot be read"):
        RecipePreprocessor.load(run / "preprocessors.json")
