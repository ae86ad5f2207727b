"""The run folder: everything needed to reproduce and to apply a trained recipe.

Layout::

    <run>/config.yaml            resolved recipe
    <run>/model.pt               network name, hyper-parameters, input shape, best weights
    <run>/preprocessors.json     fitted input and target transforms (plain JSON)
    <run>/splits.npz             the train/val/test rows used
    <run>/history.csv            loss per epoch
    <run>/metrics.json           test metrics of the model and every baseline
    <run>/predictions.parquet    id, true and predicted value per target
    <run>/report.md, plots/      the report
    <run>/environment.json       versions and device

A run is built in ``<run>.partial`` (claimed atomically, see
:func:`astroreg.data.build_dir`) and renamed when complete, so a folder without that
suffix is always whole. A run never replaces anything but a previous run folder, and
only when asked (``overwrite``); a failed run removes only its own ``.partial``.

Opening a run folder runs no code from it: the preprocessing is JSON read into
allow-listed classes, and ``model.pt`` is read with ``torch.load(weights_only=True)``
(tensors and plain containers only), then checked before a network is built. An old
folder with a pickled ``preprocessors.joblib`` is refused, never unpickled.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
from dataclasses import dataclass, field
from functools import cached_property
from importlib import metadata
from pathlib import Path

import torch
from torch import nn

from astroreg.config import Recipe, load_recipe
from astroreg.data import PARTIAL, atomic_write_text
from astroreg.evaluation import labelled_metrics  # noqa: F401  (moved to evaluation; callers import it here)
from astroreg.models._io import load_model, save_model  # noqa: F401  (save_model: re-exported, astroreg.pipeline)
from astroreg.modalities import RecipePreprocessor
from astroreg.preprocess._domain import DOMAIN_FILE, TrainingDomain
from astroreg.modalities._serialise import FILE_NAME as PREPROCESSOR_FILE
from astroreg.modalities._serialise import OLD_FILE_NAME as OLD_PREPROCESSOR_FILE
from astroreg.modalities._serialise import old_file_message


def new_run_dir(recipe_name: str, runs_root: str | os.PathLike = "runs") -> Path:
    """A timestamped run folder name under ``runs_root``, ``<recipe>-<YYYYmmdd-HHMMSS>``.

    The name is not reserved: :func:`astroreg.data.claim_dir` with ``unique=True`` claims
    it (or ``-2``, ``-3``, ... when taken) atomically.
    """
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path(runs_root) / f"{recipe_name}-{stamp}"


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
        """Open a run folder, checking that it is complete and that its preprocessor file is sound.

        The preprocessor (small JSON) is read and checked here, so that a damaged or
        doctored folder is refused before any work; the network is read when asked for.

        Raises
        ------
        ValueError
            For an unfinished, incomplete or old pickle-based folder, or a preprocessor
            file that is truncated or not astroreg's.
        """
        p = Path(path)
        if p.name.endswith(PARTIAL):
            raise ValueError(f"{p} is an unfinished run (interrupted or failing); train again")
        if (p / OLD_PREPROCESSOR_FILE).exists() and not (p / PREPROCESSOR_FILE).exists():
            raise ValueError(old_file_message(p / OLD_PREPROCESSOR_FILE))
        missing = [f for f in ("config.yaml", "model.pt", PREPROCESSOR_FILE) if not (p / f).exists()]
        if not p.is_dir() or missing:
            raise ValueError(
                f"{p} is not a complete astroreg run folder (missing {missing or 'the folder'}); "
                "give a folder made by `astroreg train`"
            )
        run = cls(p)
        run.load_preprocessor()
        return run

    @cached_property
    def recipe(self) -> Recipe:
        """The resolved recipe of the run (read once: a finished run's config does not change)."""
        return load_recipe(self.path / "config.yaml")

    @cached_property
    def domain(self) -> TrainingDomain | None:
        """The run's training domain (``domain.json``, read once), or None for a run trained without one."""
        path = self.path / DOMAIN_FILE
        return TrainingDomain.load(path) if path.exists() else None

    def load_network(self) -> nn.Module:
        """The trained network (CPU, eval mode), checked against the run's preprocessor."""
        pre = self.load_preprocessor()
        return load_model(self.path / "model.pt", input_shapes=pre.input_shapes, input_kinds=pre.input_kinds,
                          n_outputs=len(pre.target_names))

    def load_preprocessor(self) -> RecipePreprocessor:
        """The fitted preprocessing, loaded once per :class:`Run` (shared: do not modify it).

        Read from ``preprocessors.json`` as data only (:meth:`RecipePreprocessor.load`).
        """
        if self._preprocessor is None:
            self._preprocessor = RecipePreprocessor.load(self.path / PREPROCESSOR_FILE)
        return self._preprocessor

    @property
    def metrics(self) -> dict:
        """The contents of ``metrics.json``."""
        return json.loads((self.path / "metrics.json").read_text())


def write_json(path: str | os.PathLike, obj) -> Path:
    """Write JSON atomically."""
    return atomic_write_text(path, json.dumps(obj, indent=2, default=float) + "\n")
