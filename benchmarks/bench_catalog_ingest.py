"""Catalogue ingest rate (rows/s) and peak memory, per input format.

A synthetic ugriz catalogue of ``--n`` rows (11 float columns like the BOSS DR10 files, 1%
of u-band magnitudes at the 99 sentinel) is written as an ANNz-style CSV, Parquet and an
HDF5 column group, then ingested with ``ingest_catalog`` (u-band limit policy, random
splits). Each format runs in a fresh process so that its peak RSS is its own.

    python benchmarks/bench_catalog_ingest.py --n 1000000 [--write-docs]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))


def make_catalog(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    cols = {}
    for b in "UGRIZ":
        cols[f"MAG_{b}"] = rng.uniform(17, 24, n)
        cols[f"MAGERR_{b}"] = rng.lognormal(-2.5, 1.0, n)
    cols["MAG_U"][rng.random(n) < 0.01] = 99.0
    cols["Z"] = rng.uniform(0.0, 1.0, n)
    return pd.DataFrame(cols)


def _one(path: str, out: str) -> None:
    """Run in a child: ingest ``path`` and print rows/s and peak RSS as JSON."""
    import resource

    from astroreg.ingest import ingest_catalog

    t0 = time.perf_counter()
    report = ingest_catalog(path, out, targets=["Z"], units={"MAG*": "mag"},
                            missing={"MAG_U": "limit:26.0:MAGERR_U=1.0"}, progress=False)
    dt = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"rows": report.n_ok, "seconds": dt, "rows_per_s": report.n_ok / dt, "peak_rss_mib": rss}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--write-docs", action="store_true", help="update docs/benchmarks.md")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _one(*args.child)
        return
    frame = make_catalog(args.n)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        csv = tmp / "cat.csv"
        header = "#" + ";".join(("D:" if c == "Z" else "F:") + c for c in frame.columns)
        csv.write_text(header + "\n" + frame.to_csv(index=False, header=False, float_format="%.6f"))
        frame.to_parquet(tmp / "cat.parquet")
        import h5py

        with h5py.File(tmp / "cat.hdf5", "w") as f:
            g = f.create_group("photometry")
            for c in frame.columns:
                g.create_dataset(c, data=frame[c].to_numpy())
        for name in ("cat.csv", "cat.parquet", "cat.hdf5"):
            res = subprocess.run([sys.executable, __file__, "--child", str(tmp / name), str(tmp / "out.h5")],
                                 check=True, capture_output=True, text=True)
            r = json.loads(res.stdout.strip().splitlines()[-1])
            rows.append((name.split(".")[1], r))
            print(f"{name:12s} {r['rows']:>9d} rows in {r['seconds']:.2f} s: {r['rows_per_s']:,.0f} rows/s, "
                  f"peak RSS {r['peak_rss_mib']:.0f} MiB")
    if args.write_docs:
        from _common import machine, update_section

        body = (f"`python benchmarks/bench_catalog_ingest.py --n {args.n}` on {machine()}. Synthetic 11-column "
                "ugriz catalogue (1% u-band sentinels replaced by a limit), `ingest_catalog` with random splits, "
                "one fresh process per format (times include reading, checks and the dataset write, not the "
                "interpreter start).\n\n| format | rows | s | rows/s | peak RSS (MiB) |\n|---|---|---|---|---|\n")
        body += "\n".join(f"| {k} | {r['rows']} | {r['seconds']:.2f} | {r['rows_per_s']:,.0f} | "
                          f"{r['peak_rss_mib']:.0f} |" for k, r in rows)
        update_section("Catalogue ingest", body)


if __name__ == "__main__":
    main()
