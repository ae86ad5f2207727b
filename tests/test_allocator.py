"""astroreg._allocator: glibc's thresholds fixed so that freed tensor memory is reused, not faulted in again."""

import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import make_tabular_dataset

from astroreg import _allocator
from astroreg.config import recipe_from_dict
from astroreg.pipeline import predict, train_recipe

glibc = pytest.mark.skipif(_allocator._glibc() is None, reason="the thresholds are glibc's")

# A training step's pattern: maps of a few MiB made and freed, in several sizes. The process
# starts from glibc's static thresholds (128 KiB, what its adaptive ones begin at), where each
# map is mapped from the kernel and faulted in page by page; then astroreg's are set.
CHURN = """
import ctypes, resource, torch
from astroreg import _allocator
x = torch.rand(16, 256, 182)
def step():
    a = x * 2; b = a[..., ::2] + 1; c = torch.relu(b); e = torch.cat([a, a]); f = e * 3
def faults(steps=20):
    for _ in range(steps):
        step()
    f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(steps):
        step()
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0
libc = ctypes.CDLL(None)
libc.mallopt(_allocator.M_MMAP_THRESHOLD, 128 * 1024)
libc.mallopt(_allocator.M_TRIM_THRESHOLD, 128 * 1024)
before = faults()
print(_allocator.keep_freed_memory(), before, faults())
"""
_USER_VARS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "LD_PRELOAD", _allocator.OPT_OUT)


@glibc
def test_freed_memory_is_reused_instead_of_faulted_in_again():
    clean = {k: v for k, v in os.environ.items() if k not in _USER_VARS}
    out = subprocess.run([sys.executable, "-c", CHURN], env=clean, capture_output=True, text=True, check=True)
    tuned, before, after = out.stdout.split()
    assert tuned == "True"
    # 20 steps of 17 MiB: about 87,000 faults of 4 KiB pages with the memory handed back each time.
    assert int(before) > 50_000
    assert int(after) < 0.05 * int(before)


@pytest.mark.parametrize(("env", "reason"), [
    ({_allocator.OPT_OUT: "0"}, "ASTROREG_MALLOC_TUNING=0"),
    ({"MALLOC_TRIM_THRESHOLD_": "1048576"}, "MALLOC_TRIM_THRESHOLD_ is set"),
    ({"MALLOC_MMAP_THRESHOLD_": "1048576"}, "MALLOC_MMAP_THRESHOLD_ is set"),
    ({"LD_PRELOAD": "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"}, "another allocator is preloaded"),
])
def test_a_users_own_allocator_choice_is_left_alone(monkeypatch, env, reason):
    for var in _USER_VARS:
        monkeypatch.delenv(var, raising=False)
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    monkeypatch.setattr(_allocator, "_applied", False)
    assert _allocator.why_not_tuned() == reason
    assert _allocator.keep_freed_memory() is False


def test_training_and_prediction_set_it(monkeypatch, tmp_path):
    calls = []
    for module in ("astroreg.training._fit", "astroreg.pipeline._predict"):
        monkeypatch.setattr(f"{module}.keep_freed_memory", lambda module=module: calls.append(module) or True)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 2))
    data = make_tabular_dataset(tmp_path / "d.h5", {"a": x[:, 0], "b": x[:, 1]}, {"y": x.sum(axis=1)})
    recipe = recipe_from_dict({
        "name": "alloc", "dataset": {"path": str(data)}, "inputs": {"modality": "tabular", "columns": ["a", "b"]},
        "targets": [{"name": "y"}], "model": {"name": "mlp", "params": {"hidden": [8]}},
        "training": {"epochs": 1, "batch_size": 32}, "evaluation": {"baselines": []}})
    run = train_recipe(recipe, runs_root=tmp_path / "runs", progress=False)
    assert "astroreg.training._fit" in calls
    predict(run, data, tmp_path / "p.parquet", progress=False)
    assert calls[-1] == "astroreg.pipeline._predict"
