"""Speed and accuracy of the mock galaxy survey (``astroreg simulate galaxy-images``).

Renders the same galaxies (same seed: same parameters, PSFs and noise seeds) twice:
- GalSim's defaults: exact Sersic indices and default ``GSParams``
  (``sersic_step=None, fast=False``);
- astroreg's settings: indices rounded to a 0.025 grid with the profiles reused, and
  ``FAST_GSPARAMS``;
each on 1 core and on all cores, end to end (``simulate_galaxy_images`` writing an HDF5
dataset, pool start-up and per-process profile set-up included). Each run is a fresh
Python process, so no run inherits another's GalSim tables. Then, on noiseless stamps of
the same galaxies, the image sums of both settings are compared with each other and with
the true total flux.

Prints the results and writes the section "Mock galaxy images (bench_simulate.py)" of
docs/benchmarks.md.

Usage: python benchmarks/bench_simulate.py [--n 600] [--n-flux 150]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import galsim
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, update_section  # noqa: E402

from astroreg.sim import draw_parameters, render_galaxy, simulate_galaxy_images  # noqa: E402
from astroreg.sim._galaxy_images import FAST_GSPARAMS, SERSIC_STEP, _default_jobs  # noqa: E402

HEADING = "Mock galaxy images (bench_simulate.py)"
SETTINGS = {
    "galsim_default": {"sersic_step": None, "fast": False},
    "astroreg": {},
}


def _timed_run(setting: str, n: int, jobs: int) -> float:
    """Stamps per second of one end-to-end run in a fresh process."""
    out = subprocess.run(
        [sys.executable, __file__, "--_child", setting, str(n), str(jobs)],
        check=True, capture_output=True, text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])["rate"]


def _child(setting: str, n: int, jobs: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        simulate_galaxy_images(n, dataset=Path(tmp) / "bench.h5", seed=0, n_jobs=jobs, progress=False,
                               **SETTINGS[setting])
        dt = time.perf_counter() - t0
    print(json.dumps({"rate": n / dt}))


def _flux_accuracy(n: int) -> dict[str, float]:
    cat = draw_parameters(n, np.random.default_rng(np.random.SeedSequence(0, spawn_key=(0,))))
    sums = {}
    for name, kw in SETTINGS.items():
        sums[name] = np.array([render_galaxy(row, noiseless=True, **kw).sum(dtype=np.float64)
                               for _, row in cat.iterrows()])
    exact_fast = np.array([render_galaxy(row, noiseless=True, sersic_step=None).sum(dtype=np.float64)
                           for _, row in cat.iterrows()])
    vs_default = np.abs(sums["astroreg"] / sums["galsim_default"] - 1)
    rounding = np.abs(sums["astroreg"] / exact_fast - 1)
    lost = sums["astroreg"] / cat["total_flux"].to_numpy() - 1
    return {
        "vs_default_median": float(np.median(vs_default)), "vs_default_max": float(vs_default.max()),
        "rounding_median": float(np.median(rounding)), "rounding_max": float(rounding.max()),
        "stamp_sum_median": float(np.median(lost)), "stamp_sum_p5": float(np.percentile(lost, 5)),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=600, help="stamps per timed run (default: %(default)s)")
    parser.add_argument("--n-flux", type=int, default=150, help="noiseless stamps for the flux check")
    parser.add_argument("--_child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args._child:
        _child(args._child[0], int(args._child[1]), int(args._child[2]))
        return 0

    load = os.getloadavg()[0]
    cores = _default_jobs()
    jobs = [1] if cores == 1 else [1, cores]
    rates: dict[tuple[str, int], float] = {}
    for j in jobs:
        for setting in SETTINGS:
            rates[setting, j] = _timed_run(setting, args.n, j)
            print(f"{setting:>15} on {j} core(s): {rates[setting, j]:6.1f} stamps/s", flush=True)
    acc = _flux_accuracy(args.n_flux)
    print(f"image sums, astroreg vs GalSim defaults: median |diff| {acc['vs_default_median']:.2e}, "
          f"max {acc['vs_default_max']:.2e}; index rounding alone: median {acc['rounding_median']:.2e}, "
          f"max {acc['rounding_max']:.2e}")
    print(f"noiseless stamp sum / total_flux - 1: median {acc['stamp_sum_median']:.4f}, "
          f"5th percentile {acc['stamp_sum_p5']:.4f}")

    rows = "\n".join(
        f"| {j} | {rates['galsim_default', j]:.1f} | {rates['astroreg', j]:.1f} | "
        f"{rates['astroreg', j] / rates['galsim_default', j]:.1f}x |"
        for j in jobs
    )
    gsp = FAST_GSPARAMS
    body = f"""\
Machine: {machine()}; GalSim {galsim.__version__}; load average {load:.1f} when the run started
(other jobs on the machine slow both settings alike; the speed-up is the robust figure).

`simulate_galaxy_images` end to end ({args.n} HSC-like bulge+disk galaxies drawn from the
paper's distributions, 143x143 stamps with noise, written to an HDF5 dataset; pool
start-up and per-process profile set-up included, each run in a fresh process), with
GalSim's default settings (exact Sersic indices, default GSParams) and with astroreg's
(indices rounded to {SERSIC_STEP} for drawing, profiles reused; GSParams
folding_threshold={gsp.folding_threshold:g}, maxk_threshold={gsp.maxk_threshold:g},
kvalue_accuracy={gsp.kvalue_accuracy:g}). Same galaxies, PSFs and noise seeds in both.

| cores | GalSim defaults (stamps/s) | astroreg (stamps/s) | speed-up |
|---|---|---|---|
{rows}

Flux accuracy on {args.n_flux} noiseless stamps of the same galaxies:
- image sums, astroreg vs GalSim defaults: median |difference| {acc['vs_default_median']:.1e},
  max {acc['vs_default_max']:.1e}; of which the index rounding alone (same GSParams):
  median {acc['rounding_median']:.1e}, max {acc['rounding_max']:.1e};
- stamp sum / total_flux - 1 (flux beyond the 143x143 stamp, from the de Vaucouleurs
  wings): median {acc['stamp_sum_median']:.4f}, 5th percentile {acc['stamp_sum_p5']:.4f}.

Run: `python benchmarks/bench_simulate.py --n {args.n}`.
"""
    path = update_section(HEADING, body)
    print(f"updated {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
