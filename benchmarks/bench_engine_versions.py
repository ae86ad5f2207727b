"""Prediction throughput of the two shipped recipes, this tree against an earlier commit, on one machine.

The engine change of issue 10 (named inputs, modality plug-ins) must not slow prediction
down by more than 5 %. This script measures ``astroreg predict`` (HDF5 -> Parquet, run
folder opened and prediction path built inside the timing, as a user runs it) for

- galaxy-flux: the paper CNN on 143x143 stamps (``bench_images.make_data``);
- stellar-params: the residual MLP on prepared spectra (resampled once in the rest frame,
  ``bench_spectra.make_data`` then ``prepare_data``), the path ``docs/benchmarks.md`` quotes;

with the code of this tree and with that of ``--before`` (a commit, checked out into a
temporary git worktree that the script removes again). Each version trains its own run (one
epoch, no baselines: the weights do not change the speed) on the same data files, then the
two versions predict in alternation, each in a fresh process, ``--rounds`` times; the best
time of each counts (the least disturbed by other work). Every figure is also given as a
fraction of the machine's float32 matmul limit measured in the same process.

Run: ``python benchmarks/bench_engine_versions.py --before c10db72``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def worker(tree: Path, work: Path, what: str, n: int) -> dict:
    """In this process: the code of ``tree``; train once (cached in ``work``), then time one prediction."""
    sys.path[:0] = [str(tree / "src"), str(tree / "benchmarks")]
    import torch

    from astroreg.config import load_recipe
    from astroreg.models import count_flops, matmul_gflops
    from astroreg.pipeline import predict, train_recipe

    work.mkdir(parents=True, exist_ok=True)
    quiet = {"training.epochs": 1, "evaluation.baselines": [], "evaluation.reference": None,
             "evaluation.compare_to": []}
    if what == "images":
        import bench_images as bench

        data = ROOT_DATA / "images.h5"
        recipe_name, shape = "galaxy-flux", (1, 1, 143, 143)
    else:
        import bench_spectra as bench

        data = ROOT_DATA / "spectra.h5"
        recipe_name, shape = "stellar-params", (1, 4000)
    if not data.exists():
        raise SystemExit(f"{data} is missing: run the script without --worker first")
    runs = work / f"runs-{what}"
    if not runs.exists():
        recipe = load_recipe(tree / "recipes" / f"{recipe_name}.yaml", {"dataset.path": str(data), **quiet})
        run = train_recipe(recipe, runs_root=runs, progress=False)
        if what == "spectra":
            bench.prepare_data(run, data, work / "prepared.h5", n)
    run = next(p for p in runs.iterdir() if p.is_dir() and not p.name.endswith(".partial"))
    source = work / "prepared.h5" if what == "spectra" else data
    net = _network(run)
    flops = count_flops(net, shape)
    gflops = matmul_gflops()
    predict(run, source, work / "warm.parquet", progress=False, overwrite=True)  # page cache, lazy imports
    out = work / "timed.parquet"
    if out.exists():
        out.unlink()
    t = time.perf_counter()
    predict(run, source, out, progress=False)
    seconds = time.perf_counter() - t
    n_objects = n if what == "spectra" else _count(source)
    rate = n_objects / seconds
    limit = gflops * 1e9 / flops
    return {"what": what, "objects": n_objects, "rate": rate, "limit": limit, "fraction": rate / limit,
            "gflops": gflops, "flops": flops, "threads": torch.get_num_threads()}


def _network(run: Path):
    from astroreg.pipeline import Run

    net = Run.open(run).load_network()
    inner = getattr(net, "inner", None)  # this tree's single-input adapter; the earlier one had none
    return inner if inner is not None else net


def _count(path: Path) -> int:
    import h5py

    with h5py.File(path, "r") as f:
        return len(f["ids"])


ROOT_DATA = Path(os.environ.get("ASTROREG_BENCH_DATA", "."))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", default="c10db72", help="the earlier commit (default: the last one before issue 10)")
    ap.add_argument("--images", type=int, default=4096, help="stamps to predict")
    ap.add_argument("--spectra", type=int, default=5000, help="native spectra to train on and prepare")
    ap.add_argument("--prepared", type=int, default=100000, help="prepared spectra to predict")
    ap.add_argument("--rounds", type=int, default=3, help="timed predictions per version and recipe")
    ap.add_argument("--no-docs", action="store_true", help="do not update docs/benchmarks.md")
    ap.add_argument("--worker", nargs=4, metavar=("TREE", "WORK", "WHAT", "N"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        tree, work, what, n = args.worker
        print(json.dumps(worker(Path(tree), Path(work), what, int(n))))
        return

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from _common import machine, update_section

    # A kill (SIGTERM) unwinds like Ctrl-C, so that the temporary worktree is removed again.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        before = tmp / "before"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(before), args.before],
                       check=True)
        try:
            rows = _measure(args, tmp, {"before": before, "after": ROOT})
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(before)], check=False)
    # One matmul rate for both versions: the best probe of the whole run (a probe during a
    # neighbour's job would otherwise make one version look closer to its limit).
    gflops = max(r["gflops"] for per in rows.values() for r in per.values())
    for per in rows.values():
        for r in per.values():
            r["limit"] = gflops * 1e9 / r["flops"]
            r["fraction"] = r["rate"] / r["limit"]
    lines = ["| recipe | path | before (objects/s) | after (objects/s) | after / before | before, of matmul limit "
             "| after, of matmul limit | after / before, medians | before, every round | after, every round |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |"]
    labels = {"images": ("galaxy-flux", f"`astroreg predict`, {args.images} stamps (HDF5 -> Parquet)"),
              "spectra": ("stellar-params", f"`astroreg predict`, {args.prepared} prepared spectra")}
    for what, (recipe, path) in labels.items():
        b, a = rows[what]["before"], rows[what]["after"]
        lines.append(f"| {recipe} | {path} | {b['rate']:,.0f} | {a['rate']:,.0f} | {a['rate'] / b['rate']:.3f} "
                     f"| {100 * b['fraction']:.1f}% | {100 * a['fraction']:.1f}% "
                     f"| {statistics.median(a['all']) / statistics.median(b['all']):.3f} "
                     f"| {', '.join(f'{r:,.0f}' for r in b['all'])} | {', '.join(f'{r:,.0f}' for r in a['all'])} |")
        print(f"{recipe}: before {b['rate']:,.0f}/s ({100 * b['fraction']:.1f}% of the limit), after "
              f"{a['rate']:,.0f}/s ({100 * a['fraction']:.1f}%): {a['rate'] / b['rate']:.3f}x")
    if args.no_docs:
        return
    body = (f"Machine: {machine()}. Float32 matmul rate {gflops:.1f} GFLOP/s (the best probe of the run; the "
            "fractions of both versions refer to it).\n\n"
            f"`python benchmarks/bench_engine_versions.py --before {args.before} "
            f"--images {args.images} --spectra {args.spectra} --prepared {args.prepared} --rounds {args.rounds}`: "
            "the prediction throughput of the two shipped recipes with this tree's engine (named inputs, modality "
            f"plug-ins; issue 10) and with commit {args.before} (before it), on the same data files and machine, "
            "the two versions alternating, each prediction in a fresh process, the best of "
            f"{args.rounds} per version (build of the prediction path included). Target: after / before >= 0.95.\n\n"
            + "\n".join(lines))
    update_section("Named inputs: prediction before and after (bench_engine_versions.py)", body)


def _measure(args, tmp: Path, trees: dict[str, Path]) -> dict:
    data = tmp / "data"
    data.mkdir()
    sys.path.insert(0, str(ROOT / "src"))
    import bench_images
    import bench_spectra

    bench_images.make_data(data / "images.h5", args.images)
    bench_spectra.make_data(data / "spectra.h5", args.spectra)
    env = {**os.environ, "ASTROREG_BENCH_DATA": str(data), "PYTHONPATH": ""}
    best: dict[str, dict[str, dict]] = {"images": {}, "spectra": {}}
    for _ in range(args.rounds):
        for what, n in (("images", args.images), ("spectra", args.prepared)):
            for label, tree in trees.items():
                done = subprocess.run([sys.executable, __file__, "--worker", str(tree), str(tmp / label / what),
                                       what, str(n)], check=True, capture_output=True, text=True, env=env)
                res = json.loads(done.stdout.strip().splitlines()[-1])
                old = best[what].get(label)
                if old is None or res["rate"] > old["rate"]:
                    best[what][label] = {**res, "all": (old or {}).get("all", [])}
                best[what][label]["all"].append(res["rate"])
                print(f"{what} {label}: {res['rate']:,.0f}/s ({100 * res['fraction']:.1f}% of the limit at "
                      f"{res['gflops']:.0f} GFLOP/s, {res['flops'] / 1e6:.3f} MFLOP/object)", flush=True)
    return best


if __name__ == "__main__":
    main()
