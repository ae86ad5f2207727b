"""astroreg._threads: the default thread count from the free cores, and set_threads."""

import subprocess
import sys
import time

import pytest
import torch

import astroreg._threads as threads
from astroreg._threads import (
    LoadSample,
    default_threads,
    free_cores,
    machine_load_sample,
    other_cores_busy,
    set_threads,
    usable_cores,
)


@pytest.fixture(autouse=True)
def keep_torch_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def _fake_stat(path, n_cpus, total=(100, 0, 50, 800, 50, 0, 0, 0)):
    cpus = [" ".join(map(str, total))] + [" ".join(map(str, total))] * n_cpus
    lines = [f"cpu  {cpus[0]}"] + [f"cpu{i} {c}" for i, c in enumerate(cpus[1:])] + ["intr 12345", "ctxt 6789"]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_usable_cores_within_the_machine():
    assert 1 <= usable_cores() <= (__import__("os").cpu_count() or 1)


def test_default_threads_within_bounds():
    assert 1 <= default_threads(window=0.05) <= usable_cores()


def test_load_sample_reads_busy_time(tmp_path):
    import os

    sample = machine_load_sample(_fake_stat(tmp_path / "stat", usable_cores()))
    assert sample is not None
    # user + nice + system + irq + softirq + steal; idle and iowait are not busy
    assert sample.busy == pytest.approx(150 / os.sysconf("SC_CLK_TCK"))
    assert sample.own >= 0


@pytest.mark.parametrize("make", ["missing", "other_cpu_count", "garbage"])
def test_default_threads_falls_back_to_usable_cores(make, tmp_path):
    path = tmp_path / "stat"
    if make == "other_cpu_count":
        _fake_stat(path, usable_cores() + 1)
    elif make == "garbage":
        path.write_text("cpu  not numbers\ncpu0 x\n" * max(1, usable_cores()))
    assert machine_load_sample(str(path)) is None
    start = time.perf_counter()
    assert default_threads(window=5.0, stat_path=str(path)) == usable_cores()
    assert time.perf_counter() - start < 5.0  # no window is waited for a load it cannot read


def test_other_cores_busy_excludes_own_time():
    assert other_cores_busy(LoadSample(0.0, 10.0, 1.0), LoadSample(2.0, 14.0, 2.0)) == pytest.approx(1.5)
    assert other_cores_busy(LoadSample(0.0, 10.0, 1.0), LoadSample(1.0, 10.5, 2.0)) == 0.0  # never negative
    assert other_cores_busy(LoadSample(1.0, 10.0, 1.0), LoadSample(1.0, 12.0, 1.0)) == 0.0


@pytest.mark.parametrize(("usable", "others", "expected"), [
    (1, 0.0, 1), (1, 3.0, 1), (2, 0.0, 2), (2, 0.4, 2), (2, 0.6, 1), (2, 1.0, 1), (2, 2.0, 1),
    (16, 0.0, 16), (16, 3.2, 13), (16, 15.9, 1),
])
def test_free_cores(usable, others, expected):
    assert free_cores(usable, others) == expected


def test_default_threads_subtracts_busy_cores(monkeypatch):
    samples = iter([LoadSample(0.0, 0.0, 0.0), LoadSample(1.0, 2.5, 0.5)])  # 2 cores' worth of other work
    monkeypatch.setattr(threads, "usable_cores", lambda: 4)
    monkeypatch.setattr(threads, "machine_load_sample", lambda path: next(samples))
    assert default_threads(window=0.0) == 2


def test_default_threads_leaves_a_spinning_core_alone():
    if usable_cores() < 2 or machine_load_sample() is None:
        pytest.skip("needs 2 usable cores and a readable /proc/stat that counts them")
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)
        assert default_threads(window=0.3) <= usable_cores() - 1
    finally:
        spinner.kill()
        spinner.wait()


def test_set_threads_sets_torch():
    assert set_threads(1) == 1
    assert torch.get_num_threads() == 1


def test_set_threads_default_follows_omp_num_threads(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert set_threads(None) == 1 == torch.get_num_threads()
    monkeypatch.delenv("OMP_NUM_THREADS")
    monkeypatch.setattr(threads, "default_threads", lambda: 1)
    assert set_threads() == 1


@pytest.mark.parametrize("bad", [0, -2, 1.5, "2", True])
def test_set_threads_refuses_bad_counts(bad):
    with pytest.raises(ValueError, match=r"threads must be a whole number >= 1 .* got"):
        set_threads(bad)
