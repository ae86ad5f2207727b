"""Throughput of the galaxy-flux paper CNN on 143x143 images: training and prediction.

Measures, in one run on this machine:
- the machine's float32 matmul rate (its compute limit) and the network's FLOPs per image;
- a plain PyTorch eager build (in-memory tensors): prediction and training images/s;
- astroreg: training through the Lightning engine (``train_recipe``) and prediction through
  ``astroreg predict`` from the HDF5 dataset file to the Parquet output.

Prints the ratios and writes them to docs/benchmarks.md. Reference figures for a Keras build
of the same network on these 2-core machines (236 images/s predict, 109 images/s train at
batch 64) come from the issue that set the targets; TensorFlow is not installed here.

Usage: python benchmarks/bench_images.py [--n 8192] [--epochs 2]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, update_section  # noqa: E402

from astroreg.config import load_recipe  # noqa: E402
from astroreg.data import DatasetWriter, ImageSpec  # noqa: E402
from astroreg.models import count_flops, create_model, matmul_gflops  # noqa: E402
from astroreg.models._registry import unwrap_single  # noqa: E402
from astroreg.pipeline import predict, train_recipe  # noqa: E402

KERAS_PREDICT, KERAS_TRAIN = 236.0, 109.0
SIZE = 143
INPUT = "image"  # the input of recipes/galaxy-flux.yaml


def paper_cnn() -> torch.nn.Module:
    """The paper CNN as a plain tensor network (its single-input adapter taken off), as a PyTorch user builds it."""
    return unwrap_single(create_model("paper_cnn", input_shapes={INPUT: (1, SIZE, SIZE)}, n_outputs=1))[1]


def make_data(path: Path, n: int, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:SIZE, :SIZE] - SIZE // 2
    spec = ImageSpec(bands=("i",), height=SIZE, width=SIZE, pixel_scale=0.168)
    with DatasetWriter(path, images=spec, targets={"total_flux": "ADU"}, tabular={"bt": ""}) as w:
        for s in range(0, n, 512):
            m = min(512, n - s)
            flux, sig = rng.uniform(100, 3e4, m), rng.uniform(2, 10, m)
            img = flux[:, None, None] * np.exp(-(xx**2 + yy**2)[None] / (2 * sig[:, None, None] ** 2))
            img = img / (2 * np.pi * sig[:, None, None] ** 2) + rng.normal(0, 5, (m, SIZE, SIZE))
            w.append([str(s + i) for i in range(m)], images=img[:, None].astype("f4"),
                     targets={"total_flux": flux}, tabular={"bt": rng.uniform(0, 1, m)})
        w.make_splits({"train": 0.8, "val": 0.1, "test": 0.1}, seed=seed)
    return path


def eager_predict(n: int, batch: int = 256, repeats: int = 3) -> float:
    net = paper_cnn().eval()
    x = torch.randn(n, 1, SIZE, SIZE)
    best = 0.0
    with torch.inference_mode():
        net(x[:batch])
        for _ in range(repeats):
            t = time.perf_counter()
            for s in range(0, n, batch):
                net(x[s:s + batch])
            best = max(best, n / (time.perf_counter() - t))
    return best


def eager_train(n: int, batch: int = 64) -> float:
    torch.manual_seed(0)
    net = paper_cnn().train()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    x, y = torch.randn(n, 1, SIZE, SIZE), torch.randn(n, 1)
    for s in range(0, 4 * batch, batch):  # warm-up
        opt.zero_grad()
        torch.nn.functional.mse_loss(net(x[s:s + batch]), y[s:s + batch]).backward()
        opt.step()
    t = time.perf_counter()
    for s in range(0, n, batch):
        opt.zero_grad()
        torch.nn.functional.mse_loss(net(x[s:s + batch]), y[s:s + batch]).backward()
        opt.step()
    return n / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=8192, help="images in the benchmark dataset")
    ap.add_argument("--epochs", type=int, default=2, help="astroreg training epochs (the last one is timed)")
    ap.add_argument("--no-docs", action="store_true", help="do not update docs/benchmarks.md")
    args = ap.parse_args()

    gflops = matmul_gflops()
    net = paper_cnn()
    flops = count_flops(net, (1, 1, SIZE, SIZE))
    limit = gflops * 1e9 / flops
    print(f"machine: {machine()}")
    print(f"float32 matmul: {gflops:.1f} GFLOP/s; paper_cnn forward: {flops / 1e6:.1f} MFLOP/image "
          f"-> compute limit {limit:.0f} images/s")

    eager_p = eager_predict(min(args.n, 2048))
    eager_t = eager_train(min(args.n, 1024))
    print(f"plain PyTorch eager: predict {eager_p:.0f} images/s, train {eager_t:.0f} images/s (batch 64)")

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = make_data(tmp / "bench.h5", args.n)
        recipe = load_recipe("galaxy-flux", {"dataset.path": str(data), "training.epochs": args.epochs,
                                             "evaluation.baselines": [], "evaluation.reference": None})
        run = train_recipe(recipe, runs_root=tmp / "runs", progress=False)
        hist = pd.read_csv(run / "history.csv")
        astro_t = float(hist["train_objects_per_s"].iloc[-1])
        predict(run, data, tmp / "warm.parquet", progress=False, split="test", backend="eager")  # page cache
        astro_p = {}
        for backend in ("jit", "compile"):
            # Each call builds its prediction path from scratch: build time is included.
            t = time.perf_counter()
            predict(run, data, tmp / f"pred-{backend}.parquet", progress=False, backend=backend)
            astro_p[backend] = args.n / (time.perf_counter() - t)
            print(f"astroreg predict --backend {backend}: {astro_p[backend]:.0f} images/s")

    rows = [
        (f"predict, astroreg predict --backend {b} (HDF5 -> Parquet, {args.n} images, build included)", r,
         r / eager_p, r / KERAS_PREDICT, r / limit)
        for b, r in astro_p.items()
    ]
    rows += [
        ("predict, plain PyTorch eager (in memory)", eager_p, 1.0, eager_p / KERAS_PREDICT, eager_p / limit),
        ("train, astroreg train (Lightning, batch 64)", astro_t, astro_t / eager_t, astro_t / KERAS_TRAIN, None),
        ("train, plain PyTorch eager (batch 64)", eager_t, 1.0, eager_t / KERAS_TRAIN, None),
    ]
    lines = ["| path | images/s | vs eager | vs Keras figure | fraction of matmul limit |",
             "| --- | ---: | ---: | ---: | ---: |"]
    for name, rate, r_eager, r_keras, r_limit in rows:
        frac = "" if r_limit is None else f"{100 * r_limit:.1f}%"
        lines.append(f"| {name} | {rate:.0f} | {r_eager:.2f}x | {r_keras:.2f}x | {frac} |")
    table = "\n".join(lines)
    print(table)
    body = (
        f"Machine: {machine()}.\n\n"
        f"`python benchmarks/bench_images.py --n {args.n} --epochs {args.epochs}`: paper CNN on 1x143x143 stamps. "
        f"Float32 matmul rate {gflops:.1f} GFLOP/s; the forward pass costs {flops / 1e6:.1f} MFLOP/image, so the "
        f"compute limit is {limit:.0f} images/s. Keras figures for the same network on these 2-core machines "
        f"(quoted, not measured here): {KERAS_PREDICT:.0f} images/s predict, {KERAS_TRAIN:.0f} images/s train. "
        "Targets: predict >= 1.5x Keras, train >= 1x Keras.\n\n" + table
    )
    if not args.no_docs:
        print(f"wrote {update_section('Galaxy images: paper CNN throughput (bench_images.py)', body)}")


if __name__ == "__main__":
    main()
