"""The run folder: everything needed to reproduce and to apply a trained recipe.

Layout::

    <run>/config.yaml            resolved recipe
    <run>/model.pt               network name, hyper-parameters, input shape, best weights
    <run>/preprocessors.joblib   fitted input and target transforms
    <run>/splits.npz             the train/val/test rows used
    <run>/history.csv            loss per epoch
    <run>/metrics.json           test metrics of the model and every baseline
    <run>/predictions.parquet    id, true and predicted value per target
    <run>/report.md, plots/      the report
    <run>/environment.json       versions and device

A run is built in ``<run>.partial`` and renamed when complete, so a folder
without that suffix is always whole.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import shutil
from dataclasses import dataclass, field
from functools import cached_property
from importlib import metadata
from pathlib import Path

import torch
from torch import nn

from astroreg.config import Recipe, load_recipe
from astroreg.data import atomic_path, atomic_write_text
from astroreg.models import create_model
from astroreg.preprocess import RecipePreprocessor

PARTIAL = ".partial"


def new_run_dir(recipe_name: str, runs_root: str | os.PathLike = "runs") -> Path:
    """A fresh, timestamped run folder name under ``runs_root`` (not yet created)."""
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = Path(runs_root) / f"{recipe_name}-{stamp}"
    path, k = base, 1
    while path.exists() or path.with_name(path.name + PARTIAL).exists():
        k += 1
        path = base.with_name(f"{base.name}-{k}")
    return path


def environment() -> dict[str, str]:
    """Versions and hardware that a report should state."""
    env = {"python": platform.python_version(), "platform": platform.platform(), "machine": platform.machine()}
    for pkg in ("astroreg", "numpy", "torch", "lightning", "scikit-learn", "lightgbm", "h5py", "astropy", "galsim"):
        try:
            env[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    env["device"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"cpu ({os.cpu_count()} cores)"
    env["torch_threads"] = str(torch.get_num_threads())
    return env


def save_model(path: str | os.PathLike, backbone: nn.Module, recipe: Recipe, input_shape: tuple[int, ...]) -> Path:
    """Write the network's definition and weights atomically."""
    payload = {
        "model": recipe.model.name,
        "params": dict(recipe.model.params),
        "input_shape": tuple(int(s) for s in input_shape),
        "n_outputs": len(recipe.targets),
        "state_dict": {k: v.detach().cpu() for k, v in backbone.state_dict().items()},
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return Path(path)


def load_model(path: str | os.PathLike) -> nn.Module:
    """Rebuild a saved network in eval mode on the CPU."""
    payload = torch.load(path, map_location="cpu", weights_only=True)
    net = create_model(payload["model"], input_shape=tuple(payload["input_shape"]),
                       n_outputs=payload["n_outputs"], **payload["params"])
    net.load_state_dict(payload["state_dict"])
    return net.eval()


@dataclass
class Run:
    """A finished run folder.

    Examples
    --------
    >>> run = Run.open("runs/galaxy-flux-20261122-101500")  # doctest: +SKIP
    >>> run.recipe.model.name
    'paper_cnn'
    """

    path: Path
    _preprocessor: RecipePreprocessor | None = field(default=None, init=False, repr=False, compare=False)

    @classmethod
    def open(cls, path: str | os.PathLike) -> Run:
        """Open a run folder, checking that it is complete."""
        p = Path(path)
        if p.name.endswith(PARTIAL):
            raise ValueError(f"{p} is an unfinished run (interrupted or failing); train again")
        missing = [f for f in ("config.yaml", "model.pt", "preprocessors.joblib") if not (p / f).exists()]
        if not p.is_dir() or missing:
            raise ValueError(
                f"{p} is not a complete astroreg run folder (missing {missing or 'the folder'}); "
                "give a folder made by `astroreg train`"
            )
        return cls(p)

    @cached_property
    def recipe(self) -> Recipe:
        """The resolved recipe of the run (read once: a finished run's config does not change)."""
        return load_recipe(self.path / "config.yaml")

    def load_network(self) -> nn.Module:
        """The trained network (CPU, eval mode)."""
        return load_model(self.path / "model.pt")

    def load_preprocessor(self) -> RecipePreprocessor:
        """The fitted preprocessing, loaded once per :class:`Run` (shared: do not modify it)."""
        if self._preprocessor is None:
            self._preprocessor = RecipePreprocessor.load(self.path / "preprocessors.joblib")
        return self._preprocessor

    @property
    def metrics(self) -> dict:
        """The contents of ``metrics.json``."""
        return json.loads((self.path / "metrics.json").read_text())


def finish_run(partial: Path) -> Path:
    """Rename ``<run>.partial`` to ``<run>``: the run is complete."""
    final = partial.with_name(partial.name.removesuffix(PARTIAL))
    if final.exists():
        shutil.rmtree(final)
    os.replace(partial, final)
    return final


def labelled_metrics(frame, targets: list[str], redshift_like: list[str]) -> dict[str, dict[str, float]]:
    """Per-target metrics of a predictions table over the objects whose true value is known.

    Missing labels (NaN in ``<target>_true``) are common in survey catalogues; each target
    is scored on its own labelled objects.
    """
    from astroreg.evaluation import evaluate_predictions

    out = {}
    for t in targets:
        known = frame[frame[f"{t}_true"].notna()]
        if known.empty:
            raise ValueError(f"no object of the evaluation split has a known {t!r}; nothing to score")
        out.update(evaluate_predictions(known, [t], [r for r in redshift_like if r == t]))
    return out


def write_json(path: str | os.PathLike, obj) -> Path:
    """Write JSON atomically."""
    return atomic_write_text(path, json.dumps(obj, indent=2, default=float) + "\n")
