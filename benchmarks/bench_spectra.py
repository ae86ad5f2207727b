"""Throughput of the spectra path of paper 001 (stellar parameters): predict, ingest, train.

Measures, in one run on this machine:
- the machine's float32 matmul rate (its compute limit) and the paper model's FLOPs per
  spectrum (``residual_mlp`` with the parameters of ``recipes/stellar-params.yaml``);
- prediction through ``astroreg predict`` (:func:`astroreg.pipeline.predict`, what the CLI
  calls) from the HDF5 dataset to the Parquet file, as a fraction of that limit, and the
  time of each stage of it (HDF5 read, spectrum preprocessing, forward pass, Parquet write)
  measured on its own, for two datasets of the same spectra: native (SDSS pixels, resampled
  and shifted at every prediction) and prepared (resampled onto the recipe's grid in the
  rest frame once, as ``astroreg ingest sdss-spectra --grid ... --rest-frame RV_ADOP``
  stores them; prediction only reads the flux and standardises: the headline for the 50%
  target); the prepared run once more through the ``astroreg predict`` command in a fresh
  process; plain PyTorch forward passes of the same network in memory;
- training objects/s of one epoch through the engine (``train_recipe``, history.csv) and
  of a plain PyTorch loop of the same network, loss and optimiser on in-memory tensors;
- ingest spectra/s (``ingest_sdss_spectra``, FITS files to the dataset) with 1 and 2
  worker processes, on copies of the real SDSS files in ``../shared/data/sdss/spectra``
  under new names (skipped when that folder is absent).

The predict/train data are synthetic SDSS-like spectra on a native 3851-pixel loglam grid
(padding, ivar = 0 pixels, bad mask bits, RVs of +-300 km/s), so nothing external is needed.
Prints the ratios and writes the "Spectra (paper 001)" section of docs/benchmarks.md.

Usage: python benchmarks/bench_spectra.py [--n 20000] [--n-prepared 100000] [--ingest-files 600] [--quick] [--no-docs]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, update_section  # noqa: E402

from astroreg.config import load_recipe  # noqa: E402
from astroreg.data import Dataset, DatasetWriter, SpectraSpec, write_prepared_attrs  # noqa: E402
from astroreg.ingest import PADDING_MASK, SDSS_BAD_PIXEL_BITS  # noqa: E402
from astroreg.models import count_flops, create_model, matmul_gflops  # noqa: E402
from astroreg.models._fast import _row_sumsq, fold_standardization, optimize_for_inference  # noqa: E402
from astroreg.models._registry import unwrap_single  # noqa: E402
from astroreg.pipeline import predict, train_recipe  # noqa: E402
from astroreg.pipeline._predict import iter_predictions  # noqa: E402
from astroreg.pipeline._run import Run  # noqa: E402
from astroreg.preprocess._spectra import parse_grid, standardize_rows_  # noqa: E402
from astroreg.training._infer import as_tensor  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "stellar-params.yaml"
SHARED_SPECTRA = ROOT.parent / "shared" / "data" / "sdss" / "spectra"
SECTION = "Spectra (paper 001)"

NATIVE = (3.5800, 3.9650)  # native SDSS-like loglam range, step 1e-4: 3851 pixels
TARGETS = {"TEFF_ADOP": "K", "FEH_ADOP": "dex", "LOGG_ADOP": "dex", "RV_ADOP": "km/s"}


def make_data(path: Path, n: int, seed: int = 0, chunk: int = 1024) -> Path:
    """Synthetic SDSS-like spectra on one native loglam grid (step 1e-4), with labels and RVs.

    Each spectrum covers a random stretch of the grid (padding outside, mask PADDING_MASK),
    has ~0.5% pixels with ivar = 0, ~0.3% with a bad mask bit (FULLREJECT) and ~1% with a
    harmless bit (BRIGHTSKY); the flux is a Planck-like continuum with Gaussian absorption
    lines whose depths follow the labels, plus noise consistent with ivar.
    """
    rng = np.random.default_rng(seed)
    loglam = np.round(np.arange(round(NATIVE[0] / 1e-4), round(NATIVE[1] / 1e-4) + 1) * 1e-4, 4)
    lam = 10.0 ** loglam
    lines = rng.uniform(lam[0], lam[-1], 30)
    spec = SpectraSpec(n_pixels=lam.size, wavelength=tuple(lam), with_ivar=True, with_mask=True,
                       mask_dtype="uint32", mask_bad_bits=SDSS_BAD_PIXEL_BITS, mask_bits="SDSS spPixMask (and_mask)")
    with DatasetWriter(path, targets=TARGETS, spectra=spec, tabular={"SN_MEDIAN_ALL": ""}) as w:
        for s in range(0, n, chunk):
            m = min(chunk, n - s)
            teff, feh = rng.uniform(4000, 9500, m), rng.uniform(-2.5, 0.5, m)
            logg, rv = rng.uniform(0.5, 5.0, m), rng.uniform(-300, 300, m)
            snr = rng.uniform(5, 60, m)
            x = 1.4388e8 / (lam[None] * teff[:, None])           # hc / (lambda k T), lambda in Angstrom
            cont = 1.0 / (lam[None] ** 5 * np.expm1(x)) * 1e22
            depth = (0.3 * 10 ** (0.5 * feh) * (5000 / teff)).astype("f4")[:, None, None]
            width = (1.0 + 0.3 * logg).astype("f4")[:, None, None]
            shifted = (lines[None, :, None] * (1 + rv[:, None, None] / 299792.458)).astype("f4")
            absorb = (depth * np.exp(-0.5 * ((lam[None, None].astype("f4") - shifted) / width) ** 2)).sum(axis=1)
            flux = cont * (1 - np.clip(absorb, 0, 0.9))
            sigma = np.abs(flux).mean(axis=1, keepdims=True) / snr[:, None]
            ivar = np.broadcast_to(1.0 / sigma**2, flux.shape).copy()
            flux = flux + rng.standard_normal(flux.shape) * sigma
            mask = np.zeros(flux.shape, np.uint32)
            mask[rng.random(flux.shape) < 0.01] |= 1 << 23                 # BRIGHTSKY: data still good
            mask[rng.random(flux.shape) < 0.003] |= 1 << 18                # FULLREJECT: bad
            ivar[rng.random(flux.shape) < 0.005] = 0.0
            lo, hi = rng.integers(0, 80, m), lam.size - rng.integers(0, 80, m)
            pad = (np.arange(lam.size)[None] < lo[:, None]) | (np.arange(lam.size)[None] >= hi[:, None])
            flux[pad], ivar[pad], mask[pad] = 0.0, 0.0, PADDING_MASK
            w.append([f"s{s + i}" for i in range(m)],
                     spectra={"flux": flux.astype("f4"), "ivar": ivar.astype("f4"), "mask": mask},
                     targets={"TEFF_ADOP": teff, "FEH_ADOP": feh, "LOGG_ADOP": logg, "RV_ADOP": rv},
                     tabular={"SN_MEDIAN_ALL": snr})
        w.make_splits({"train": 0.6, "val": 0.1, "test": 0.3}, seed=seed)
    return path


def spectra_input(recipe) -> tuple[str, object]:
    """The name and settings of the recipe's one input (``flux``, kind ``spectra``)."""
    (name, settings), = recipe.inputs.items()
    return name, settings


def n_pixels(recipe) -> int:
    """Pixels of the recipe's wavelength grid: the network's input width."""
    return parse_grid(spectra_input(recipe)[1].grid).n_pixels


def paper_model(recipe) -> torch.nn.Module:
    """The recipe's network as a plain tensor network (its single-input adapter taken off)."""
    name, settings = spectra_input(recipe)
    net = create_model(recipe.model.name, input_shapes={name: (n_pixels(recipe),)},
                       input_kinds={name: settings.kind}, n_outputs=len(recipe.targets), **recipe.model.params)
    return unwrap_single(net)[1]


def network(run: Run) -> torch.nn.Module:
    """The run's trained network as a plain tensor network, as ``astroreg predict`` runs a single-input one."""
    return unwrap_single(run.load_network())[1]


def forward_rate(fn, x: torch.Tensor, batch: int, repeats: int = 3) -> float:
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


def plain_train_rate(recipe, x: torch.Tensor, y: torch.Tensor, batch: int = 256) -> float:
    """Objects/s of one epoch of a plain loop: AdamW, Huber loss, the paper model, in-memory tensors."""
    torch.manual_seed(0)
    net = paper_model(recipe).train()
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=0.01)
    perm = torch.randperm(len(x))

    def step(idx):
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.huber_loss(net(x[idx]), y[idx]).backward()
        opt.step()

    for s in range(0, 4 * batch, batch):  # warm-up
        step(perm[s:s + batch])
    t = time.perf_counter()
    for s in range(0, len(x), batch):
        step(perm[s:s + batch])
    return len(x) / (time.perf_counter() - t)


def prepare_data(run_dir: Path, data: Path, out: Path, n_out: int, chunk: int = 1024) -> Path:
    """The spectra of ``data`` as ``astroreg ingest sdss-spectra --grid ... --rest-frame RV_ADOP`` stores them.

    Each native spectrum is resampled onto the run's grid in the rest frame by the run's own
    :class:`~astroreg.preprocess.SpectrumResampler` (the code ingest runs, on the same native
    pixels), with the propagated ivar; the ``/spectra`` attributes say so, as ingest writes
    them (:func:`~astroreg.data.write_prepared_attrs`). To reach ``n_out`` rows cheaply the
    prepared spectra are repeated (new ids). The mask is 0 (prediction does not read it).
    """
    inp = Run.open(run_dir).load_preprocessor().single
    res, settings = inp.spectra, inp.settings
    n_pix = res.wavelength_grid_.n_pixels
    with Dataset(data) as ds:
        n = len(ds)
        rv = ds.target(settings.rest_frame_column)
        labels = {t: ds.target(t) for t in TARGETS}
        flux_p = np.empty((n, n_pix), np.float32)
        ivar_p = np.empty_like(flux_p)
        loglam = np.log10(ds.spectra["wavelength"][...])
        for s in range(0, n, chunk):
            a = ds.read_spectra(slice(s, s + chunk), keys=("flux", "ivar", "mask"))
            flux_p[s:s + chunk], ivar_p[s:s + chunk] = res.transform(
                a["flux"], loglam=loglam, ivar=a["ivar"], mask=a["mask"], rv_kms=rv[s:s + chunk],
                return_ivar=True)
    # Ingest skips spectra below --min-good-fraction (0.5) on the grid and records it; so do we.
    coverage = (ivar_p > 0).mean(axis=1)
    if coverage.min() < 0.5:
        raise RuntimeError(f"{int((coverage < 0.5).sum())} synthetic spectra cover under half the grid")
    attrs = {}
    write_prepared_attrs(attrs, grid=res.wavelength_grid_, rest_frame=settings.rest_frame_column,
                         redshift_fallback=settings.redshift_column if settings.missing_rv == "redshift" else None,
                         bad_pixels=res.bad_pixels, bad_mask_bits=res.bad_mask_bits, min_good_fraction=0.5,
                         prepared_by="astroreg.preprocess.SpectrumResampler")
    spec = SpectraSpec(n_pixels=n_pix, wavelength=tuple(res.wavelength_), with_ivar=True, with_mask=True,
                       mask_dtype="uint32", mask_bad_bits=SDSS_BAD_PIXEL_BITS, attrs=attrs,
                       mask_bits="SDSS spPixMask bits of and_mask (nearest native pixel)")
    zeros = np.zeros((chunk, n_pix), np.uint32)
    with DatasetWriter(out, targets=TARGETS, spectra=spec) as w:
        for s in range(0, n_out, chunk):
            m = min(chunk, n_out - s)
            src = np.arange(s, s + m) % n
            w.append([f"p{s + i}" for i in range(m)],
                     spectra={"flux": flux_p[src], "ivar": ivar_p[src], "mask": zeros[:m]},
                     targets={t: v[src] for t, v in labels.items()})
    return out


def predict_stages(run_dir: Path, data: Path, out: Path, chunk: int = 4096) -> dict[str, float]:
    """Seconds spent in each stage of prediction, each measured on its own over the whole file.

    Native spectra: read = the HDF5 arrays the preprocessor reads (flux, ivar, mask, the
    RVs), preprocess = resampling in the rest frame and standardising. Prepared spectra:
    read = the flux alone, as predict reads it (mapped from the file where the writer laid
    out the chunk's rows back to back, :meth:`~astroreg.data.Dataset.row_view`, else
    copied into one reused buffer; ``mapped`` counts the chunks mapped); predict folds the
    per-spectrum standardisation into the network's first layer
    (:func:`~astroreg.models._fast.fold_standardization`), so preprocess = what is left of
    it, the row sums and norms of the raw flux (timed alone, ``fold stats``), and forward =
    the network; ``forward folded`` times the folded network on the raw flux as predict
    runs it (about forward + fold stats), and ``standardise (unfolded)`` the in-place
    standardisation that the fold saves (for reference; not part of the sum).
    """
    run = Run.open(run_dir)
    inp = run.load_preprocessor().single
    rest_frame = inp.settings.rest_frame_column
    times = dict.fromkeys(("read", "preprocess", "forward", "write"), 0.0)
    folded = None
    with Dataset(data) as ds:
        n = len(ds)
        g = ds.spectra
        if inp.prepared(ds):
            buf = np.empty((chunk, g["flux"].shape[1]), np.float32)
            times["standardise (unfolded)"] = 0.0
            mapped = 0
            for s in range(0, n, chunk):
                m = min(chunk, n - s)
                t = time.perf_counter()
                xr = inp.prepared_inputs(ds, slice(s, s + m), out=buf, standardize=False)
                times["read"] += time.perf_counter() - t
                mapped += not np.shares_memory(xr, buf)
                xb = as_tensor(xr)  # as predict wraps a read-only mapped chunk
                t = time.perf_counter()
                xb.sum(dim=1).double(), _row_sumsq(xb)  # the row statistics StandardizedLinear computes
                times["preprocess"] += time.perf_counter() - t
                copy = np.array(xr)
                t = time.perf_counter()
                standardize_rows_(copy)
                times["standardise (unfolded)"] += time.perf_counter() - t
            print(f"prepared read: {mapped} of {-(-n // chunk)} chunks of {chunk} mapped from the file")
            x = inp.transform(ds, slice(0, min(chunk, n)))
            x_raw = ds.read_spectra(slice(0, min(chunk, n)), keys=("flux",))["flux"]
            folded = fold_standardization(network(run).eval(), standardize_rows_)
        else:
            keys = ["flux", "wavelength"] + [k for k in ("ivar", "mask") if k in g]
            for s in range(0, n, chunk):
                sel = slice(s, min(s + chunk, n))
                t = time.perf_counter()
                ds.read_spectra(sel, keys=keys)
                ds.target(rest_frame, np.arange(sel.start, sel.stop)) if rest_frame else None
                times["read"] += time.perf_counter() - t
                t = time.perf_counter()
                x = inp.transform(ds, sel)  # read + preprocess
                times["preprocess"] += time.perf_counter() - t
            times["preprocess"] = max(times["preprocess"] - times["read"], 0.0)
        times["forward"] = _forward_seconds(network(run).eval(), x, n)
        if folded is not None:
            times["forward folded"] = _forward_seconds(folded, x_raw, n)
        frame = next(iter_predictions(run, ds, np.arange(min(chunk, n)), chunk_size=chunk, progress=False))
    table = pa.Table.from_pandas(frame, preserve_index=False)
    t = time.perf_counter()
    with pq.ParquetWriter(out, table.schema) as w:
        for s in range(0, n, len(frame)):
            w.write_table(table.slice(0, min(len(frame), n - s)))
    times["write"] = time.perf_counter() - t
    return times


def _forward_seconds(network, x: np.ndarray, n: int) -> float:
    """Seconds for ``n`` forward passes of the rows of ``x`` (one chunk, repeated), through optimize_for_inference."""
    net = optimize_for_inference(network, torch.from_numpy(x[:256]), batch_size=None)
    xt = torch.from_numpy(np.ascontiguousarray(x))
    net(xt)  # warm-up
    t = time.perf_counter()
    done = 0
    while done < n:
        with torch.inference_mode():
            net(xt[:min(len(xt), n - done)])
        done += min(len(xt), n - done)
    return time.perf_counter() - t


def make_ingest_files(folder: Path, n_files: int) -> tuple[Path, Path] | None:
    """``n_files`` copies of the real SDSS files under new names, and a label CSV joined on the file name."""
    sources = sorted(p for p in SHARED_SPECTRA.glob("spec-*.fits")) if SHARED_SPECTRA.is_dir() else []
    if not sources:
        return None
    spectra = folder / "spectra"
    spectra.mkdir(parents=True)
    rng = np.random.default_rng(1)
    names = []
    for i in range(n_files):
        name = f"spec-{9000 + i // 1000:04d}-{60000 + i % 7:05d}-{i % 1000 + 1:04d}.fits"
        shutil.copyfile(sources[i % len(sources)], spectra / name)
        names.append(name)
    labels = pd.DataFrame({
        "SPEC_FILE": names, "TEFF_ADOP": rng.uniform(4000, 9500, n_files),
        "FEH_ADOP": rng.uniform(-2.5, 0.5, n_files), "LOGG_ADOP": rng.uniform(0.5, 5, n_files),
        "RV_ADOP": rng.uniform(-300, 300, n_files),
    })
    labels.to_csv(folder / "labels.csv", index=False)
    return spectra, folder / "labels.csv"


def ingest_rate(spectra: Path, labels: Path, out: Path, n_jobs: int) -> float:
    """Files/s of ``ingest_sdss_spectra`` in a fresh interpreter (imports not timed).

    A fresh process, as ``astroreg ingest`` runs: here, earlier progress bars leave tqdm's
    monitor thread behind, and the ingest then avoids ``fork`` for its workers.
    """
    n = sum(1 for _ in spectra.glob("*.fits"))
    code = (
        "import time, warnings\n"
        "from astroreg.ingest import ingest_sdss_spectra\n"
        "warnings.simplefilter('ignore')\n"
        "t = time.perf_counter()\n"
        f"r = ingest_sdss_spectra({str(spectra)!r}, {str(labels)!r}, {str(out)!r}, id_column='SPEC_FILE', "
        f"n_jobs={n_jobs}, progress=False)\n"
        "print(r.n_ok, time.perf_counter() - t)\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if res.returncode:
        raise RuntimeError(f"ingest with {n_jobs} process(es) failed:\n{res.stderr[-3000:]}")
    n_ok, dt = res.stdout.split()[-2:]
    if int(n_ok) != n:
        raise RuntimeError(f"ingest kept {n_ok} of {n} files")
    return n / float(dt)


def _print_stages(stages: dict[str, float], n: int, limit: float) -> None:
    for stage, sec in stages.items():
        r = n / sec if sec > 0 else float("inf")
        print(f"  stage {stage:<22} {1e6 * sec / n:8.1f} us/spectrum  {r:>12,.0f} spectra/s "
              f"= {100 * r / limit:6.1f}% of the limit")


def _stage_rows(stages: dict[str, float], n: int, limit: float, what: str) -> list[str]:
    rows = []
    for stage, sec in stages.items():
        r = n / sec if sec > 0 else float("inf")
        rows.append(f"| {what} stage alone: {stage} ({1e6 * sec / n:.1f} us/spectrum) | {r:,.0f} | "
                    f"{100 * r / limit:.1f}% |")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20000, help="spectra in the synthetic dataset (predict and train)")
    ap.add_argument("--n-prepared", type=int, default=100000,
                    help="spectra in the prepared dataset (the --n spectra resampled once, repeated; 48 kB each "
                         "on disk with ivar and mask)")
    ap.add_argument("--ingest-files", type=int, default=600, help="FITS files for the ingest benchmark")
    ap.add_argument("--quick", action="store_true",
                    help="small sizes, for development (n 3000, n-prepared 10000, 150 files)")
    ap.add_argument("--no-docs", action="store_true", help="do not update docs/benchmarks.md")
    args = ap.parse_args()
    if args.quick:
        args.n, args.ingest_files = min(args.n, 3000), min(args.ingest_files, 150)
        args.n_prepared = min(args.n_prepared, 10000)

    recipe0 = load_recipe(RECIPE)
    net = paper_model(recipe0).eval()
    n_params = sum(p.numel() for p in net.parameters() if p.requires_grad)
    n_pix = n_pixels(recipe0)
    flops = count_flops(net, (1, n_pix))
    gflops_start = matmul_gflops()
    limit = gflops_start * 1e9 / flops
    print(f"machine: {machine()}")
    print(f"float32 matmul: {gflops_start:.1f} GFLOP/s; {recipe0.model.name} ({n_params:,} parameters): "
          f"{flops / 1e6:.3f} MFLOP/spectrum -> compute limit {limit:,.0f} spectra/s")

    x_mem = torch.randn(min(args.n, 8192), n_pix)
    fwd = {}
    for batch in (256, 1024, 4096):
        fwd[f"plain PyTorch eager, batch {batch}"] = forward_rate(net, x_mem, batch)
    fast = optimize_for_inference(net, x_mem[:1024], batch_size=None)
    fwd[f"optimize_for_inference ({fast.backend}), batch 1024"] = forward_rate(fast, x_mem, 1024)
    for name, r in fwd.items():
        print(f"forward only, {name}: {r:,.0f} spectra/s = {100 * r / limit:.1f}% of the limit")

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t = time.perf_counter()
        data = make_data(tmp / "spectra.h5", args.n)
        print(f"made {args.n} synthetic spectra in {time.perf_counter() - t:.0f} s")
        recipe = load_recipe(RECIPE, {"dataset.path": str(data), "training.epochs": 1,
                                      "evaluation.baselines": [], "evaluation.reference": None,
                                      "evaluation.compare_to": []})
        run = train_recipe(recipe, runs_root=tmp / "runs", progress=False)
        hist = pd.read_csv(run / "history.csv")
        astro_t = float(hist["train_objects_per_s"].iloc[-1])
        with Dataset(data) as ds:
            pre = Run.open(run).load_preprocessor()
            tr = ds.split("train")[: min(len(ds.split("train")), 4096)]
            x_tr = torch.from_numpy(pre.single.transform(ds, tr))
            y_tr = torch.from_numpy(pre.scale_targets(np.stack(
                [ds.target(t.source, tr) for t in recipe.targets], axis=1)).astype(np.float32))
        plain_t = plain_train_rate(recipe, x_tr.repeat(3, 1), y_tr.repeat(3, 1))
        print(f"train: astroreg (Lightning, 1 epoch, batch 256, 2 noisy copies) {astro_t:,.0f} objects/s; "
              f"plain PyTorch loop {plain_t:,.0f} objects/s -> {astro_t / plain_t:.2f}x")

        stages = predict_stages(run, data, tmp / "stages.parquet")
        predict(run, data, tmp / "warm.parquet", progress=False, split="test")  # page cache, lazy imports
        t = time.perf_counter()
        predict(run, data, tmp / "pred.parquet", progress=False)
        end_to_end = args.n / (time.perf_counter() - t)
        print(f"astroreg predict, native (HDF5 -> Parquet, {args.n} spectra, build included): {end_to_end:,.0f} "
              f"spectra/s = {100 * end_to_end / limit:.1f}% of the limit")
        _print_stages(stages, args.n, limit)

        t = time.perf_counter()
        prepared = prepare_data(run, data, tmp / "prepared.h5", args.n_prepared)
        print(f"prepared {args.n_prepared} spectra (resampled in the rest frame once) in "
              f"{time.perf_counter() - t:.0f} s")
        stages_p = predict_stages(run, prepared, tmp / "stages-p.parquet")
        with Dataset(prepared) as ds:
            assert Run.open(run).load_preprocessor().single.prepared(ds)
            x0 = ds.read_spectra(slice(0, 2048), keys=("flux",))["flux"]
        t = time.perf_counter()  # the fixed cost: run, preprocessor and network loaded, prediction path built
        run_obj = Run.open(run)
        run_obj.recipe, run_obj.load_preprocessor()
        optimize_for_inference(fold_standardization(network(run_obj), standardize_rows_, inplace=True),
                               torch.from_numpy(x0), copy_model=False)
        build_s = time.perf_counter() - t
        t = time.perf_counter()
        predict(run, prepared, tmp / "pred-p.parquet", progress=False)
        end_to_end_p = args.n_prepared / (time.perf_counter() - t)
        t = time.perf_counter()  # the same without the training-domain checks (predict --no-domain-flags)
        predict(run, prepared, tmp / "pred-p-noflags.parquet", progress=False, domain_flags=False)
        no_flags_p = args.n_prepared / (time.perf_counter() - t)
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "astroreg", "predict", str(run), "--data", str(prepared),
                        "--out", str(tmp / "pred-cli.parquet")], check=True, capture_output=True)
        cli_s = time.perf_counter() - t
        cli_rate = args.n_prepared / cli_s
        print(f"astroreg predict, prepared (HDF5 -> Parquet, {args.n_prepared} spectra, build included, of which "
              f"{build_s:.2f} s): {end_to_end_p:,.0f} spectra/s = {100 * end_to_end_p / limit:.1f}% of the limit; "
              f"without the in_domain checks {no_flags_p:,.0f} spectra/s = {100 * no_flags_p / limit:.1f}%")
        print(f"  the astroreg predict command (fresh process, interpreter start and imports included): "
              f"{cli_s:.1f} s = {cli_rate:,.0f} spectra/s")
        _print_stages(stages_p, args.n_prepared, limit)

        ingest = {}
        made = make_ingest_files(tmp / "ingest", args.ingest_files)
        if made is None:
            print(f"ingest: skipped ({SHARED_SPECTRA} is absent)")
        else:
            for jobs in (1, 2):
                ingest[jobs] = ingest_rate(*made, tmp / f"ingest-{jobs}.h5", jobs)
                print(f"ingest {args.ingest_files} files, {jobs} process(es): {ingest[jobs]:,.1f} spectra/s")

    # The machine's rate: the better of two probes, at the start and the end, so that a
    # neighbour's job during one of them does not lower the limit the ratios refer to.
    gflops = max(gflops_start, matmul_gflops())
    limit = gflops * 1e9 / flops
    print(f"float32 matmul: {gflops_start:.1f} GFLOP/s at the start, {gflops:.1f} the better of start and end "
          f"-> compute limit {limit:,.0f} spectra/s")
    per_core = 1e6 * stages["preprocess"] / args.n
    us_p = {k: 1e6 * v / args.n_prepared for k, v in stages_p.items()}
    limits_line = (
        f"What limits prediction from native spectra: the spectrum preprocessing, {per_core:.0f} us/spectrum on one "
        f"core (cubic-spline resampling onto {n_pix} pixels: a tridiagonal spline solve per spectrum, LAPACK `gtsv`, "
        "one sequential chain of divisions, then vectorised evaluation; and per-spectrum standardising), against "
        f"{1e6 * stages['forward'] / args.n:.1f} us for the forward pass, {1e6 * stages['read'] / args.n:.1f} us "
        f"for the HDF5 read and {1e6 * stages['write'] / args.n:.1f} us for the Parquet write. `astroreg predict` "
        "overlaps the preprocessing of the next chunk (one core) with the forward pass of this one (torch on the "
        "other core), so its rate is about the preprocessing rate; the 50% target needs "
        f"{2e6 / limit:.0f} us/spectrum of wall time for all stages together, about {4e6 / limit:.0f} us of core "
        "time on 2 cores.\n\n"
        "Prepared spectra (`astroreg ingest sdss-spectra --grid 3.5754 3.9670 4000 --rest-frame RV_ADOP`: resampled "
        "onto the recipe's grid in the rest frame once, at ingest, by the same `SpectrumResampler` code; the "
        "preprocessor sees the `prepared_*` attributes of `/spectra` and skips resampling) leave prediction "
        f"{us_p['read']:.1f} us/spectrum to read the flux alone (mapped from the file: `DatasetWriter` lays each "
        "array's chunks back to back over aligned blocks of 4096 rows, so `Dataset.row_view` maps a chunk of rows "
        "read-only with MAP_POPULATE instead of copying it; else a copy into a reused buffer) and the per-spectrum "
        "standardisation, which `astroreg predict` folds into the network's first layer "
        "(`fold_standardization`: W z + b = (W x - mean(x) W 1) / std(x) + b on the raw flux, rows with a "
        "non-finite pixel, no spread or |mean| > 8 std through the reference standardiser): what is left of it "
        f"is the row sums and norms, {us_p['preprocess']:.1f} us, instead of "
        f"{us_p.get('standardise (unfolded)', float('nan')):.1f} us to standardise in place; then "
        f"{us_p['forward']:.1f} us for the network's forward pass ({us_p.get('forward folded', float('nan')):.1f} us "
        f"folded, on the raw flux, as predict runs it) and {us_p['write']:.1f} us for the Parquet write: the forward "
        "pass dominates. The chunks are read in line, one after the other, since a "
        "reading thread beside torch's 2-thread team slowed every layer more than the overlap gained; torch keeps "
        "every core unless other processes load the machine (then one fewer: a 2-thread team with a busy core "
        "runs 5-7x slower). The end-to-end rate is therefore about one over the sum of the stages. Fixed cost of "
        f"a prediction: {build_s:.2f} s to open the run and build the prediction (folded) "
        f"path (in the end-to-end figure, amortised over the {args.n_prepared:,} spectra); the command in a fresh "
        f"process adds the interpreter start and imports ({cli_s:.1f} s in all for {args.n_prepared:,} spectra)."
    )
    lines = ["| path | spectra/s | fraction of matmul limit |", "| --- | ---: | ---: |",
             f"| **predict, prepared dataset**, `astroreg predict` (HDF5 -> Parquet, {args.n_prepared:,} spectra, "
             f"build included) | **{end_to_end_p:,.0f}** | **{100 * end_to_end_p / limit:.1f}%** |",
             f"| predict, prepared dataset, `--no-domain-flags` (no in_domain/domain_reason checks) | "
             f"{no_flags_p:,.0f} | {100 * no_flags_p / limit:.1f}% |",
             f"| predict, prepared dataset, the `astroreg predict` command in a fresh process (start, imports and "
             f"build included) | {cli_rate:,.0f} | {100 * cli_rate / limit:.1f}% |"]
    lines += _stage_rows(stages_p, args.n_prepared, limit, "prepared")
    lines.append(f"| predict, native dataset, `astroreg predict` (HDF5 -> Parquet, {args.n:,} spectra, build "
                 f"included) | {end_to_end:,.0f} | {100 * end_to_end / limit:.1f}% |")
    lines += _stage_rows(stages, args.n, limit, "native")
    for name, r in fwd.items():
        lines.append(f"| forward only, {name} (in memory) | {r:,.0f} | {100 * r / limit:.1f}% |")
    table = "\n".join(lines)
    train_line = (f"Training (one epoch of {recipe.training.batch_size}-spectrum batches, the training split with "
                  f"its 2 noisy copies): astroreg (Lightning engine) {astro_t:,.0f} objects/s, a plain PyTorch "
                  f"loop of the same network (AdamW, Huber, in-memory tensors) {plain_t:,.0f} objects/s: "
                  f"{astro_t / plain_t:.2f}x.")
    if ingest:
        ingest_line = (f"Ingest (`ingest_sdss_spectra`, {args.ingest_files} copies of the real SDSS files in "
                       f"`../shared/data/sdss/spectra`, FITS -> dataset): "
                       + ", ".join(f"{r:,.1f} spectra/s with {j} process{'es' if j > 1 else ''}"
                                   for j, r in ingest.items()) + ".")
    else:
        ingest_line = "Ingest: not measured (no `../shared/data/sdss/spectra` on this machine)."
    print(table)
    print(limits_line)
    print(train_line)
    print(ingest_line)
    quick = " --quick" if args.quick else ""
    body = (
        f"Machine: {machine()}.\n\n"
        f"`python benchmarks/bench_spectra.py --n {args.n} --n-prepared {args.n_prepared} --ingest-files "
        f"{args.ingest_files}{quick}`: "
        f"`{recipe0.model.name}` of `recipes/stellar-params.yaml` ({n_params:,} parameters, 4000-pixel input). "
        f"Float32 matmul rate {gflops:.1f} GFLOP/s; the forward pass costs {flops / 1e6:.3f} MFLOP/spectrum, so "
        f"the compute limit is {limit:,.0f} spectra/s. Target: `astroreg predict` >= 50% of it (a plain PyTorch "
        "forward pass reaches about 60% on these machines, a Keras build about 12%: quoted, not measured here). "
        "Synthetic SDSS-like spectra (3851 native pixels, padding, bad pixels, RVs) so that every stage does its "
        "real work: cubic-spline resampling onto the 4000-pixel grid in the rest frame, per-spectrum "
        "standardising; the prepared dataset holds the same spectra resampled once in the rest frame (as ingest "
        "with `--grid ... --rest-frame RV_ADOP` stores them, with ivar and mask), repeated to "
        f"{args.n_prepared:,} rows. Stage rows time each stage alone over the whole file. Other jobs on a 2-core machine "
        "change every figure by 2-10x (an OpenMP team of 2 threads waits on a busy core at every layer): "
        "compare numbers only within one quiet run.\n\n"
        + table + "\n\n" + limits_line + "\n\n" + train_line + "\n\n" + ingest_line
    )
    if not args.no_docs:
        print(f"wrote {update_section(SECTION, body)}")


if __name__ == "__main__":
    main()
