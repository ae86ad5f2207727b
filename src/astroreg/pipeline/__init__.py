"""Runs: train a recipe end to end, evaluate it, apply it to new data."""

from astroreg.baselines import count_parameters
from astroreg.pipeline._ablate import ablate_recipe, ablation_recipes, read_ablation
from astroreg.pipeline._evaluate import evaluate_run
from astroreg.pipeline._predict import iter_predictions, predict, predict_frame
from astroreg.pipeline._run import Run, environment, load_model, save_model
from astroreg.pipeline._train import resolve_splits, train_recipe

__all__ = [
    "Run",
    "ablate_recipe",
    "ablation_recipes",
    "count_parameters",
    "read_ablation",
    "environment",
    "evaluate_run",
    "iter_predictions",
    "load_model",
    "predict",
    "predict_frame",
    "resolve_splits",
    "save_model",
    "train_recipe",
]
