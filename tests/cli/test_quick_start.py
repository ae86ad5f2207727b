"""Bad input answers before torch and Lightning are imported; ``--threads`` is accepted and recorded."""

import json
import subprocess
import sys

import pytest

from astroreg.cli import build_parser, main
from astroreg.cli._common import recipe_overrides
from astroreg.config import load_recipe, recipe_to_yaml

# Runs each argument list through the CLI's main in one fresh interpreter and reports, for
# each, the exit status, what went to stderr, and whether torch or Lightning were imported.
_PROBE = """
import contextlib, io, json, sys
from astroreg.cli import main
HEAVY = ("torch", "lightning", "sklearn", "astropy", "scipy", "numpy", "pandas", "h5py")
results = []
for argv in json.loads(sys.argv[1]):
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exit_:
            code = exit_.code
    results.append({"code": code, "stderr": err.getvalue(),
                    "heavy": sorted(m for m in HEAVY if m in sys.modules)})
print(json.dumps(results))
"""

BAD_RECIPE = "name: x\ndataset: {path: a.h5}\ntargets: [{name: f}]\nmodel: {name: paper_cnn}\nepochs: 3\n"

CASES = {
    "bad recipe key": (["train", "bad.yaml"], "train", "unknown key(s) ['epochs']"),
    "missing recipe": (["train", "nonexistent.yaml"], "train", "recipe 'nonexistent.yaml' not found"),
    "bad --set value": (["train", "galaxy-flux", "--set", "training.epochs=x"], "train", "training.epochs"),
    "missing dataset": (["train", "galaxy-flux", "--threads", "1"], "train",
                        "dataset data/galaxy-images.h5 does not exist"),
    "missing run folder": (["predict", "no-such-run", "--data", "x.h5", "--out", "y.parquet"], "predict",
                           "no-such-run is not a complete astroreg run folder (it does not exist)"),
    "missing run to evaluate": (["evaluate", "no-such-run"], "evaluate", "not a complete astroreg run folder"),
    "bad option": (["train", "galaxy-flux", "--bogus"], "astroreg", "unrecognized arguments: --bogus"),
    "bad --threads": (["predict", "run", "--data", "x.h5", "--out", "y.parquet", "--threads", "0"], "predict",
                      "argument --threads: expected a whole number >= 1, got 0"),
    "ablate without dataset": (["ablate", "stellar-params", "--threads", "2"], "ablate",
                               "dataset data/sdss-stars.h5 does not exist"),
    "tune with a bad key": (["tune", "stellar-params", "--set", "tuning.nope=1"], "tune", "nope"),
}


@pytest.fixture(scope="module")
def probed(tmp_path_factory):
    """The CLI's answers to every case of CASES, from one subprocess run in an empty folder."""
    cwd = tmp_path_factory.mktemp("quick")
    (cwd / "bad.yaml").write_text(BAD_RECIPE)
    argvs = [argv for argv, _, _ in CASES.values()]
    done = subprocess.run([sys.executable, "-c", _PROBE, json.dumps(argvs)], cwd=cwd, capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    return dict(zip(CASES, json.loads(done.stdout.strip().splitlines()[-1])))


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_answers_before_torch(case, probed):
    _, command, expected = CASES[case]
    result = probed[case]
    assert result["code"] == 2
    lines = result["stderr"].strip().splitlines()
    assert "Traceback" not in result["stderr"]
    errors = [line for line in lines if line.startswith((f"{command}: error:", f"astroreg {command}: error:"))]
    assert len(errors) == 1, lines
    assert expected in result["stderr"]
    assert not {"torch", "lightning"} & set(result["heavy"]), f"imported before the error: {result['heavy']}"


@pytest.mark.parametrize("recipe", ["galaxy-flux", "stellar-params"])
def test_a_bad_dataset_answers_before_sklearn_and_astropy(recipe, tmp_path):
    done = subprocess.run([sys.executable, "-c", _PROBE, json.dumps([["train", recipe]])], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300, check=False)
    result = json.loads(done.stdout.strip().splitlines()[-1])[0]
    assert result["code"] == 2 and "does not exist" in result["stderr"]
    assert not {"torch", "lightning", "sklearn", "astropy"} & set(result["heavy"])


def test_help_version_and_usage_errors_load_no_numpy(tmp_path):
    argvs = [["--version"], ["--help"], ["train", "--help"], ["train", "x.yaml", "--bogus"], ["nosuchcommand"]]
    done = subprocess.run([sys.executable, "-c", _PROBE, json.dumps(argvs)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300, check=False)
    results = json.loads(done.stdout.strip().splitlines()[-1])
    assert [r["code"] for r in results] == [0, 0, 0, 2, 2]
    assert all(r["heavy"] == [] for r in results), [r["heavy"] for r in results]


@pytest.mark.parametrize("argv", [
    ["train", "galaxy-flux"],
    ["ablate", "stellar-params"],
    ["tune", "stellar-params"],
    ["demo"],
    ["predict", "run", "--data", "x.h5", "--out", "y.parquet"],
    ["evaluate", "run"],
])
def test_threads_option_on_every_training_or_predicting_command(argv):
    parser = build_parser()
    assert parser.parse_args(argv).threads is None
    assert parser.parse_args([*argv, "--threads", "3"]).threads == 3


def test_threads_is_recorded_in_the_recipe():
    args = build_parser().parse_args(["train", "galaxy-flux", "--set", "training.threads=4", "--threads", "1",
                                      "--set", "training.epochs=2"])
    assert recipe_overrides(args) == {"training.threads": 1, "training.epochs": 2}
    recipe = load_recipe(args.recipe, recipe_overrides(args))
    assert recipe.training.threads == 1
    assert load_recipe("galaxy-flux").training.threads is None
    # train writes recipe_to_yaml(recipe) as the run's config.yaml
    assert "threads: 1" in recipe_to_yaml(recipe)


@pytest.fixture
def stopped_set_threads(monkeypatch):
    """Replace set_threads with a recorder that stops the command before it loads the run."""
    import astroreg._threads

    calls = []

    def record(n):
        calls.append(n)
        raise ValueError("stopped after set_threads")

    monkeypatch.setattr(astroreg._threads, "set_threads", record)
    return calls


def _fake_run(tmp_path, dataset):
    run = tmp_path / "run"
    run.mkdir()
    recipe = load_recipe("galaxy-flux", {"dataset.path": str(dataset)})
    (run / "config.yaml").write_text(recipe_to_yaml(recipe))
    (run / "model.pt").write_bytes(b"")
    (run / "preprocessors.json").write_text("{}")
    return run


@pytest.mark.parametrize("threads", [None, 3])
def test_predict_and_evaluate_set_threads_after_their_checks(threads, blob_dataset, tmp_path, stopped_set_threads,
                                                             capsys):
    run = _fake_run(tmp_path, blob_dataset)
    extra = [] if threads is None else ["--threads", str(threads)]
    assert main(["predict", str(run), "--data", str(blob_dataset), "--out", str(tmp_path / "p.parquet"),
                 *extra]) == 2
    assert main(["evaluate", str(run), *extra]) == 2
    assert stopped_set_threads == [threads, threads]
    assert capsys.readouterr().err.count("stopped after set_threads") == 2


def test_predict_checks_its_output_before_threads(blob_dataset, tmp_path, stopped_set_threads, capsys):
    run = _fake_run(tmp_path, blob_dataset)
    assert main(["predict", str(run), "--data", str(blob_dataset), "--out", str(tmp_path / "p.csv")]) == 2
    assert "should end in .parquet" in capsys.readouterr().err
    assert stopped_set_threads == []
