"""``astroreg ablate``: the ablation table of a recipe's ``variants`` (paper 001, Table 5)."""

from __future__ import annotations

from astroreg.cli._common import add_command, add_threads, check_recipe_outputs, positive_int


def register(sub) -> None:
    """Register the ``ablate`` subcommand."""
    p = add_command(sub, "ablate",
                    help="train the full model and each of the recipe's variants; write the ablation table",
                    example="astroreg ablate recipes/stellar-params.yaml --set training.epochs=5 --only no_skip\n"
                            "  astroreg ablate sigma-sfr-photometry --data sigma100k.h5 --only no_skip --seeds 1 2 3 --jobs 6")
    p.add_argument("recipe", help="recipe YAML file or shipped recipe name (e.g. stellar-params)")
    p.add_argument("--data", help="dataset to use instead of the recipe's dataset.path")
    p.add_argument("--runs", default="runs", help="parent of the output folder (default: ./runs)")
    p.add_argument("--out", help="exact output folder (default: <runs>/<name>-ablation-<stamp>); "
                                 "it must not exist (or be empty) unless --overwrite")
    p.add_argument("--overwrite", action="store_true",
                   help="let --out replace a previous ablation folder (one with ablation.csv and ablation.json), "
                        "once the new one is complete; any other existing folder is refused")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a recipe key (repeatable)")
    p.add_argument("--only", nargs="+", metavar="NAME", help="train only these variants (and the full model)")
    p.add_argument("--seeds", nargs="+", type=int, metavar="S",
                   help="train every network once per training seed (training.seed); the table gives the mean MAE "
                        "over the seeds and its standard deviation, and paired differences that pair seed with seed, "
                        "with an interval from resampling the seeds and the objects (default: the recipe's seed)")
    p.add_argument("--jobs", type=positive_int, default=1, metavar="N",
                   help="networks to train at a time, each in its own process (default 1): on a GPU they share it, "
                        "which keeps a large GPU busy with small networks; on the CPU the threads are split between them")
    add_threads(p, recorded=True)
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_ablate)


def _ablate(args) -> int:
    # Everything that needs no torch is checked before the training stack is loaded (seconds).
    recipe = check_recipe_outputs(args, args.out, "ablation")
    from astroreg.pipeline import ablate_recipe

    folder = ablate_recipe(recipe, data=args.data, runs_root=args.runs, out=args.out,
                           progress=not args.quiet, only=args.only, overwrite=args.overwrite, seeds=args.seeds,
                           jobs=args.jobs)
    print_ablation(folder)
    return 0


def print_ablation(folder) -> None:
    """Print a finished ablation folder's table and paths."""
    import json

    from astroreg.evaluation import format_table
    from astroreg.pipeline import read_ablation

    table = read_ablation(folder)
    meta = json.loads((folder / "ablation.json").read_text())
    shown = [c for c in table.columns if c not in ("description", "objects_per_s")]
    print(f"\n{meta['recipe']}: ablations on the {meta['split']} split (relative to the full model)")
    print(format_table(table[shown]))
    print(f"\nablation folder: {folder}\ntable:           {folder / 'ablation.md'}")
