"""``astroreg demo``: the main job on a built-in mock survey."""

from __future__ import annotations

import time
from pathlib import Path

from astroreg.cli._common import add_command, add_threads, positive_int, recipe_overrides

DEMO_N = 3000
DEMO_EPOCHS = 8


def register(sub) -> None:
    p = add_command(
        sub, "demo",
        help="simulate a small HSC-like galaxy survey, train the galaxy-flux recipe in a quick setting, "
             "print the comparison with the baselines",
        example="astroreg demo --n 3000 --epochs 8",
    )
    p.add_argument("--n", type=int, default=DEMO_N, help=f"galaxies to simulate (default {DEMO_N})")
    p.add_argument("--epochs", type=positive_int, default=DEMO_EPOCHS, help=f"training epochs (default {DEMO_EPOCHS})")
    p.add_argument("--seed", type=int, default=0, help="seed of the mock survey and of training")
    p.add_argument("--jobs", type=positive_int, default=None, help="processes for the simulation (default: all cores)")
    p.add_argument("--runs", default="runs", help="parent folder of the run and the mock data (default: ./runs)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a recipe key (repeatable)")
    add_threads(p, recorded=True)
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def run(args) -> int:
    from astroreg.config import load_recipe

    if args.n < 100:
        raise ValueError(f"--n {args.n} is too small for a train/val/test split; use at least 100")
    data = Path(args.runs) / "demo-data" / f"galaxy-images-n{args.n}-seed{args.seed}.h5"
    overrides = {"dataset.path": str(data), "training.epochs": args.epochs, "training.seed": args.seed}
    overrides.update(recipe_overrides(args))
    # Before the simulation and before torch: a bad --set answers in a second, not after minutes.
    recipe = load_recipe("galaxy-flux", overrides)
    from astroreg.cli._run import print_comparison
    from astroreg.pipeline import train_recipe
    from astroreg.sim import simulate_galaxy_images

    t0 = time.perf_counter()
    if data.exists():
        print(f"using the mock survey already simulated at {data}")
    else:
        print(f"simulating {args.n} HSC-like bulge+disk galaxies with GalSim -> {data}")
        simulate_galaxy_images(args.n, dataset=data, seed=args.seed, n_jobs=args.jobs, progress=not args.quiet)
    t1 = time.perf_counter()
    print(f"training {recipe.model.name} for {recipe.training.epochs} epochs, then the baselines")
    run_dir = train_recipe(recipe, runs_root=args.runs, progress=not args.quiet)
    t2 = time.perf_counter()
    print_comparison(run_dir)
    print(f"\ntime: simulation {t1 - t0:.0f} s, training and evaluation {t2 - t1:.0f} s")
    return 0
