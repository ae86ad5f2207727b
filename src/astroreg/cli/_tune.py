"""``astroreg tune``."""

from __future__ import annotations

import json

from astroreg.cli._common import add_command, add_threads, check_dataset, positive_int, recipe_overrides


def register(sub) -> None:
    """Register ``astroreg tune``."""
    p = add_command(
        sub, "tune",
        help="search the recipe's tuning.space with Optuna (TPE or GP, median pruning, resumable SQLite study); "
             "write the best recipe, trials.csv and the optimisation history",
        example="astroreg tune recipes/stellar-params.yaml --trials 50 --data data/sdss-stars.h5\n"
                "  (stop it any time; the same command resumes the study, and more processes may join it;\n"
                "  each trial draws new values, seeded by tuning.seed and its trial number)",
    )
    p.add_argument("recipe", help="recipe YAML file or shipped recipe name (needs a tuning section)")
    p.add_argument("--trials", type=positive_int, help="finished (complete or pruned) trials the study should reach "
                                              "(default: tuning.trials); a resumed study runs only the missing ones")
    p.add_argument("--data", help="dataset to use instead of the recipe's dataset.path")
    p.add_argument("--storage", help="SQLite file (a new one or a study database; any other "
                                     "file is refused and left untouched) or Optuna storage URL "
                                     "(default: tuning.storage, else runs/<recipe name>-tuning.db)")
    p.add_argument("--study-name", help="study in the storage (default: tuning.study_name, else the recipe name)")
    p.add_argument("--sampler", choices=["tpe", "gp"], help="default: tuning.sampler")
    p.add_argument("--out", help="output folder (default: runs/<recipe name>-tuning/)")
    p.add_argument("--runs", default="runs", help="parent of the default storage and output folder (default: ./runs)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a recipe key (repeatable)")
    p.add_argument("--timeout", type=float, metavar="SECONDS", help="start no new trial after this many seconds")
    add_threads(p, recorded=True)
    p.add_argument("--quiet", action="store_true", help="no progress bar or per-trial log lines")
    p.add_argument("--force-resume", action="store_true",
                   help="join an existing study even if it was made with other recipe settings or another dataset "
                        "(by default that is refused, since its trials would not be comparable; a study records "
                        "both when it is created)")
    p.set_defaults(func=_tune)


def _tune(args) -> int:
    from astroreg.config import load_recipe

    # Everything that needs no torch is checked before Optuna and the training stack are loaded.
    from astroreg.config._recipe import require_tuning_space

    recipe = load_recipe(args.recipe, recipe_overrides(args))
    require_tuning_space(recipe)
    check_dataset(args.data or recipe.dataset.path)
    from astroreg.tuning import tune_recipe

    res = tune_recipe(recipe, trials=args.trials, data=args.data, storage=args.storage, study_name=args.study_name,
                      sampler=args.sampler, out_dir=args.out, runs_root=args.runs, timeout=args.timeout,
                      progress=not args.quiet, force_resume=args.force_resume)
    states = {}
    for t in res.study.get_trials(deepcopy=False):
        states[t.state.name.lower()] = states.get(t.state.name.lower(), 0) + 1
    print(f"\nstudy {res.study.study_name!r}: {res.n_finished} finished trials "
          f"({', '.join(f'{n} {s}' for s, n in sorted(states.items()))}); median trial time {res.trial_seconds:.1f} s")
    print(f"best trial, {res.objective.description}: {res.best_value:.6g}")
    print("best values:")
    for key, value in res.best_overrides.items():
        print(f"  {key}: {json.dumps(value) if isinstance(value, (list, dict)) else value}")
    print(f"\nbest recipe:  {res.best_recipe}\ntrials:       {res.trials_csv}\nhistory plot: {res.history_plot}")
    if res.importance_plot is not None:
        print(f"importances:  {res.importance_plot}")
    print(f"\ntrain the best recipe with:\n  astroreg train {res.best_recipe}")
    return 0
