import pytest
import yaml

from astroreg.config import list_recipes, load_recipe, recipe_from_dict

MINIMAL = {
    "name": "t",
    "dataset": {"path": "x.h5"},
    "targets": [{"name": "flux"}],
    "model": {"name": "paper_cnn"},
}


def test_shipped_galaxy_flux_recipe_is_the_papers():
    r = load_recipe("galaxy-flux")
    assert "galaxy-flux" in list_recipes()
    assert r.input_kinds == {"image": "images"} and r.inputs["image"].crop == 143
    assert r.targets[0].transform == "log10"
    assert (r.model.name, r.training.epochs, r.training.optimizer.lr, r.training.loss) == ("paper_cnn", 10, 1e-3, "mse")
    kinds = {b.kind for b in r.evaluation.baselines}
    assert {"linear_regression", "logistic_regression", "random_forest_classifier"} <= kinds


def test_unknown_top_level_key_lists_allowed():
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['trainng'\].*allowed keys here: .*'training'"):
        recipe_from_dict({**MINIMAL, "trainng": {}})


def test_unknown_nested_key_names_its_section():
    bad = {**MINIMAL, "training": {"epochs": 3, "lr": 0.1}}
    with pytest.raises(ValueError, match=r"at training: unknown key\(s\) \['lr'\].*'optimizer'"):
        recipe_from_dict(bad)


def test_bad_values_are_named():
    with pytest.raises(ValueError, match=r"training.optimizer.name"):
        recipe_from_dict({**MINIMAL, "training": {"optimizer": {"name": "sgd9"}}})
    with pytest.raises(ValueError, match=r"targets.0.transform"):
        recipe_from_dict({**MINIMAL, "targets": [{"name": "f", "transform": "log2"}]})
    with pytest.raises(ValueError, match=r"sum to 1"):
        recipe_from_dict({**MINIMAL, "dataset": {"path": "x", "splits": {"train": 0.9, "val": 0.2, "test": 0.1}}})


def test_classifier_baseline_needs_buckets_and_reference_must_exist():
    with pytest.raises(ValueError, match=r"classifier.*buckets"):
        recipe_from_dict({**MINIMAL, "evaluation": {"baselines": [{"name": "c", "kind": "logistic_regression"}]}})
    with pytest.raises(ValueError, match=r"reference 'nope'"):
        recipe_from_dict({**MINIMAL, "evaluation": {"reference": "nope"}})


def test_overrides_and_yaml_file(tmp_path):
    p = tmp_path / "r.yaml"
    p.write_text(yaml.safe_dump(MINIMAL))
    r = load_recipe(p, {"training.epochs": 2})
    assert r.training.epochs == 2
    with pytest.raises(ValueError, match=r"unknown key 'epoch'"):
        load_recipe(p, {"training.epoch": 2})


def test_missing_and_malformed_recipe(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"shipped recipe name"):
        load_recipe(tmp_path / "none.yaml")
    p = tmp_path / "bad.yaml"
    p.write_text("name: [unclosed\n")
    with pytest.raises(ValueError, match=r"not valid YAML"):
        load_recipe(p)
