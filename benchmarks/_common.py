"""Shared by the benchmark scripts: the machine's description and docs/benchmarks.md sections."""

from __future__ import annotations

import datetime as _dt
import os
import platform
import re
from pathlib import Path

import torch

DOCS = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
HEADER = "# Benchmarks\n\nMeasured by the scripts in `benchmarks/`; each section names the machine it ran on.\n"


def machine() -> str:
    """CPU model and the vector instructions torch uses on it, core count, GPU (if any), torch version and date."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    today = _dt.date.today().isoformat()
    cpu += f" ({torch.backends.cpu.get_cpu_capability()})"  # AVX512 or AVX2: a 2-3x difference in float32 rate
    return (f"{cpu}, {os.cpu_count()} cores, {gpu}; torch {torch.__version__}, "
            f"{torch.get_num_threads()} threads; {platform.system()} {platform.release()}; {today}")


def update_section(heading: str, body: str, path: Path = DOCS) -> Path:
    """Replace (or append) the ``## heading`` section of docs/benchmarks.md, atomically."""
    text = path.read_text() if path.exists() else HEADER
    block = f"## {heading}\n\n{body.strip()}\n\n"
    pattern = re.compile(rf"^## {re.escape(heading)}\n.*?(?=^## |\Z)", re.S | re.M)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".md.part")
    tmp.write_text(text)
    os.replace(tmp, path)
    return path
