"""Report sections follow the recipe: paper tables only when ``evaluation.paper_tables`` names a set."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from astroreg.config import recipe_from_dict
from astroreg.evaluation import (
    PAPER_001,
    PaperTables,
    ablation_markdown,
    ablation_table,
    check_paper_tables,
    get_paper_tables,
    list_paper_tables,
    recipe_paper_tables,
    recipe_report_sections,
    redshift_targets,
    register_paper_tables,
    residuals_by_snr,
)
from astroreg.evaluation._paper import _SETS

MODELS = {
    "residual_mlp": {"teff": {"mae": 60.0}, "logg": {"mae": 0.13}},
    "ols": {"teff": {"mae": 150.0}, "logg": {"mae": 0.26}},
    "ridge": {"teff": {"mae": 120.0}, "logg": {"mae": 0.20}},
    "dnn_li2017": {"teff": {"mae": 50.0}, "logg": {"mae": 0.13}},
}
REGRESSION = {"split": "test", "models": MODELS}
INFO = {"residual_mlp": {"parameters": 500_000, "predict_objects_per_s": 40_000.0},
        "dnn_li2017": {"parameters": 10_000_000, "predict_objects_per_s": 10_000.0}}


def _frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    teff = rng.uniform(4000, 7000, 40)
    logg = rng.uniform(1, 5, 40)
    return pd.DataFrame({"id": np.arange(40), "teff_true": teff, "teff_pred": teff + rng.normal(0, 60, 40),
                         "logg_true": logg, "logg_pred": logg + rng.normal(0, 0.1, 40),
                         "sn": rng.uniform(5, 60, 40)})


def _recipe(paper_tables: str | None = None, compare_to: tuple[str, ...] = ("ols", "ridge", "dnn_li2017")):
    evaluation = {"compare_to": list(compare_to),
                  "baselines": [{"name": "ols", "kind": "linear_regression"}, {"name": "ridge", "kind": "ridge"},
                                {"name": "dnn_li2017", "kind": "network", "model": {"name": "dnn_li2017"}}]}
    if paper_tables is not None:
        evaluation["paper_tables"] = paper_tables
    return recipe_from_dict({
        "name": "stars",
        "dataset": {"path": "unused.h5"},
        "targets": [{"name": "teff", "unit": "K"}, {"name": "logg", "unit": "dex"}],
        "model": {"name": "residual_mlp"},
        "evaluation": evaluation,
    })


def _sections(recipe, snr=None):
    return recipe_report_sections(recipe, regression=REGRESSION, model="residual_mlp", model_info=INFO,
                                  frame=_frame(), snr=snr)


def test_without_paper_tables_nothing_mentions_a_paper():
    frame = _frame()
    snr = residuals_by_snr(frame, ["teff", "logg"], "sn", [10, 20])
    sections, files = _sections(_recipe(), snr=snr)
    assert files == {}
    text = "\n".join(sections)
    assert "MAE of `residual_mlp` against the baselines" in text
    assert "Residuals in bins of S/N" in text
    for word in ("paper", "Paper", "Table 2", "Table 5"):
        assert word not in text
    # the generic MAE ratio table has our numbers
    assert "| teff | 60 | 150 | 120 | 50 | 0.4 | 0.5 | 1.2 |" in text


def test_no_compare_to_and_no_snr_gives_no_section():
    assert _sections(_recipe(compare_to=())) == ([], {})


def test_stellar_params_gives_the_papers_tables_and_tables_md():
    frame = _frame()
    snr = residuals_by_snr(frame, ["teff", "logg"], "sn", [10, 20])
    sections, files = _sections(_recipe("stellar-params"), snr=snr)
    text = "\n".join(sections)
    assert sections[0].startswith("## MAE of `residual_mlp` against the baselines")
    for heading in ("(paper Table 2)", "(paper Table 3)", "(paper Table 4)", "Range-normalised errors",
                    "Residuals in bins of S/N"):
        assert heading in text, heading
    assert text.count("## Residuals in bins of S/N") == 1
    assert "143.8" in text  # the paper's OLS Teff MAE beside ours
    assert list(files) == ["tables.md"]
    tables = files["tables.md"]
    assert tables.startswith("# stars: summary tables (paper 001's layout")
    assert "(paper Table 2)" in tables and "Residuals in bins of S/N" in tables


def test_unknown_set_is_a_clear_error():
    assert "stellar-params" in list_paper_tables()
    check_paper_tables(None)
    check_paper_tables("stellar-params")
    with pytest.raises(ValueError, match=r"paper_tables 'nope' is not a known set.*\['stellar-params'"):
        check_paper_tables("nope")
    with pytest.raises(ValueError, match="'nope'"):
        _sections(_recipe("nope"))
    assert recipe_paper_tables(_recipe()) is None
    assert recipe_paper_tables(_recipe("stellar-params")) is get_paper_tables("stellar-params")


def test_a_registered_set_adds_its_sections_and_files():
    @register_paper_tables("toy-paper")
    class Toy(PaperTables):
        description = "a toy"

        def report(self, inputs):
            return [f"## Toy table of {inputs.model}"], {"toy.md": "toy"}

    try:
        assert Toy.name == "toy-paper" and "toy-paper" in list_paper_tables()
        sections, files = _sections(_recipe("toy-paper"))
        assert sections[1] == "## Toy table of residual_mlp" and files == {"toy.md": "toy"}
        with pytest.raises(ValueError, match="already registered"):
            register_paper_tables("toy-paper")(Toy)
    finally:
        _SETS.pop("toy-paper", None)


def test_ablation_table_5_only_from_the_set():
    abl = ablation_table({
        "full": {"metrics": MODELS["residual_mlp"], "parameters": 500_000},
        "no_skip": {"metrics": {"teff": {"mae": 80.0}, "logg": {"mae": 0.15}}, "parameters": 490_000},
    })
    plain = ablation_markdown(abl)
    assert plain.startswith("## Ablations relative to the full model\n")
    assert "paper" not in plain and "Table 5" not in plain
    ref = get_paper_tables("stellar-params").ablation()
    assert ref.label == "paper Table 5" and ref.values is PAPER_001["table5_relative_to_full"]
    with_paper = ablation_markdown(abl, published=ref.values, source=ref.source)
    assert "MAE teff (rel) (paper)" in with_paper and "1.39" in with_paper and "Table 5" in with_paper


def test_redshift_targets_read_both_spellings():
    recipe = recipe_from_dict({
        "name": "pz", "dataset": {"path": "unused.h5"}, "model": {"name": "m"},
        "targets": [{"name": "z", "kind": "redshift"}, {"name": "zp", "redshift_like": True}, {"name": "mass"}],
    })
    assert redshift_targets(recipe) == ["z", "zp"]
