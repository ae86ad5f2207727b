"""Gaia XP ingest rate (sources/s) and peak memory, per XP form and flux kind.

A synthetic many-source file is made by repeating the real DR3 rows of
``../shared/data/gaiaxp`` with new source_ids: ``--n`` continuous sources (as the archive's
``xp_continuous_mean_spectrum`` CSV) and ``--n`` sampled ones (the archive's
``xp_sampled_mean_spectrum`` CSV). Each is ingested with ``ingest_gaia_xp`` in a fresh
process (its peak RSS is its own): continuous with ``flux="internal"`` (GaiaXPy convert)
and ``flux="calibrated"`` (GaiaXPy calibrate, on ``--n-calibrated`` sources, it is slower),
sampled with ``flux="calibrated"`` (linear interpolation).

    python benchmarks/bench_gaia_xp_ingest.py --n 5000 [--write-docs]
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
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "gaiaxp"


def repeat_rows(path: Path, n: int) -> pd.DataFrame:
    """``n`` rows of ``path`` cycled, with new source_ids 1..n (complete sources only)."""
    frame = pd.read_csv(path, dtype={"source_id": str})
    arrays = [c for c in frame.columns if c.endswith(("coefficients", "flux"))]
    frame = frame[frame[arrays].notna().all(axis=1)].reset_index(drop=True)
    out = frame.iloc[np.arange(n) % len(frame)].reset_index(drop=True)
    out["source_id"] = np.arange(1, n + 1).astype(str)
    return out


def _one(path: str, out: str, flux: str) -> None:
    """Run in a child: ingest ``path`` and print sources/s and peak RSS as JSON."""
    import resource

    from astroreg.ingest import ingest_gaia_xp
    from astroreg.preprocess._xp_layout import kept_wavelengths

    kept_wavelengths()  # GaiaXPy's import (~2-3 s) is not part of the rate
    t0 = time.perf_counter()
    report = ingest_gaia_xp(path, out, flux=flux, progress=False)
    dt = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"sources": report.n_ok, "seconds": dt, "per_s": report.n_ok / dt, "peak_rss_mib": rss}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5000, help="sources of the continuous-internal and sampled runs")
    parser.add_argument("--n-calibrated", type=int, default=1000, help="sources of the continuous-calibrated run")
    parser.add_argument("--write-docs", action="store_true", help="update docs/benchmarks.md")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _one(*args.child)
        return
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        plan = [("continuous", "internal", args.n), ("continuous", "calibrated", args.n_calibrated),
                ("sampled", "calibrated", args.n)]
        for form, flux, n in plan:
            src = SHARED / ("XP_CONTINUOUS_RAW.csv" if form == "continuous" else "XP_SAMPLED_RAW_dr3int6.csv")
            path = tmp / f"{form}-{n}.csv"
            if not path.exists():
                repeat_rows(src, n).to_csv(path, index=False)
            out = tmp / f"{form}-{flux}.h5"
            res = subprocess.run([sys.executable, __file__, "--child", str(path), str(out), flux],
                                 check=True, capture_output=True, text=True)
            r = json.loads(res.stdout.strip().splitlines()[-1])
            r["size_mib"] = path.stat().st_size / 1024 ** 2
            runs.append((form, flux, r))
            print(f"{form:10s} {flux:10s} {r['sources']:>7d} sources ({r['size_mib']:.0f} MiB CSV) in "
                  f"{r['seconds']:.1f} s: {r['per_s']:,.0f} sources/s, peak RSS {r['peak_rss_mib']:.0f} MiB")
    if args.write_docs:
        from _common import machine, update_section

        body = (f"`python benchmarks/bench_gaia_xp_ingest.py --n {args.n} --n-calibrated {args.n_calibrated}` on "
                f"{machine()}. The real DR3 rows of `shared/data/gaiaxp` repeated with new source_ids, as CSV; "
                "`ingest_gaia_xp` with the paper's truncation and splits, chunks of 2,000 sources, one fresh "
                "process per run (GaiaXPy's import excluded; reading, parsing, sampling, checks and the dataset "
                "write included).\n\n| form | flux | sources | s | sources/s | peak RSS (MiB) |\n"
                "|---|---|---|---|---|---|\n")
        body += "\n".join(f"| {f} | {k} | {r['sources']} | {r['seconds']:.1f} | {r['per_s']:,.0f} | "
                          f"{r['peak_rss_mib']:.0f} |" for f, k, r in runs)
        update_section("Gaia XP ingest", body)


if __name__ == "__main__":
    main()
