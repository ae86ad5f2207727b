"""Throughput of paper 004's CNN (``pooled_cnn1d``) on Gaia XP spectra: predict and train.

Measures, in one run on this machine and on the same torch threads:
- the machine's float32 matmul rate (its compute limit: ``torch.mm`` of 2048 x 2048, the
  better of a probe at the start and one at the end) and the network's FLOPs per spectrum
  (66.7 MFLOP on the 186 kept BP/RP samples), so limit = rate / FLOPs;
- plain PyTorch eager forward passes of the same network in memory, on whole 4096-spectrum
  chunks (what prediction gave a 1-D CNN on spectra before it declared its
  ``inference_chunk``) and on 32-spectrum batches, and the predictor
  ``optimize_for_inference`` builds;
- ``astroreg predict`` (:func:`astroreg.pipeline.predict`, what the CLI calls) from the
  dataset file to the Parquet file, build included, on a run fitted here;
- training at batch 16 (Adamax, Huber, the recipe's): the engine (``fit_run``, the
  Lightning module, timed from the start of each training epoch to the start of its
  validation) against a plain PyTorch loop of the same network, written in ``torch.nn``
  layers only, with PyTorch's default optimiser settings, on the same inputs in memory.
  The plain loop runs in a Python process of its own, as a user's script does: the
  engine sets the C library's allocator thresholds in its process
  (:mod:`astroreg._allocator`), which a loop in the same process would share. A second
  worker runs the same plain loop with those thresholds set, to show what is the
  allocator's and what is the network's. One epoch of each worker runs right before each
  engine epoch (the workers wait while the others run), and the median ratio of the
  triples is the figure (the machine's speed drifts too much for separate runs to be
  compared). Minor page faults per step are counted for all three.

The data are the mock of ``astroreg simulate gaia-xp-galaxies`` (written here to a
temporary folder), read by ``recipes/gaia-xp-redshift.yaml`` (``grid: gaia-xp, resample:
false``). Prints the ratios and writes the "Gaia XP CNN (paper 004)" section of
docs/benchmarks.md.

Usage: python benchmarks/bench_gaia_xp.py [--n 4000] [--n-predict 20000] [--epochs 4] [--threads N] [--quick] [--no-docs]
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import lightning as L
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, update_section

from astroreg._allocator import keep_freed_memory
from astroreg._threads import default_threads
from astroreg.config import load_recipe
from astroreg.data import Dataset
from astroreg.modalities import RecipePreprocessor
from astroreg.models import (
    count_flops,
    create_model,
    matmul_gflops,
    optimize_for_inference,
    unwrap_single,
)
from astroreg.models._conv import Conv1d
from astroreg.models._pool import MaxPool1d
from astroreg.pipeline import fit_run, predict

SECTION = "Gaia XP CNN (paper 004)"
ENGINE = "astroreg"
PLAIN = "plain PyTorch, default allocator"
PLAIN_TUNED = "plain PyTorch, astroreg's allocator thresholds"
RECIPE = "gaia-xp-redshift"
N_SAMPLES = 186


class TrainTimer(L.Callback):
    """Seconds of each training epoch without its validation pass.

    Lightning 2 runs the end-of-epoch validation before ``on_train_epoch_end``, so the
    epoch is timed up to ``on_validation_epoch_start`` (or its end, without validation).
    """

    def __init__(self) -> None:
        self.times: list[float] = []
        self.faults: list[float] = []  # minor page faults per step
        self._t0: float | None = None
        self._f0 = 0

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._f0 = minor_faults()
        self._t0 = time.perf_counter()

    def _stop(self, trainer) -> None:
        if self._t0 is not None:
            self.times.append(time.perf_counter() - self._t0)
            self.faults.append((minor_faults() - self._f0) / max(1, trainer.num_training_batches))
            self._t0 = None

    def on_validation_epoch_start(self, trainer, pl_module) -> None:
        self._stop(trainer)  # only a training epoch has started the clock

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self._stop(trainer)


def simulate(path: Path, n: int, seed: int) -> Path:
    """The mock Gaia XP galaxies of ``astroreg simulate gaia-xp-galaxies``."""
    try:
        from astroreg.sim._gaiaxp_output import write_gaiaxp_dataset
    except ImportError as exc:  # the mock arrives with issue 12
        raise SystemExit(f"bench_gaia_xp needs `astroreg simulate gaia-xp-galaxies` ({exc})") from None
    return write_gaiaxp_dataset(n, path, seed=seed)


def forward_rate(fn, x: torch.Tensor, batch: int, repeats: int = 2) -> float:
    """Best spectra/s over ``repeats`` passes through ``x`` in batches (in memory)."""
    best = 0.0
    with torch.inference_mode():
        fn(x[:batch])
        for _ in range(repeats):
            t = time.perf_counter()
            for s in range(0, len(x), batch):
                fn(x[s:s + batch])
            best = max(best, len(x) / (time.perf_counter() - t))
    return best


def torch_nn_only(net: torch.nn.Module) -> torch.nn.Module:
    """``net`` as plain PyTorch writes it: ``torch.nn.MaxPool1d`` and ``torch.nn.Conv1d`` (same
    weights) for astroreg's faster-gradient pooling and one-channel convolution, and the activation
    before the pooling (Keras' order) where astroreg pools first."""
    for m in list(net.modules()):
        if not isinstance(m, torch.nn.Sequential):
            continue
        layers = list(m)
        for i, layer in enumerate(layers):
            if isinstance(layer, Conv1d):
                plain = torch.nn.Conv1d(layer.in_channels, layer.out_channels, layer.kernel_size, padding=layer.padding,
                                        bias=layer.bias is not None)
                plain.load_state_dict(layer.state_dict())
                layers[i] = plain
            elif isinstance(layer, MaxPool1d):
                layers[i] = torch.nn.MaxPool1d(layer.kernel_size, layer.stride)
                if i + 1 < len(layers) and isinstance(layers[i + 1], torch.nn.ReLU):
                    layers[i], layers[i + 1] = layers[i + 1], layers[i]
        for i, layer in enumerate(layers):
            m[i] = layer
    return net


class PlainLoop:
    """A plain PyTorch training loop: the recipe's network (in ``torch.nn`` layers only),
    optimiser (PyTorch's default settings), loss and batch size, on inputs in memory."""

    def __init__(self, recipe, x: torch.Tensor, y: torch.Tensor) -> None:
        tr = recipe.training
        torch.manual_seed(0)
        self.net = torch_nn_only(unwrap_single(create_model(
            recipe.model.name, input_shapes={"xp": tuple(x.shape[1:])}, n_outputs=y.shape[1],
            **recipe.model.params))[1]).train()
        assert not any(isinstance(m, (MaxPool1d, Conv1d)) for m in self.net.modules())
        self.opt = torch.optim.Adamax(self.net.parameters(), lr=tr.optimizer.lr)
        self.x, self.y, self.batch, self.delta = x, y, tr.batch_size, tr.huber_delta

    def epoch(self) -> tuple[float, float]:
        """Spectra/s of one epoch, and minor page faults per step."""
        perm = torch.randperm(len(self.x))
        faults = minor_faults()
        t = time.perf_counter()
        for s in range(0, len(self.x), self.batch):
            idx = perm[s:s + self.batch]
            self.opt.zero_grad(set_to_none=True)
            torch.nn.functional.huber_loss(self.net(self.x[idx]), self.y[idx], delta=self.delta).backward()
            self.opt.step()
        rate = len(self.x) / (time.perf_counter() - t)
        return rate, (minor_faults() - faults) / -(-len(self.x) // self.batch)


def minor_faults() -> int:
    """Minor page faults of this process so far."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def plain_worker(folder: Path, threads: int, tuned: bool) -> None:
    """Serve epochs of a :class:`PlainLoop` over the inputs saved in ``folder``: one line per request."""
    torch.set_num_threads(threads)
    if tuned and not keep_freed_memory():
        raise SystemExit("the allocator thresholds cannot be set here (astroreg._allocator.why_not_tuned)")
    recipe = load_recipe(RECIPE)
    x = torch.from_numpy(np.load(folder / "x.npy", allow_pickle=False))
    y = torch.from_numpy(np.load(folder / "y.npy", allow_pickle=False))
    loop = PlainLoop(recipe, x, y)
    print("ready", flush=True)
    for line in sys.stdin:
        if line.strip() != "epoch":
            break
        rate, faults = loop.epoch()
        print(f"{rate} {faults}", flush=True)


class PlainWorker:
    """A :func:`plain_worker` in its own Python process, and so with its own allocator state."""

    def __init__(self, folder: Path, threads: int, *, tuned: bool) -> None:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--plain-worker", str(folder), "--threads", str(threads)]
        self.proc = subprocess.Popen(cmd + (["--tuned"] if tuned else []), stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        if self.proc.stdout.readline().strip() != "ready":
            self.close()
            raise RuntimeError(f"the plain-loop worker did not start: {' '.join(cmd)}")

    def epoch(self) -> tuple[float, float]:
        """Spectra/s and page faults per step of one epoch in the worker."""
        self.proc.stdin.write("epoch\n")
        self.proc.stdin.flush()
        rate, faults = self.proc.stdout.readline().split()
        return float(rate), float(faults)

    def close(self) -> None:
        """End the worker (it leaves no process behind)."""
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()


class Interleave(L.Callback):
    """Runs one epoch of each plain-loop worker before each engine epoch starts its clock.

    The machine's speed drifts by tens of per cent over a minute on a shared 2-core
    machine; epochs run back to back see the same machine.
    """

    def __init__(self, workers: dict[str, PlainWorker]) -> None:
        self.workers = workers
        self.rates: dict[str, list[float]] = {name: [] for name in workers}
        self.faults: dict[str, list[float]] = {name: [] for name in workers}

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        for name, worker in self.workers.items():
            rate, faults = worker.epoch()
            self.rates[name].append(rate)
            self.faults[name].append(faults)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=4000, help="mock galaxies to train on (63%% of them in the training split)")
    ap.add_argument("--n-predict", type=int, default=20000, help="mock galaxies in the dataset that predict reads")
    ap.add_argument("--epochs", type=int, default=4, help="pairs of training epochs (engine and plain loop)")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch threads for everything (default: the cores other work leaves free)")
    ap.add_argument("--quick", action="store_true", help="small sizes, for a smoke run (n 600, n-predict 2000, 1 epoch)")
    ap.add_argument("--no-docs", action="store_true", help="do not update docs/benchmarks.md")
    ap.add_argument("--plain-worker", type=Path, help=argparse.SUPPRESS)  # a PlainWorker's process
    ap.add_argument("--tuned", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.plain_worker is not None:
        plain_worker(args.plain_worker, args.threads or 1, args.tuned)
        return
    if args.quick:
        args.n, args.n_predict, args.epochs = min(args.n, 600), min(args.n_predict, 2000), 1
    threads = args.threads or default_threads()
    torch.set_num_threads(threads)

    recipe0 = load_recipe(RECIPE)
    net = unwrap_single(create_model(recipe0.model.name, input_shapes={"xp": (N_SAMPLES,)}, n_outputs=1,
                                     **recipe0.model.params))[1].eval()
    n_params = sum(p.numel() for p in net.parameters() if p.requires_grad)
    flops = count_flops(net, (1, N_SAMPLES))
    gflops_start = matmul_gflops()
    limit = gflops_start * 1e9 / flops
    print(f"machine: {machine()}")
    print(f"float32 matmul ({threads} threads): {gflops_start:.1f} GFLOP/s; {recipe0.model.name} ({n_params:,} "
          f"parameters): {flops / 1e6:.2f} MFLOP/spectrum -> compute limit {limit:,.0f} spectra/s")

    x_mem = torch.rand(1024 if args.quick else 4096, N_SAMPLES)
    fwd = {"plain PyTorch eager, whole 4096-spectrum chunks (the path before inference_chunk)":
           forward_rate(net, x_mem, 4096),
           "plain PyTorch eager, batches of 32": forward_rate(net, x_mem, 32)}
    fast = optimize_for_inference(net, x_mem[:1024])
    fwd[f"optimize_for_inference ({fast.backend}, chunks of {fast.batch_size}), calls of 4096"] = \
        forward_rate(fast, x_mem, 4096)
    for name, r in fwd.items():
        print(f"forward only, {name}: {r:,.0f} spectra/s = {100 * r / limit:.1f}% of the limit")

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t = time.perf_counter()
        data = simulate(tmp / "train.h5", args.n, seed=0)
        pred_data = simulate(tmp / "predict.h5", args.n_predict, seed=1)
        print(f"simulated {args.n} + {args.n_predict} galaxies in {time.perf_counter() - t:.0f} s")
        recipe = load_recipe(RECIPE, {"dataset.path": str(data), "training.epochs": args.epochs,
                                      "training.threads": threads, "evaluation.baselines": [],
                                      "evaluation.reference": None})
        timer = TrainTimer()
        run_dir = tmp / "run"
        with Dataset(data) as ds:
            splits = {k: ds.split(k) for k in ("train", "val", "test")}
            rows = splits["train"]
            # The plain loop's inputs: the same spectra, preprocessed as the recipe does.
            pre = RecipePreprocessor.fit(recipe, ds, rows)
            x_tr = torch.from_numpy(pre.inputs["xp"].transform(ds, rows))
            y_tr = torch.from_numpy(pre.scale_targets(np.stack(
                [ds.target(t.source, rows) for t in recipe.targets], axis=1)).astype(np.float32))
            np.save(tmp / "x.npy", x_tr.numpy())
            np.save(tmp / "y.npy", y_tr.numpy())
            # Engine and plain loops alternate, epoch by epoch (the plain ones first, each time).
            workers = {}
            try:
                for name, tuned in ((PLAIN, False), (PLAIN_TUNED, True)):
                    workers[name] = PlainWorker(tmp, threads, tuned=tuned)
                plain = Interleave(workers)
                torch.set_num_threads(threads)
                fit_run(recipe, ds, splits, run_dir, progress=False, callbacks=[plain, timer])
            finally:
                for worker in workers.values():
                    worker.close()
            torch.set_num_threads(threads)
        n_train = len(rows)
        astro = [n_train / s for s in timer.times]
        ratios = {name: sorted(a / p for a, p in zip(astro, rates)) for name, rates in plain.rates.items()}
        ratio = {name: float(np.median(r)) for name, r in ratios.items()}
        faults = {ENGINE: float(np.median(timer.faults))} | {
            name: float(np.median(f)) for name, f in plain.faults.items()}
        best = {ENGINE: max(astro)} | {name: max(rates) for name, rates in plain.rates.items()}
        for name, r in ratios.items():
            print(f"train, batch {recipe.training.batch_size}, {len(r)} epochs each: astroreg / {name}: per epoch "
                  f"{', '.join(f'{v:.2f}' for v in r)} -> median {ratio[name]:.2f}x")
        for name in best:
            print(f"  {name}: best epoch {best[name]:,.0f} spectra/s, median {faults[name]:,.0f} minor page "
                  "faults a step")

        predict(run_dir, data, tmp / "warm.parquet", progress=False, split="test")  # page cache, lazy imports
        torch.set_num_threads(threads)
        t = time.perf_counter()
        predict(run_dir, pred_data, tmp / "pred.parquet", progress=False)
        pred_rate = args.n_predict / (time.perf_counter() - t)
        torch.set_num_threads(threads)
        t = time.perf_counter()
        predict(run_dir, pred_data, tmp / "pred-noflags.parquet", progress=False, domain_flags=False)
        noflags_rate = args.n_predict / (time.perf_counter() - t)

    torch.set_num_threads(threads)
    gflops = max(gflops_start, matmul_gflops())
    limit = gflops * 1e9 / flops
    print(f"float32 matmul: {gflops_start:.1f} GFLOP/s at the start, {gflops:.1f} the better of start and end "
          f"-> compute limit {limit:,.0f} spectra/s")
    print(f"astroreg predict (HDF5 -> Parquet, {args.n_predict} spectra, build included): {pred_rate:,.0f} "
          f"spectra/s = {100 * pred_rate / limit:.1f}% of the limit; without the in_domain checks "
          f"{noflags_rate:,.0f} = {100 * noflags_rate / limit:.1f}%")
    lines = ["| path | spectra/s | fraction of matmul limit |", "| --- | ---: | ---: |",
             (f"| **`astroreg predict`** (HDF5 -> Parquet, {args.n_predict:,} mock spectra, build included) | "
              f"**{pred_rate:,.0f}** | **{100 * pred_rate / limit:.1f}%** |"),
             f"| `astroreg predict --no-domain-flags` | {noflags_rate:,.0f} | {100 * noflags_rate / limit:.1f}% |"]
    lines += [f"| forward only, {name} (in memory) | {r:,.0f} | {100 * r / limit:.1f}% |" for name, r in fwd.items()]
    table = "\n".join(lines)
    n_epochs = len(ratios[PLAIN])
    train_line = (
        f"Training at batch {recipe.training.batch_size} (Adamax lr {recipe.training.optimizer.lr:g}, Huber) over "
        f"the {n_train:,} training spectra, validation not timed. {n_epochs} epochs of astroreg (`fit_run`, "
        "Lightning engine), each run right after one epoch of each of two plain PyTorch loops of the same network "
        "in `torch.nn` layers, on the same inputs in memory, each loop in a Python process of its own: one with "
        "the C library's default allocator settings, as a user's script runs, and one with the thresholds "
        "astroreg sets (`astroreg._allocator`). Ratio of astroreg's spectra/s to the loop's, per epoch and "
        "median:\n\n| against | median | per epoch | best epoch, spectra/s | minor page faults a step |\n"
        "| --- | ---: | --- | ---: | ---: |\n"
        + "\n".join(f"| {name} | **{ratio[name]:.2f}x** | {', '.join(f'{v:.2f}' for v in ratios[name])} | "
                    f"{best[name]:,.0f} | {faults[name]:,.0f} |" for name in ratios)
        + f"\n| ({ENGINE} itself) | | | {best[ENGINE]:,.0f} | {faults[ENGINE]:,.0f} |"
    )
    print(table)
    print(train_line)
    quick = " --quick" if args.quick else ""
    body = (
        f"Machine: {machine()}.\n\n"
        f"`python benchmarks/bench_gaia_xp.py --n {args.n} --n-predict {args.n_predict} --epochs {args.epochs} "
        f"--threads {threads}{quick}`: `{recipe0.model.name}` of `recipes/gaia-xp-redshift.yaml` "
        f"({n_params:,} parameters, 186-sample input), {threads} torch thread(s) throughout. Float32 matmul rate "
        f"{gflops:.1f} GFLOP/s; the forward pass costs {flops / 1e6:.2f} MFLOP/spectrum, so the compute limit is "
        f"{limit:,.0f} spectra/s. Targets: `astroreg predict` >= 60% of it, training at batch 16 at least as fast "
        "as plain PyTorch (quoted for 2 cores, not measured here: a Keras build predicts ~1,300 spectra/s and "
        "trains 150-310/s; plain PyTorch eager 1,038 and 305). Data: `astroreg simulate gaia-xp-galaxies`. "
        "Other jobs on a 2-core machine change every figure by 2-10x: compare numbers only within one quiet "
        "run.\n\n" + table + "\n\n" + train_line
    )
    if not args.no_docs:
        print(f"wrote {update_section(SECTION, body)}")


if __name__ == "__main__":
    main()
