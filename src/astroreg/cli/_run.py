"""``astroreg train``, ``evaluate`` and ``predict``."""

from __future__ import annotations

from pathlib import Path

from astroreg.cli._common import (
    add_command,
    add_threads,
    check_dataset,
    check_recipe_outputs,
    check_run_folder,
    positive_int,
)


def register(sub) -> None:
    p = add_command(sub, "train", help="train a recipe's model and every baseline; write the run folder",
                    example="astroreg train recipes/galaxy-flux.yaml --set training.epochs=3")
    p.add_argument("recipe", help="recipe YAML file or shipped recipe name (e.g. galaxy-flux)")
    p.add_argument("--data", help="dataset to use instead of the recipe's dataset.path")
    p.add_argument("--runs", default="runs", help="parent folder of the run (default: ./runs)")
    p.add_argument("--run-dir", help="exact run folder to write; it must not exist (or be empty) unless --overwrite")
    p.add_argument("--overwrite", action="store_true",
                   help="let --run-dir replace a previous run folder (one with config.yaml, model.pt and the "
                        "preprocessors), once the new run is complete; any other existing folder is refused")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a recipe key (repeatable)")
    add_threads(p, recorded=True)
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_train)

    p = add_command(sub, "resume", help="finish a training run or ablation that was interrupted or killed, from its last epoch",
                    example="astroreg resume runs/sigma-sfr-photometry-20261204-101500.partial")
    p.add_argument("partial", help="the <run>.partial folder that an interrupted `astroreg train` or "
                                   "`astroreg ablate` left")
    p.add_argument("--data", help="the run's dataset, if it has moved (it must give the same splits)")
    p.add_argument("--overwrite", action="store_true",
                   help="let the finished run replace a previous run folder at its final name")
    add_threads(p, recorded=False)  # no --set here: the run's recipe is the one it was trained with
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_resume)

    p = add_command(sub, "evaluate", help="metrics of a finished run on its test split or on another dataset",
                    example="astroreg evaluate runs/galaxy-flux-20261122-101500 --data other.h5")
    p.add_argument("run", help="run folder")
    p.add_argument("--data", help="dataset (default: the run's own)")
    p.add_argument("--split", help="stored split to use (default: the run's test rows, or all rows of --data)")
    p.add_argument("--out", help="metrics JSON to write, predictions beside it as .parquet "
                                 "(default: <run>/evaluation/<data>.json)")
    p.add_argument("--overwrite", action="store_true",
                   help="let --out replace a previous metrics JSON and predictions file; other files are refused")
    add_threads(p, recorded=False)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_evaluate)

    p = add_command(sub, "predict", help="apply a run to a dataset of any size; stream predictions to Parquet",
                    example="astroreg predict runs/galaxy-flux-20261122-101500 --data new.h5 --out pred.parquet")
    p.add_argument("run", help="run folder")
    p.add_argument("--data", required=True, help="astroreg dataset (.h5) to predict")
    p.add_argument("--out", required=True, help="output Parquet file (.parquet); must not exist unless --overwrite")
    p.add_argument("--overwrite", action="store_true",
                   help="let --out replace a previous astroreg predictions file; other files are refused")
    p.add_argument("--split", help="predict only this stored split")
    p.add_argument("--chunk-size", type=positive_int, default=None,
                   help="objects read at a time (bounds memory; default 4096 spectra or table rows, 2048 images)")
    p.add_argument("--batch-size", type=positive_int, default=None,
                   help="objects per forward pass (default: 256 for images, the whole chunk otherwise)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    p.add_argument("--backend", choices=["auto", "compile", "jit", "eager"], default="auto",
                   help="CPU prediction path: auto (TorchScript trace, else inductor, else eager) or one of them")
    p.add_argument("--no-domain-flags", dest="domain_flags", action="store_false",
                   help="skip the in_domain/domain_reason columns (faster on data known to be like the training set)")
    add_threads(p, recorded=False)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_predict)


def print_comparison(run_dir: Path) -> None:
    """Print the run's comparison table, the e_z statistics of redshift targets, the low end, and the report's path."""
    from astroreg.evaluation import format_metrics
    from astroreg.pipeline import Run

    run = Run.open(run_dir)
    metrics = run.metrics
    recipe = run.recipe
    classifiers = {m: t for m, t in metrics["models"].items()
                   if all(set(v) == {"accuracy"} for v in t.values())}
    regression = {"split": metrics["split"],
                  "models": {m: t for m, t in metrics["models"].items() if m not in classifiers}}
    regression["low_end"] = {m: t for m, t in (metrics.get("low_end") or {}).items() if m not in classifiers}
    reference = recipe.evaluation.reference if recipe.evaluation.reference in regression["models"] else None
    print(f"\n{recipe.name}: metrics on the {metrics['split']} split")
    print(format_metrics(regression, reference=reference))
    for name, targets in classifiers.items():
        for target, values in targets.items():
            print(f"{name} ({target} in equal-count buckets): accuracy {values['accuracy']:.3f}")
    print(f"\nrun folder: {run.path}\nreport:     {run.path / 'report.md'}")


def _train(args) -> int:
    # Everything that needs no torch is checked before the training stack is loaded (seconds).
    recipe = check_recipe_outputs(args, args.run_dir, "run")
    from astroreg.pipeline import train_recipe

    run = train_recipe(recipe, data=args.data, runs_root=args.runs, run_dir=args.run_dir, progress=not args.quiet,
                       overwrite=args.overwrite)
    print_comparison(run)
    return 0


def _resume(args) -> int:
    from astroreg.pipeline._ablate import ABLATION_RECIPE

    if (Path(args.partial) / ABLATION_RECIPE).is_file():
        from astroreg.cli._ablate import print_ablation
        from astroreg.pipeline import resume_ablation

        if args.data is not None or args.threads is not None:
            raise ValueError("--data and --threads are for a training run; an ablation resumes with its own settings")
        print_ablation(resume_ablation(args.partial, progress=not args.quiet, overwrite=args.overwrite))
        return 0
    from astroreg.pipeline import resume_run

    run = resume_run(args.partial, data=args.data, threads=args.threads, progress=not args.quiet,
                     overwrite=args.overwrite)
    print_comparison(run)
    return 0


def _evaluate(args) -> int:
    from astroreg.config import load_recipe
    from astroreg.data import check_output_file

    run = check_run_folder(args.run)
    data = check_dataset(args.data or load_recipe(run / "config.yaml").dataset.path)
    if args.out is not None:
        check_output_file(args.out, kind="metrics", inputs=[data, run], overwrite=args.overwrite)
    from astroreg._threads import set_threads

    set_threads(args.threads)
    from astroreg.evaluation import format_metrics
    from astroreg.pipeline import evaluate_run

    metrics, path = evaluate_run(args.run, args.data, split=args.split, out=args.out, progress=not args.quiet,
                                 overwrite=args.overwrite)
    print(format_metrics(metrics))  # with the e_z statistics of redshift targets
    print(f"\nmetrics: {path}")
    return 0


def _predict(args) -> int:
    from astroreg.data import check_output_file

    check_run_folder(args.run)
    check_dataset(args.data)
    check_output_file(args.out, kind="predictions", inputs=[args.data, args.run], overwrite=args.overwrite)
    from astroreg._threads import set_threads

    set_threads(args.threads)
    from astroreg.pipeline import predict

    out = predict(args.run, args.data, args.out, split=args.split, chunk_size=args.chunk_size,
                  batch_size=args.batch_size, device=args.device, backend=args.backend,
                  domain_flags=args.domain_flags, progress=not args.quiet, overwrite=args.overwrite)
    print(f"predictions: {out}")
    return 0
