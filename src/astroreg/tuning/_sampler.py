"""Samplers whose draws are seeded by the trial number, so every process and every resume draws anew.

An Optuna sampler seeded once per process replays the same random numbers in each process:
a resumed study, or a second process joining it, re-proposes the first parameter sets of
the first run. :class:`TrialSeededSampler` builds its inner sampler for each trial from a
seed derived from ``(seed, trial.number)``. Trial numbers are unique within a study, so
the draws differ between trials, and they do not depend on which process runs a trial
or when, so a study started again from scratch with the same seed repeats its random
(startup) trials exactly.
"""

from __future__ import annotations

import logging
import threading
import warnings
from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler
from optuna.study import Study
from optuna.trial import FrozenTrial, TrialState


def trial_seed(seed: int, number: int) -> int:
    """The seed of trial ``number`` of a study with base ``seed``: a 32-bit integer.

    ``SeedSequence`` mixes the pair, so neighbouring seeds or trial numbers give
    unrelated streams (``seed + number`` would give trial 1 of seed 0 the stream of
    trial 0 of seed 1).
    """
    return int(np.random.SeedSequence([int(seed) % 2**63, int(number)]).generate_state(1)[0])


class TrialSeededSampler(BaseSampler):
    """Delegate to a sampler built for each trial with a seed derived from the trial number.

    The inner samplers (TPE, GP) read the whole trial history from the study on every
    call, so a fresh instance per trial proposes what a long-lived one would, except
    that its random numbers come from the trial's own seed. Only caches are lost (the GP
    sampler's warm start of its kernel fit), which costs far less than a training.

    Parameters
    ----------
    factory : callable
        ``factory(seed) -> BaseSampler``; called once per trial.
    seed : int
        Base seed of the study (``tuning.seed``).

    Examples
    --------
    >>> smp = TrialSeededSampler(lambda s: optuna.samplers.RandomSampler(seed=s), seed=0)
    >>> study = optuna.create_study(sampler=smp)
    >>> study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)
    """

    def __init__(self, factory: Callable[[int], BaseSampler], seed: int) -> None:
        self._factory = factory
        self._seed = int(seed)
        # One inner sampler per running trial, so that threads (n_jobs > 1) do not share one.
        self._inner: dict[int, BaseSampler] = {}
        self._lock = threading.Lock()

    def __str__(self) -> str:
        return f"TrialSeededSampler(seed={self._seed})"

    def _for(self, trial: FrozenTrial) -> BaseSampler:
        with self._lock:
            if trial.number not in self._inner:
                self._inner[trial.number] = self._factory(trial_seed(self._seed, trial.number))
            return self._inner[trial.number]

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        self._for(trial).before_trial(study, trial)

    def infer_relative_search_space(self, study: Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return self._for(trial).infer_relative_search_space(study, trial)

    def sample_relative(self, study: Study, trial: FrozenTrial,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        return self._for(trial).sample_relative(study, trial, search_space)

    def sample_independent(self, study: Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        return self._for(trial).sample_independent(study, trial, param_name, param_distribution)

    def after_trial(self, study: Study, trial: FrozenTrial, state: TrialState,
                    values: Sequence[float] | None) -> None:
        inner = self._for(trial)
        try:
            inner.after_trial(study, trial, state, values)
        finally:
            with self._lock:
                self._inner.pop(trial.number, None)

    def reseed_rng(self) -> None:
        # Optuna calls this to decorrelate worker threads; the trial number already does that,
        # and a random reseed would break the reproducibility this class exists for.
        pass


def make_sampler(name: Literal["tpe", "gp"], *, seed: int, startup_trials: int) -> TrialSeededSampler:
    """The TPE or Gaussian-process (needs torch and scipy) sampler, seeded per trial.

    Parameters
    ----------
    name : {"tpe", "gp"}
    seed : int
        Base seed (``tuning.seed``); trial ``n`` samples with :func:`trial_seed` ``(seed, n)``.
    startup_trials : int
        Random trials before the model-based proposals start.

    Returns
    -------
    TrialSeededSampler

    Raises
    ------
    ValueError
        For an unknown name, or ``gp`` when optuna is too old or torch/scipy are missing.
    """
    if name == "tpe":
        def factory(s: int) -> BaseSampler:
            return optuna.samplers.TPESampler(seed=s, n_startup_trials=startup_trials)
    elif name == "gp":
        # Optional speed-up only; the sequential fallback gives the same suggestions.
        logging.getLogger("optuna._gp.batched_lbfgsb").addFilter(lambda r: "greenlet" not in r.getMessage())
        gp = getattr(optuna.samplers, "GPSampler", None)
        if gp is None:
            raise ValueError(f"sampler 'gp' needs optuna >= 3.6 (installed: {optuna.__version__}); "
                             "upgrade optuna or use --sampler tpe")

        def factory(s: int) -> BaseSampler:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return gp(seed=s, n_startup_trials=startup_trials, deterministic_objective=False)
    else:
        raise ValueError(f"unknown sampler {name!r}; choose 'tpe' or 'gp'")
    try:
        factory(seed)  # fail now, not in the first trial, when the GP sampler's dependencies are missing
    except ImportError as err:
        raise ValueError(f"sampler {name!r} is unavailable: {err}; install torch and scipy or use --sampler tpe") \
            from None
    return TrialSeededSampler(factory, seed)
