import argparse
import json

import pytest

from astroreg.cli import build_parser, main


def _subcommands():
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices


@pytest.mark.parametrize("name", sorted(_subcommands()))
def test_every_command_has_help_with_example(name, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([name, "--help"])
    assert exit_.value.code == 0
    assert "example" in capsys.readouterr().out


def test_expected_commands_exist():
    assert {"simulate", "ingest", "train", "evaluate", "predict", "models", "summary", "demo"} <= set(_subcommands())


def test_models_lists_registry_and_baselines(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "paper_cnn" in out and "linear_regression" in out and "lightgbm" in out


def test_summary_ends_with_parameter_count(capsys):
    assert main(["summary", "galaxy-flux"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    # conv 1->12 (120) + conv 12->24 (2616) + dense 29400->64 (1881664) + 64->1 (65)
    assert last == "trainable parameters: 1884465"


def test_bad_recipe_key_is_a_clear_error(tmp_path, capsys):
    p = tmp_path / "r.yaml"
    p.write_text("name: x\ndataset: {path: a.h5}\ntargets: [{name: f}]\nmodel: {name: paper_cnn}\nepochs: 3\n")
    assert main(["train", str(p)]) == 2
    err = capsys.readouterr().err
    assert "unknown key(s) ['epochs']" in err and "allowed keys here" in err


def test_train_predict_evaluate_via_cli(blob_dataset, tmp_path, capsys):
    run_dir = tmp_path / "run"
    code = main(["train", "galaxy-flux", "--data", str(blob_dataset), "--run-dir", str(run_dir), "--quiet",
                 "--set", "inputs.crop=32", "--set", "training.epochs=2",
                 "--set", "evaluation.baselines=[]", "--set", "evaluation.reference=null"])
    assert code == 0
    out = capsys.readouterr().out
    assert "paper_cnn" in out and str(run_dir / "report.md") in out
    assert main(["predict", str(run_dir), "--data", str(blob_dataset), "--out", str(tmp_path / "p.parquet"),
                 "--quiet"]) == 0
    assert (tmp_path / "p.parquet").is_file()
    assert main(["evaluate", str(run_dir), "--quiet", "--out", str(tmp_path / "m.json")]) == 0
    assert "paper_cnn" in json.loads((tmp_path / "m.json").read_text())["models"]
