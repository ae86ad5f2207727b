"""Recipes: YAML files validated into typed configuration.

A recipe names the dataset, the inputs, the targets (with transforms), the
preprocessing, the model, the training and the evaluation (metrics and
baselines). Unknown keys are rejected with the allowed ones listed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from astroreg.config._base import _Strict
from astroreg.config._inputs import (
    ImagesInput,
    InputSettings,
    expand_shorthand,
    shorthand_key,
    validate_inputs,
)

TargetTransform = Literal["none", "log10", "ln", "asinh"]

# The one list of each name family: the training and baseline modules build from these and
# check at import that they implement exactly them.
OPTIMIZER_NAMES = ("adam", "adamw", "adamax", "sgd")
# Regression losses: mse, mae (L1) and huber, each also weighted per target.
LOSS_NAMES = ("mse", "mae", "huber", "weighted_mse", "weighted_mae", "weighted_huber")
SCHEDULER_NAMES = ("none", "plateau", "warmup_cosine")
CLASSICAL_BASELINE_KINDS = ("mean", "linear_regression", "ridge", "random_forest", "decision_tree", "lightgbm",
                            "logistic_regression", "random_forest_classifier", "knn", "hist_gradient_boosting")
# Baselines that can stop early on the validation split (boosted trees: the number of trees).
EARLY_STOPPING_BASELINE_KINDS = ("lightgbm", "hist_gradient_boosting")
CLASSIFIER_KINDS = frozenset({"logistic_regression", "random_forest_classifier"})


class SplitConfig(_Strict):
    """Fractions used when the dataset file carries no stored splits."""

    train: float = 0.6
    val: float = 0.15
    test: float = 0.25
    seed: int = 0

    @model_validator(mode="after")
    def _sum_to_one(self) -> SplitConfig:
        total = self.train + self.val + self.test
        if abs(total - 1) > 1e-6 or min(self.train, self.val, self.test) < 0:
            raise ValueError(f"train + val + test must be non-negative and sum to 1, got {total:g}")
        return self


class DatasetConfig(_Strict):
    """Where the data is. ``path`` is relative to the current directory."""

    path: str
    splits: SplitConfig = SplitConfig()


class TargetConfig(_Strict):
    """One regression target."""

    name: str
    column: str | None = Field(default=None, description="dataset target to read (default: name)")
    transform: TargetTransform = "none"
    unit: str | None = None
    kind: Literal["value", "redshift"] = Field(
        default="value",
        description="redshift: also scored with e_z = (pred - true) / (1 + true): sigma_IQR, sigma_NMAD, "
        "median bias, outlier (|e_z| > max(0.06, 3 sigma_IQR)) and catastrophic (|e_z| > 0.15) rates",
    )
    redshift_like: bool = Field(default=False, description="old spelling of kind: redshift")
    weight: float = Field(default=1.0, gt=0)

    @model_validator(mode="after")
    def _redshift_spelling(self) -> TargetConfig:
        if self.redshift_like and self.kind != "redshift":
            object.__setattr__(self, "kind", "redshift")
        if self.kind == "redshift" and self.transform != "none":
            raise ValueError(
                f"target {self.name!r}: kind redshift scores e_z = (pred - true) / (1 + true) on the target's own "
                f"values, which transform {self.transform} would change into {self.transform}(z); keep "
                "transform: none for a redshift target"
            )
        return self

    @property
    def is_redshift(self) -> bool:
        """Whether the target is a redshift (scored with e_z as well)."""
        return self.kind == "redshift"

    @property
    def source(self) -> str:
        """Name of the dataset target this one is computed from."""
        return self.column or self.name


class PreprocessConfig(_Strict):
    """How the targets are scaled (fitted on the training split, saved with the run).

    Each input's own preprocessing is set on the input (``inputs.<name>``); the old
    ``preprocess.images`` / ``preprocess.spectra`` / ``preprocess.features`` sections of a
    single-input recipe are moved there when the recipe is read (:mod:`astroreg.config._inputs`).
    """

    targets: Literal["none", "standard", "robust"] = "standard"


class ModelConfig(_Strict):
    """A registered network and its hyper-parameters (see ``astroreg models``)."""

    name: str
    params: dict[str, Any] = Field(default_factory=dict)


class OptimizerConfig(_Strict):
    """Optimiser choice.

    ``sgd`` is :class:`torch.optim.SGD` with ``momentum`` and ``nesterov`` (what Keras
    calls ``SGD(momentum=..., nesterov=...)``); the other optimisers ignore those two
    keys, so that a tuning space can search ``name`` over all four with one recipe.
    """

    name: Literal[OPTIMIZER_NAMES] = "adam"
    lr: float = Field(default=1e-3, gt=0)
    weight_decay: float = Field(default=0.0, ge=0)
    momentum: float = Field(default=0.0, ge=0, lt=1, description="sgd only: momentum factor (Keras SGD momentum)")
    nesterov: bool = Field(default=False, description="sgd only: Nesterov momentum (needs momentum > 0)")

    @model_validator(mode="after")
    def _nesterov_needs_momentum(self) -> OptimizerConfig:
        if self.nesterov and self.momentum <= 0:
            raise ValueError("training.optimizer.nesterov needs momentum > 0 (e.g. momentum: 0.9); "
                             "set training.optimizer.momentum or remove nesterov")
        return self


class SchedulerConfig(_Strict):
    """Learning-rate schedule."""

    name: Literal[SCHEDULER_NAMES] = "none"
    warmup_fraction: float = Field(default=0.05, ge=0, lt=1)
    min_lr_ratio: float = Field(default=0.01, ge=0, le=1)
    patience: int = Field(default=3, ge=1)
    factor: float = Field(default=0.5, gt=0, lt=1)


class EarlyStoppingConfig(_Strict):
    """Stop when the validation loss has not improved for ``patience`` epochs."""

    patience: int | None = Field(default=None, ge=1)
    min_delta: float = 0.0


class AugmentConfig(_Strict):
    """Gaussian-noise copies of the training spectra (paper 001: 2 copies at 1-5 % of each spectrum's std).

    Only the training split is augmented; validation and test spectra are never touched.
    Each copy adds noise whose standard deviation is a fraction, drawn uniformly in
    ``noise_fraction``, of the standard deviation of that (preprocessed) spectrum.
    """

    copies: int = Field(default=0, ge=0, description="extra noisy copies per training spectrum (0: off)")
    noise_fraction: tuple[float, float] = Field(
        default=(0.01, 0.05), description="[low, high] of the noise std as a fraction of the spectrum's std"
    )

    @field_validator("noise_fraction")
    @classmethod
    def _ordered(cls, v: tuple[float, float]) -> tuple[float, float]:
        if not 0 <= v[0] <= v[1]:
            raise ValueError(f"noise_fraction must be [low, high] with 0 <= low <= high, got {list(v)}")
        return v


class SampleWeightsConfig(_Strict):
    """Per-sample loss weights computed by the engine for an imbalanced target.

    Fitted on the training split's labels of ``target`` (in the network's scaled space,
    which bins exactly as the transformed target since the scaling is affine) and applied to
    the training batches. By default the validation loss keeps only
    ``training.weight_column`` (if any), so that early stopping, the checkpoint and the
    plateau schedule follow the loss on the objects as they come; with ``weight_validation: true``
    the validation objects are weighted too, by the weighting fitted on the training labels
    (its bins, density, scale and clip), so that they follow the objective being trained.
    Combined with ``training.weight_column`` by product.

    ``stage`` says where the weights act. ``joint`` (default): on the training loss of the
    whole network, from the first epoch. ``head``: the network is trained without them (its
    early stopping and checkpoint as usual), then its output layer alone is refitted on the
    frozen features of the training objects with the weighted loss (full-batch Adam, stopped on
    the weighted validation loss), the decoupled "regressor re-training" of
    Yang et al. 2021 after Kang et al. 2020 (ICLR, "Decoupling Representation and
    Classifier for Long-Tailed Recognition"). The features are learned from every object as
    it comes and only the last mapping leans towards the rare labels.

    ``inverse_frequency``: ``w = (1 / n_bin) ** power`` with ``n_bin`` the count of the
    object's bin among ``bins`` equal-width bins spanning the training labels.
    ``lds`` (label-distribution smoothing, Yang et al. 2021, ICML, "Delving into Deep
    Imbalanced Regression"): the bin counts are convolved with a symmetric kernel
    (``kernel``, ``kernel_size`` bins wide, width ``sigma`` in bins) first. The weights are
    then scaled to mean 1 over the training objects and, if given, clipped to ``clip``.
    """

    kind: Literal["none", "inverse_frequency", "lds"] = "none"
    target: str | None = Field(default=None, description="target whose labels are binned (default: the first)")
    bins: int = Field(default=50, ge=2, description="equal-width bins over the training labels")
    kernel: Literal["gaussian", "triangular", "laplace"] = "gaussian"
    kernel_size: int = Field(default=5, ge=1, description="lds: kernel window in bins (odd; Yang et al.: 5)")
    sigma: float = Field(default=2.0, gt=0, description="lds: kernel width in bins (gaussian, laplace)")
    power: float = Field(default=1.0, gt=0, description="1: inverse density, 0.5: inverse square root")
    clip: tuple[float, float] | None = Field(default=None, description="[min, max] after scaling to mean 1")
    weight_validation: bool = Field(default=False, description="weight the validation loss the same way (fitted on train)")
    stage: Literal["joint", "head"] = Field(
        default="joint",
        description="joint: weight the whole network's training loss; head: train unweighted, then refit the "
                    "output layer alone with the weights (decoupled re-training)",
    )

    @model_validator(mode="after")
    def _check(self) -> SampleWeightsConfig:
        if self.kernel_size % 2 == 0:
            raise ValueError(f"sample_weights.kernel_size must be odd (symmetric kernel), got {self.kernel_size}")
        if self.clip is not None and not 0 <= self.clip[0] < self.clip[1]:
            raise ValueError(f"sample_weights.clip must be [min, max] with 0 <= min < max, got {list(self.clip)}")
        if self.stage == "head" and self.weight_validation:
            raise ValueError("sample_weights.weight_validation applies to stage: joint; with stage: head the network "
                             "is trained and validated unweighted and only its output layer is refitted with the "
                             "weights: remove weight_validation or set stage: joint")
        return self


class TrainingConfig(_Strict):
    """How the network is trained.

    Schedules and early stopping (``early_stopping.patience``): ``none`` and ``plateau``
    combine with early stopping (``plateau`` is ReduceLROnPlateau on the validation loss,
    as in Keras; the run ends whenever early stopping says). ``warmup_cosine`` does not:
    its length is fixed in advance (``epochs`` x batches per epoch) and a run stopped early
    would end part-way down the decay, at a learning rate the schedule never meant to end
    at; the recipe is refused with an error that says to use ``plateau``, or to drop
    ``early_stopping`` and choose ``epochs``.

    ``l2`` adds ``l2 * sum(w ** 2)`` over the model's kernels to the training loss, as a
    Keras ``kernel_regularizer=l2(l2)`` (see :class:`astroreg.training.RegressionModule`).
    ``sample_weights`` (:class:`SampleWeightsConfig`) weighs the training objects of an
    imbalanced target. ``ema_decay`` validates, checkpoints and keeps an exponential moving
    average of the weights (:class:`astroreg.training._average.WeightAverage`).
    ``ensemble: N`` trains N networks, each from its own seed (``seed``, ``seed + 1``, ...)
    with its own early stopping and checkpoint, and predicts with their mean
    (:mod:`astroreg.models._ensemble`); it costs N trainings and N forward passes.
    ``max_minutes`` ends a fit after that much wall time, like early stopping: the best
    validated epoch is kept, and the report says which of the epoch limit, early stopping or
    the time limit ended it.
    """

    epochs: int = Field(default=10, ge=1)
    batch_size: int = Field(default=64, ge=1)
    loss: Literal[LOSS_NAMES] = Field(
        default="mse", description="mse, mae (L1) or huber; weighted_* weigh each target by 1 / its training variance"
    )
    huber_delta: float = Field(default=1.0, gt=0)
    optimizer: OptimizerConfig = OptimizerConfig()
    scheduler: SchedulerConfig = SchedulerConfig()
    early_stopping: EarlyStoppingConfig = EarlyStoppingConfig()
    weight_column: str | None = Field(default=None, description="tabular column of per-sample weights")
    seed: int = 0
    max_train_objects: int | None = Field(default=None, ge=1, description="use at most this many training objects")
    in_memory: Literal["auto", "always", "never"] = "auto"
    memory_limit_gb: float = Field(default=4.0, gt=0)
    num_workers: int = Field(default=0, ge=0)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    threads: int | None = Field(
        default=None, ge=1,
        description="torch intra-op threads (default: the cores not busy with other work, at least 1)",
    )
    augment: AugmentConfig = AugmentConfig()
    sample_weights: SampleWeightsConfig = SampleWeightsConfig()
    l2: float = Field(default=0.0, ge=0, description="Keras-style L2: l2 * sum(w**2) over the model's kernels")
    ema_decay: float | None = Field(
        default=None, gt=0, lt=1,
        description="validate and keep an exponential moving average of the weights (e.g. 0.998; none: off)",
    )
    ensemble: int = Field(
        default=1, ge=1, le=100,
        description="train this many networks from seeds seed, seed+1, ... and predict with their mean",
    )
    max_minutes: float | None = Field(
        default=None, gt=0,
        description="stop fitting after this many minutes (each ensemble member); the best checkpoint is kept",
    )

    @model_validator(mode="after")
    def _schedule_with_early_stopping(self) -> TrainingConfig:
        if self.scheduler.name == "warmup_cosine" and self.max_minutes is not None:
            raise ValueError(
                "training.scheduler warmup_cosine cannot be combined with training.max_minutes: a run stopped "
                "by the time limit ends part-way down the cosine decay; use scheduler {name: plateau} or "
                "remove max_minutes"
            )
        if self.scheduler.name == "warmup_cosine" and self.early_stopping.patience:
            raise ValueError(
                "training.scheduler warmup_cosine cannot be combined with training.early_stopping: a cosine "
                "decay's length is fixed in advance (epochs x batches) and a run stopped early ends part-way "
                "down it; use scheduler {name: plateau} (ReduceLROnPlateau, as the paper) with early stopping, "
                "or remove early_stopping.patience and keep warmup_cosine for a fixed number of epochs"
            )
        return self


class BaselineEarlyStopping(_Strict):
    """Early stopping of a boosted-tree baseline on the validation split."""

    rounds: int = Field(default=50, ge=1, description="stop after this many iterations without a better val loss")


class FeatureSelection(_Strict):
    """Tabular columns for a baseline: ``include`` (default all) minus ``exclude``."""

    include: list[str] | None = None
    exclude: list[str] = Field(default_factory=list)


BaselineKind = Literal[CLASSICAL_BASELINE_KINDS + ("network",)]


class BaselineConfig(_Strict):
    """A baseline run through the same data, splits and evaluation.

    Classical kinds (scikit-learn, LightGBM) read ``inputs``: ``tabular`` columns
    (``features``), or ``model``, the recipe's preprocessed network inputs flattened
    (e.g. the resampled spectra); ``auto`` is ``model`` for spectra recipes and
    ``tabular`` otherwise. ``kind: network`` trains another registered network
    (``model``) with the recipe's training section, changed by ``training`` (dotted
    keys under ``training``, e.g. ``{epochs: 10, optimizer.lr: 3.0e-4}``).
    """

    name: str
    kind: BaselineKind
    inputs: Literal["auto", "tabular", "model"] = "auto"
    features: FeatureSelection = FeatureSelection()
    params: dict[str, Any] = Field(default_factory=dict)
    buckets: list[str] | None = Field(
        default=None, description="classifiers: labels of equal-count target buckets, e.g. [low, medium, high]"
    )
    model: ModelConfig | None = Field(default=None, description="kind network: the registered network to train")
    training: dict[str, Any] = Field(default_factory=dict, description="kind network: overrides of training.*")
    early_stopping: BaselineEarlyStopping | None = Field(
        default=None, description=f"stop adding trees when the validation loss has not improved for rounds "
        f"iterations (kinds {list(EARLY_STOPPING_BASELINE_KINDS)}); the number chosen is recorded"
    )
    refit: Literal["train", "train+val"] = Field(
        default="train", description="train+val: after early stopping, fit again on train + val with the "
        "number of trees chosen on val"
    )

    @model_validator(mode="after")
    def _early_stopping(self) -> BaselineConfig:
        if self.early_stopping is not None and self.kind not in EARLY_STOPPING_BASELINE_KINDS:
            raise ValueError(
                f"baseline {self.name!r} ({self.kind}) cannot stop early; kinds that can are "
                f"{list(EARLY_STOPPING_BASELINE_KINDS)}; remove early_stopping"
            )
        if self.refit == "train+val" and self.early_stopping is None:
            raise ValueError(
                f"baseline {self.name!r}: refit: train+val refits with the number of trees chosen on the "
                "validation split; add early_stopping: {rounds: 50} or remove refit"
            )
        own = sorted(set(self.params) & {"early_stopping_round", "early_stopping_rounds", "early_stopping",
                                         "n_iter_no_change", "callbacks", "eval_set"})
        if self.early_stopping is not None and own:
            raise ValueError(
                f"baseline {self.name!r}: params {own} set early stopping a second way; keep early_stopping: "
                "{rounds: N} and remove them from params"
            )
        return self

    @model_validator(mode="after")
    def _network_fields(self) -> BaselineConfig:
        if self.kind == "network" and self.model is None:
            raise ValueError(f"baseline {self.name!r} is kind network; give model: {{name: ..., params: {{}}}}")
        if self.kind != "network" and (self.model is not None or self.training):
            raise ValueError(f"baseline {self.name!r} ({self.kind}) is not a network; remove 'model' and 'training'")
        return self

    @model_validator(mode="after")
    def _buckets_for_classifiers(self) -> BaselineConfig:
        if self.kind in CLASSIFIER_KINDS and not self.buckets:
            raise ValueError(f"baseline {self.name!r} is a classifier ({self.kind}); give buckets: [low, medium, high]")
        if self.kind not in CLASSIFIER_KINDS and self.buckets:
            raise ValueError(f"baseline {self.name!r} is a regressor ({self.kind}); remove 'buckets'")
        return self

    @property
    def is_classifier(self) -> bool:
        """Whether this baseline predicts target buckets instead of values."""
        return self.kind in CLASSIFIER_KINDS


class RegimesConfig(_Strict):
    """Metrics in bins of the true target, with the low end singled out.

    ``bins`` quantile bins of the true ``target`` on the evaluation split (equal numbers of
    objects); ``low_quantile`` sets the low end: objects with a true value at or below that
    quantile (0.2: the lowest quintile). Each bin also gets the slope of predicted against
    true (near 1: resolved; near 0: the model predicts the bin's median). The validation
    MAE per bin (quantile bins of the validation labels) is logged every epoch into
    ``history.csv`` as ``val_mae_bin0`` ... .
    """

    target: str | None = Field(default=None, description="target binned (default: the first)")
    bins: int = Field(default=5, ge=1)
    low_quantile: float = Field(default=0.2, gt=0, lt=1)
    log_every_epoch: bool = Field(default=True, description="log the validation MAE per bin each epoch")


class EvaluationConfig(_Strict):
    """What is measured and against what."""

    split: Literal["train", "val", "test"] = "test"
    bins: int = Field(default=8, ge=1, description="bins of the true value for binned metrics")
    baselines: list[BaselineConfig] = Field(default_factory=list)
    regimes: RegimesConfig | None = Field(default=None, description="metrics per quantile bin of the true target")
    reference: str | None = Field(default=None, description="baseline whose MSE the others are divided by")
    compare_to: list[str] = Field(
        default_factory=list, description="baselines whose MAE per target the model is divided by in the report"
    )
    paper_tables: str | None = Field(
        default=None,
        description="paper-specific tables and sections of the report (e.g. stellar-params: paper 001's "
        "Tables 2-4); none by default",
    )
    snr_column: str | None = Field(default=None, description="tabular column of S/N (e.g. SN_MEDIAN_ALL)")
    snr_edges: list[float] = Field(
        default_factory=lambda: [10.0, 20.0, 40.0],
        description="inner edges of the S/N bins (open below and above) for the median and 1.4826 MAD of residuals",
    )
    redshift_bins: list[float] | None = Field(
        default=None,
        description="edges in true redshift of the per-bin statistics of redshift targets (e_z, MAE, n); "
        "None: paper 004's [0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6]; []: none",
    )

    @field_validator("baselines")
    @classmethod
    def _unique_names(cls, v: list[BaselineConfig]) -> list[BaselineConfig]:
        names = [b.name for b in v]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"baseline names must be unique; repeated: {dup}")
        return v

    @field_validator("redshift_bins")
    @classmethod
    def _redshift_edges(cls, v: list[float] | None) -> list[float] | None:
        if v and (len(v) < 2 or not all(abs(x) < float("inf") for x in v) or any(b <= a for a, b in zip(v, v[1:]))
                  or v[0] <= -1):
            raise ValueError(f"redshift_bins must be at least two finite, strictly increasing redshifts above -1, "
                             f"got {v}; e.g. [0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6], or [] for none")
        return v


class VariantConfig(_Strict):
    """A named change of the recipe for ablations (``astroreg ablate``).

    ``overrides`` are dotted keys as for ``--set`` (e.g. ``{model.params.skip: false}``);
    ``single_task`` trains one network per target, each with its own head only.
    """

    name: str
    description: str = ""
    overrides: dict[str, Any] = Field(default_factory=dict)
    single_task: bool = False


class SearchDimension(_Strict):
    """One dimension of a tuning search space.

    ``int`` and ``float`` take ``low``, ``high`` and optionally ``step`` or ``log``;
    ``categorical`` takes ``choices`` (any YAML values, lists included).

    ``per_layer`` names another key of the same space, an ``int`` dimension that counts
    layers (e.g. ``model.params.n_conv``): this dimension is then drawn once per layer,
    ``i < count``, as the Optuna parameters ``<key>.0``, ``<key>.1``, ..., and the recipe
    value is the list of the draws (``[64, 128, 256]``). Only the layers a trial has are
    drawn (define-by-run), and the count is always drawn first.
    """

    type: Literal["int", "float", "categorical"]
    low: float | None = None
    high: float | None = None
    step: float | None = None
    log: bool = False
    choices: list[Any] | None = None
    per_layer: str | None = Field(
        default=None, description="dotted key of an int dimension of this space that counts the layers; "
        "draw this dimension once per layer and set the list"
    )

    @model_validator(mode="after")
    def _complete(self) -> SearchDimension:
        if self.type == "categorical":
            if not self.choices:
                raise ValueError("a categorical dimension needs a non-empty 'choices' list")
        else:
            if self.low is None or self.high is None or not self.low < self.high:
                raise ValueError(f"an {self.type} dimension needs low < high, got low={self.low}, high={self.high}")
            if self.log and (self.low <= 0 or self.step is not None):
                raise ValueError("log=true needs low > 0 and no step")
        return self


OBJECTIVE_DIRECTIONS = ("minimize", "maximize")


class ObjectiveConfig(_Strict):
    """A tuning objective computed from the validation predictions, in the target's physical units.

    ``metric`` is one of the metrics the evaluation reports for ``target`` (``mae``,
    ``rmse``, ``nmad``, ...; for a ``kind: redshift`` target also ``sigma_nmad_ez``,
    ``catastrophic_rate``, ...); the names are checked before any trial runs.
    """

    metric: str
    target: str | None = Field(default=None, description="target scored (default: the first)")
    direction: Literal[OBJECTIVE_DIRECTIONS] | None = Field(
        default=None, description="default: the metric's natural one (maximize r2, minimize the others)"
    )


class TuningConfig(_Strict):
    """Hyper-parameter search with Optuna (``astroreg tune``).

    ``space`` maps dotted recipe keys (``model.params.stem``, ``training.optimizer.lr``;
    an integer part indexes a list, e.g. ``model.params.heads.0``) to dimensions; a
    dimension with ``per_layer`` is drawn once per layer (see :class:`SearchDimension`).
    ``objective`` is ``val_loss`` (the best validation loss, scaled targets: the default)
    or ``{metric: NAME, target: TARGET, direction: minimize|maximize}`` (``NAME`` alone is
    short for ``{metric: NAME}``), a metric of the validation predictions of the trial's
    best checkpoint (:class:`ObjectiveConfig`).
    Pruning always follows the per-epoch validation loss, whatever the objective.
    The study lives in ``storage`` (SQLite, default ``runs/<recipe name>-tuning.db``)
    and resumes from there.
    """

    sampler: Literal["tpe", "gp"] = "tpe"
    trials: int = Field(default=20, ge=1)
    pruner: Literal["median", "none"] = "median"
    startup_trials: int = Field(default=5, ge=0, description="trials before the sampler and pruner act")
    epochs: int | None = Field(default=None, ge=1, description="epochs per trial (default training.epochs)")
    max_train_objects: int | None = Field(default=None, ge=1, description="training objects per trial")
    storage: str | None = Field(default=None, description="SQLite file or Optuna storage URL")
    study_name: str | None = None
    seed: int = 0
    objective: Literal["val_loss"] | ObjectiveConfig = Field(
        default="val_loss", description="val_loss, or {metric: NAME, target: TARGET, direction: ...} on the val split"
    )
    space: dict[str, SearchDimension] = Field(default_factory=dict)

    @field_validator("objective", mode="before")
    @classmethod
    def _metric_shorthand(cls, v: Any) -> Any:
        # ``objective: sigma_nmad_ez`` is ``objective: {metric: sigma_nmad_ez}``.
        return {"metric": v} if isinstance(v, str) and v != "val_loss" else v

    @model_validator(mode="after")
    def _per_layer_counts(self) -> TuningConfig:
        for key, dim in self.space.items():
            if dim.per_layer is None:
                continue
            count = self.space.get(dim.per_layer)
            if count is None:
                raise ValueError(
                    f"tuning.space.{key}: per_layer {dim.per_layer!r} is not a key of tuning.space "
                    f"(keys: {sorted(self.space)}); add {dim.per_layer} as an int dimension that counts the layers"
                )
            if count.type != "int" or count.per_layer is not None or count.low < 0:
                raise ValueError(
                    f"tuning.space.{key}: per_layer {dim.per_layer!r} must be a plain int dimension with low >= 0 "
                    f"(a layer count), got type {count.type}"
                    + (f" per_layer {count.per_layer!r}" if count.per_layer else "")
                    + (f" low {count.low:g}" if count.type == "int" and count.low < 0 else "")
                    + f"; make tuning.space.{dim.per_layer} {{type: int, low: ..., high: ...}}"
                )
        return self


class Recipe(_Strict):
    """A whole recipe. Load one with :func:`load_recipe`.

    Examples
    --------
    >>> recipe = load_recipe("recipes/galaxy-flux.yaml")  # doctest: +SKIP
    >>> recipe.model.name
    'paper_cnn'
    """

    name: str
    description: str = ""
    dataset: DatasetConfig
    inputs: dict[str, Any] = Field(
        default_factory=lambda: {"image": ImagesInput()},
        description="named inputs: {name: {kind: images|spectra|tabular|..., <the kind's settings>}}",
    )
    targets: list[TargetConfig]
    preprocess: PreprocessConfig = PreprocessConfig()
    model: ModelConfig
    training: TrainingConfig = TrainingConfig()
    evaluation: EvaluationConfig = EvaluationConfig()
    variants: list[VariantConfig] = Field(default_factory=list, description="ablations run by astroreg ablate")
    tuning: TuningConfig | None = None

    @model_validator(mode="before")
    @classmethod
    def _single_input_shorthand(cls, data: Any) -> Any:
        return expand_shorthand(data)

    @field_validator("inputs", mode="before")
    @classmethod
    def _named_inputs(cls, v: Any) -> dict[str, InputSettings]:
        return validate_inputs(v)

    @field_validator("targets")
    @classmethod
    def _some_targets(cls, v: list[TargetConfig]) -> list[TargetConfig]:
        if not v:
            raise ValueError("give at least one target")
        names = [t.name for t in v]
        if len(set(names)) != len(names):
            raise ValueError(f"target names must be unique, got {names}")
        return v

    @model_validator(mode="after")
    def _known_reference(self) -> Recipe:
        ref = self.evaluation.reference
        names = [self.model.name] + [b.name for b in self.evaluation.baselines]
        if ref is not None and ref not in names:
            raise ValueError(f"evaluation.reference {ref!r} is not the model or a baseline; choose one of {names}")
        unknown = [c for c in self.evaluation.compare_to if c not in names]
        if unknown:
            raise ValueError(f"evaluation.compare_to {unknown} are not the model or a baseline; choose from {names}")
        targets = self.target_names
        for key, named in (("training.sample_weights.target", self.training.sample_weights.target),
                           ("evaluation.regimes.target", self.evaluation.regimes and self.evaluation.regimes.target)):
            if named is not None and named not in targets:
                raise ValueError(f"{key} {named!r} is not a target; choose one of {targets}")
        objective = self.tuning.objective if self.tuning is not None else None
        if isinstance(objective, ObjectiveConfig) and objective.target is not None and objective.target not in targets:
            raise ValueError(f"tuning.objective.target {objective.target!r} is not a target; choose one of {targets}")
        vnames = [v.name for v in self.variants]
        if len(set(vnames)) != len(vnames):
            raise ValueError(f"variant names must be unique, got {vnames}")
        return self

    @property
    def input_kinds(self) -> dict[str, str]:
        """``{input name: kind}``, in the recipe's order."""
        return {name: spec.kind for name, spec in self.inputs.items()}

    @property
    def target_names(self) -> list[str]:
        """Names of the targets, in output order."""
        return [t.name for t in self.targets]

    def with_overrides(self, overrides: dict[str, Any]) -> Recipe:
        """A copy with dotted-key overrides applied, e.g. ``{"training.epochs": 2}``.

        Keys under a free-form ``params`` mapping may be new (``model.params.skip``);
        an integer part indexes a list (``model.params.heads.0``).
        """
        data = self.model_dump(mode="python")
        for key, value in overrides.items():
            set_dotted(data, shorthand_key(data, key), value)
        return recipe_from_dict(data, source="overrides")


def require_tuning_space(recipe: Recipe) -> TuningConfig:
    """The recipe's tuning section; a ValueError saying what to add when it has none or an empty space."""
    tc = recipe.tuning
    if tc is None or not tc.space:
        what = "no 'tuning' section" if tc is None else "an empty 'tuning.space'"
        raise ValueError(
            f"recipe {recipe.name!r} has {what}; add tuning.space with one entry per recipe key to search, e.g.\n"
            "tuning:\n  epochs: 10\n  space:\n"
            "    training.optimizer.lr: {type: float, low: 1.0e-4, high: 3.0e-3, log: true}\n"
            "    model.params.stem: {type: int, low: 64, high: 128, step: 16}\n"
            "(recipes/stellar-params.yaml has the paper's full space)"
        )
    return tc


def set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    """Set ``data[a][b][c] = value`` for the dotted key ``a.b.c``, in place; errors name the key.

    An integer part indexes a list; keys under a ``params`` mapping may be new.
    """
    node: Any = data
    parts = key.split(".")
    for depth, p in enumerate(parts):
        last = depth == len(parts) - 1
        if isinstance(node, list) and p.lstrip("-").isdigit():
            i = int(p)
            if not -len(node) <= i < len(node):
                raise ValueError(f"override {key!r}: index {i} out of range for a list of {len(node)}")
            if last:
                node[i] = value
            else:
                node = node[i]
            continue
        free = depth > 0 and parts[depth - 1] == "params"
        if not isinstance(node, dict) or (p not in node and not (free and last)):
            allowed = sorted(node) if isinstance(node, dict) else []
            where = "unknown key" if last else "no section"
            raise ValueError(f"override {key!r}: {where} {p!r}; allowed: {allowed}")
        if last:
            node[p] = value
        else:
            if node[p] is None and free:
                node[p] = {}
            node = node[p]


def _format_validation_error(err: ValidationError, source: str) -> str:
    lines = [f"invalid recipe {source}:"]
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(top level)"
        msg = e["msg"].removeprefix("Value error, ")
        lines.append(f"  at {loc}: {msg}")
    lines.append("fix these keys in the recipe (see recipes/galaxy-flux.yaml for a complete example)")
    return "\n".join(lines)


def recipe_from_dict(data: dict[str, Any], *, source: str = "<dict>") -> Recipe:
    """Validate a plain mapping into a :class:`Recipe`; errors name the key and the source."""
    if not isinstance(data, dict):
        raise ValueError(f"invalid recipe {source}: expected a mapping at the top level, got {type(data).__name__}")
    try:
        return Recipe.model_validate(data)
    except ValidationError as err:
        raise ValueError(_format_validation_error(err, source)) from None


SHIPPED = Path(__file__).resolve().parent.parent / "recipes"


def list_recipes() -> list[str]:
    """Names of the recipes shipped with astroreg (``recipes/*.yaml``)."""
    return sorted(p.stem for p in SHIPPED.glob("*.yaml"))


def resolve_recipe_path(name_or_path: str | os.PathLike) -> Path:
    """A recipe file: an existing path, or the name of a shipped recipe (e.g. ``galaxy-flux``)."""
    p = Path(name_or_path)
    if p.is_file():
        return p
    shipped = SHIPPED / f"{p.stem}.yaml"
    if p.parent == Path(".") and shipped.is_file():
        return shipped
    raise FileNotFoundError(
        f"recipe {str(name_or_path)!r} not found; give a YAML file or a shipped recipe name: {list_recipes()}"
    )


def load_recipe(path: str | os.PathLike, overrides: dict[str, Any] | None = None) -> Recipe:
    """Read and validate a YAML recipe.

    Parameters
    ----------
    path : path-like
        The YAML file, or the name of a shipped recipe such as ``galaxy-flux``.
    overrides : dict, optional
        Dotted keys to replace, e.g. ``{"training.epochs": 2, "dataset.path": "x.h5"}``.

    Returns
    -------
    Recipe

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ValueError
        If the YAML is malformed or a key is unknown or invalid; the message names the key.
    """
    p = resolve_recipe_path(path)
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ValueError(f"recipe {p} is not valid YAML: {err}") from None
    recipe = recipe_from_dict(data, source=str(p))
    return recipe.with_overrides(overrides) if overrides else recipe


def recipe_to_yaml(recipe: Recipe) -> str:
    """The resolved recipe as YAML text (every default spelled out)."""
    return yaml.safe_dump(recipe.model_dump(mode="json"), sort_keys=False)
