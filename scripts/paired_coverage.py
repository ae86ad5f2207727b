"""How often the seeds-and-objects bootstrap interval of a pooled paired MAE difference holds the truth.

Simulates two models scored on the same ``--objects`` objects over S training seeds: each
seed's predictions have fresh object-level errors (Gaussian, 0.3), and the model's errors are
scaled by a seed effect ``1 + N(0, scatter / 0.24)``, so that each seed's MAE moves by about
``scatter`` while the expected difference stays zero. For each S and scatter it repeats
``--repeats`` times and prints the fraction of 95% intervals
(:func:`astroreg.evaluation._paired.pooled_paired_mae_difference`) that hold zero. The
standard error of one seed's paired difference over 2,000 such objects is about 0.0057, so a
scatter of 0.002 is a third of it, 0.01 1.75 times and 0.03 5 times.

Usage::

    python scripts/paired_coverage.py [--objects 2000] [--repeats 200]
"""

from __future__ import annotations

import argparse

import numpy as np

from astroreg.evaluation._paired import pooled_paired_mae_difference


def coverage(n_seeds: int, scatter: float, *, objects: int, repeats: int, rng: np.random.Generator) -> float:
    """Fraction of ``repeats`` simulated comparisons whose 95% interval holds the true difference 0."""
    held = 0
    for k in range(repeats):
        t = rng.normal(size=objects)
        preds = [t + rng.normal(scale=0.3, size=objects) * (1 + rng.normal(scale=scatter / 0.24))
                 for _ in range(n_seeds)]
        refs = [t + rng.normal(scale=0.3, size=objects) for _ in range(n_seeds)]
        d = pooled_paired_mae_difference(t, np.array(preds), np.array(refs), n_resamples=400, seed=k)
        held += d["lo"] <= 0.0 <= d["hi"]
    return held / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=200)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print("seeds  seed scatter  coverage of the 95% interval")
    for scatter in (0.002, 0.01, 0.03):
        for n_seeds in (2, 3, 4, 8):
            c = coverage(n_seeds, scatter, objects=args.objects, repeats=args.repeats, rng=rng)
            print(f"{n_seeds:5d}  {scatter:12.3f}  {c:.3f}", flush=True)


if __name__ == "__main__":
    main()
