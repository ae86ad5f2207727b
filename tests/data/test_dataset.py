"""The HDF5 dataset format: round trips, lazy reads, validation errors, atomic writes."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from astroreg.data._dataset import Dataset, DatasetWriter, ImageSpec, SpectraSpec, random_splits

N = 10


def _image_data(n: int = N, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {
        "ids": [f"obj{i:03d}" for i in range(n)],
        "images": rng.normal(size=(n, 2, 8, 6)).astype("f4"),
        "mag": rng.uniform(18, 24, n),
        "field": np.array([f"F{i % 3}" for i in range(n)]),
        "count": rng.integers(0, 100, n),
        "flux": rng.lognormal(8, 1, n),
        "logflux": rng.normal(3.5, 0.3, n),
    }


def _write_images(path, d, *, chunks=(4, 3, 3), fractions=None, seed=0):
    spec = ImageSpec(bands=("g", "i"), height=8, width=6, pixel_scale=0.168, unit="ADU")
    with DatasetWriter(
        path, images=spec, targets={"flux": "ADU", "logflux": "dex"},
        tabular={"mag": "mag", "field": "", "count": ""}, description="test set",
    ) as w:
        start = 0
        for size in chunks:
            sl = slice(start, start + size)
            w.append(
                d["ids"][sl], images=d["images"][sl],
                tabular={"mag": d["mag"][sl], "field": d["field"][sl], "count": d["count"][sl]},
                targets={"flux": d["flux"][sl], "logflux": d["logflux"][sl]},
            )
            start += size
        if fractions is not None:
            w.make_splits(fractions, seed=seed)
    return path


@pytest.fixture
def image_set(tmp_path):
    d = _image_data()
    path = _write_images(tmp_path / "img.h5", d, fractions={"train": 0.6, "val": 0.2, "test": 0.2}, seed=7)
    return path, d


def test_image_round_trip(image_set):
    path, d = image_set
    with Dataset(path) as ds:
        assert len(ds) == N
        assert ds.description == "test set"
        assert ds.modalities == ("images", "tabular")
        np.testing.assert_array_equal(ds.ids, d["ids"])
        np.testing.assert_array_equal(ds.images[...], d["images"])
        assert ds.images.dtype == np.float32
        assert ds.image_spec == ImageSpec(("g", "i"), 8, 6, 0.168, "ADU")
        np.testing.assert_allclose(ds.target("flux"), d["flux"])
        np.testing.assert_allclose(ds.target("logflux", [3, 1]), d["logflux"][[3, 1]])
        assert ds.unit("flux") == "ADU" and ds.unit("logflux") == "dex" and ds.unit("mag") == "mag"
        tab = ds.tabular()
        assert list(tab.columns) == sorted(["mag", "field", "count"]) or set(tab.columns) == {"mag", "field", "count"}
        np.testing.assert_allclose(tab["mag"], d["mag"])
        assert list(tab["field"]) == list(d["field"])
        np.testing.assert_array_equal(tab["count"], d["count"])
        sub = ds.tabular(["field"], indices=[2, 0])
        assert list(sub["field"]) == [d["field"][2], d["field"][0]]


def test_splits_are_stored_with_seed_and_reproducible(image_set, tmp_path):
    path, d = image_set
    with Dataset(path) as ds:
        assert set(ds.split_names) == {"train", "val", "test"}
        assert ds.split_seed == 7
        got = {s: ds.split(s) for s in ds.split_names}
    assert sorted(np.concatenate(list(got.values())).tolist()) == list(range(N))
    assert [len(got[s]) for s in ("train", "val", "test")] == [6, 2, 2]
    expected = random_splits(N, {"train": 0.6, "val": 0.2, "test": 0.2}, seed=7)
    for s in got:
        np.testing.assert_array_equal(got[s], expected[s])
    again = _write_images(tmp_path / "again.h5", d, fractions={"train": 0.6, "val": 0.2, "test": 0.2}, seed=7)
    with Dataset(again) as ds:
        np.testing.assert_array_equal(ds.split("train"), got["train"])


def test_explicit_splits(tmp_path):
    d = _image_data()
    spec = ImageSpec(bands=("i",), height=8, width=6, pixel_scale=0.2)
    with DatasetWriter(tmp_path / "s.h5", images=spec, targets={}) as w:
        w.append(d["ids"], images=d["images"][:, :1])
        w.set_splits({"train": [5, 1, 2], "test": [0, 3, 4, 6, 7, 8, 9]})
    with Dataset(tmp_path / "s.h5") as ds:
        np.testing.assert_array_equal(ds.split("train"), [1, 2, 5])
        assert ds.split_seed is None


@pytest.mark.parametrize("indices", [[7, 2, 2, 9, 0], [9, 8, 1], [3, 3, 3], [0, 9], list(range(N))[::-1]])
def test_read_images_keeps_the_asked_order(image_set, indices):
    path, d = image_set
    with Dataset(path) as ds:
        np.testing.assert_array_equal(ds.read_images(indices), d["images"][indices])
        np.testing.assert_array_equal(ds.read_images(np.asarray(indices)), d["images"][indices])


def test_read_images_slices_empty_masks_and_negatives(image_set):
    path, d = image_set
    with Dataset(path) as ds:
        np.testing.assert_array_equal(ds.read_images(slice(2, 5)), d["images"][2:5])
        assert ds.read_images([]).shape == (0, 2, 8, 6)
        mask = np.zeros(N, bool)
        mask[[1, 4]] = True
        np.testing.assert_array_equal(ds.read_images(mask), d["images"][mask])
        np.testing.assert_array_equal(ds.read_images([-1, 0]), d["images"][[-1, 0]])


@pytest.mark.parametrize("bad", [[N], [0, N + 5], [-N - 1]])
def test_read_images_out_of_range(image_set, bad):
    path, _ = image_set
    with Dataset(path) as ds, pytest.raises(IndexError, match="out of range"):
        ds.read_images(bad)


def test_spectra_common_grid_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    n, length = 7, 30
    wl = np.linspace(3800.0, 9200.0, length)
    flux = rng.normal(size=(n, length)).astype("f4")
    ivar = rng.uniform(0.5, 2, size=(n, length)).astype("f4")
    mask = (rng.random((n, length)) < 0.1).astype("u1")
    spec = SpectraSpec(n_pixels=length, wavelength=wl, with_ivar=True, with_mask=True, medium="air")
    with DatasetWriter(tmp_path / "sp.h5", spectra=spec, targets={"z": ""}) as w:
        w.append([f"s{i}" for i in range(4)], spectra={"flux": flux[:4], "ivar": ivar[:4], "mask": mask[:4]},
                 targets={"z": rng.random(4)})
        w.append([f"s{i}" for i in range(4, n)], spectra={"flux": flux[4:], "ivar": ivar[4:], "mask": mask[4:]},
                 targets={"z": [np.nan, 0.1, 0.2]})
    with Dataset(tmp_path / "sp.h5") as ds:
        assert ds.modalities == ("spectra",)
        got = ds.read_spectra([6, 0, 3], keys=("flux", "ivar", "mask", "wavelength"))
        np.testing.assert_array_equal(got["flux"], flux[[6, 0, 3]])
        np.testing.assert_array_equal(got["ivar"], ivar[[6, 0, 3]])
        np.testing.assert_array_equal(got["mask"], mask[[6, 0, 3]])
        np.testing.assert_allclose(got["wavelength"], wl)
        assert got["wavelength"].shape == (length,)
        assert ds.spectra["wavelength"].attrs["medium"] == "air"
        assert ds.spectra["wavelength"].attrs["unit"] == "Angstrom"
        assert np.isnan(ds.target("z")[4])
        with pytest.raises(ValueError, match="images"):
            ds.read_images([0])


def test_spectra_per_object_grids(tmp_path):
    rng = np.random.default_rng(2)
    n, length = 5, 12
    wl = 4000.0 + np.cumsum(rng.uniform(1, 2, size=(n, length)), axis=1)
    flux = rng.normal(size=(n, length))
    spec = SpectraSpec(n_pixels=length, wavelength=None, with_ivar=False)
    with DatasetWriter(tmp_path / "sp.h5", spectra=spec, targets={"teff": "K"}) as w:
        w.append([f"s{i}" for i in range(n)], spectra={"flux": flux, "wavelength": wl},
                 targets={"teff": rng.uniform(4000, 7000, n)})
    with Dataset(tmp_path / "sp.h5") as ds:
        got = ds.read_spectra([4, 1], keys=("flux", "wavelength"))
        np.testing.assert_allclose(got["wavelength"], wl[[4, 1]])
        np.testing.assert_allclose(got["flux"], flux[[4, 1]].astype("f4"))
        with pytest.raises(ValueError, match="'ivar' not found"):
            ds.read_spectra([0])


def test_not_hdf5(tmp_path):
    path = tmp_path / "notes.h5"
    path.write_text("this is a text file, not HDF5\n")
    with pytest.raises(ValueError, match="not a readable HDF5"):
        Dataset(path)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist.*astroreg ingest"):
        Dataset(tmp_path / "nope.h5")


def test_hdf5_without_format_attribute(tmp_path):
    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as f:
        f["x"] = np.arange(3)
    with pytest.raises(ValueError, match="not an astroreg dataset"):
        Dataset(path)


@pytest.mark.parametrize("array", ["targets/flux", "tabular/mag", "images/data", "ids"])
def test_mismatched_lengths_name_the_array(tmp_path, array):
    path = _write_images(tmp_path / "img.h5", _image_data())
    with h5py.File(path, "a") as f:
        d = f[array]
        d.resize(d.shape[0] + 1, axis=0)
    name = "targets/flux" if array == "ids" else array
    with pytest.raises(ValueError, match=f"{name} has .* rows but /ids has"):
        Dataset(path)


def test_append_rejects_wrong_image_shape(tmp_path):
    spec = ImageSpec(bands=("i",), height=8, width=8, pixel_scale=0.2)
    with DatasetWriter(tmp_path / "a.h5", images=spec, targets={"y": ""}) as w:
        with pytest.raises(ValueError, match=r"images has shape \(2, 1, 8, 9\), expected \(2, 1, 8, 8\)"):
            w.append(["a", "b"], images=np.zeros((2, 1, 8, 9)), targets={"y": [1, 2]})
        w.append(["a", "b"], images=np.zeros((2, 1, 8, 8)), targets={"y": [1, 2]})
    with Dataset(tmp_path / "a.h5") as ds:
        assert len(ds) == 2


def test_append_rejects_missing_target_key(tmp_path):
    spec = ImageSpec(bands=("i",), height=4, width=4, pixel_scale=0.2)
    with DatasetWriter(tmp_path / "a.h5", images=spec, targets={"flux": "ADU", "z": ""}) as w:
        with pytest.raises(ValueError, match=r"targets keys do not match.*missing \['z'\]"):
            w.append(["a"], images=np.zeros((1, 1, 4, 4)), targets={"flux": [1.0]})
        with pytest.raises(ValueError, match=r"unexpected \['zz'\]"):
            w.append(["a"], images=np.zeros((1, 1, 4, 4)), targets={"flux": [1.0], "z": [0.1], "zz": [1]})
        w.append(["a"], images=np.zeros((1, 1, 4, 4)), targets={"flux": [1.0], "z": [0.1]})


def test_writer_needs_a_modality_and_rows(tmp_path):
    with pytest.raises(ValueError, match="at least one input modality"):
        DatasetWriter(tmp_path / "a.h5", targets={"y": ""})
    spec = ImageSpec(bands=("i",), height=4, width=4, pixel_scale=0.2)
    with pytest.raises(ValueError, match="no objects were appended"):
        with DatasetWriter(tmp_path / "a.h5", images=spec, targets={}):
            pass
    assert list(tmp_path.iterdir()) == []


def test_interrupted_writer_leaves_no_file(tmp_path):
    path = tmp_path / "out.h5"
    spec = ImageSpec(bands=("i",), height=4, width=4, pixel_scale=0.2)
    with pytest.raises(RuntimeError, match="disk on fire"):
        with DatasetWriter(path, images=spec, targets={"y": ""}) as w:
            w.append(["a", "b"], images=np.ones((2, 1, 4, 4)), targets={"y": [1, 2]})
            raise RuntimeError("disk on fire")
    assert not path.exists()
    assert list(tmp_path.iterdir()) == []


def test_interrupted_writer_keeps_the_previous_file(tmp_path):
    path = _write_images(tmp_path / "img.h5", _image_data())
    spec = ImageSpec(bands=("i",), height=4, width=4, pixel_scale=0.2)
    with pytest.raises(KeyboardInterrupt):
        with DatasetWriter(path, images=spec, targets={}) as w:
            w.append(["a"], images=np.ones((1, 1, 4, 4)))
            raise KeyboardInterrupt
    with Dataset(path) as ds:
        assert len(ds) == N


def test_failing_close_leaves_no_temporary_file(tmp_path):
    path = tmp_path / "out.h5"
    spec = ImageSpec(bands=("i",), height=4, width=4, pixel_scale=0.2)
    with pytest.raises(ValueError, match="outside"):
        with DatasetWriter(path, images=spec, targets={}) as w:
            w.append(["a", "b"], images=np.ones((2, 1, 4, 4)))
            w.set_splits({"train": [0, 5]})
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("n", [0, 1, 7, 10, 100, 101, 1000])
@pytest.mark.parametrize("fractions", [{"train": 0.6, "val": 0.15, "test": 0.25}, {"a": 0.29, "b": 0.71},
                                       {"train": 1.0}, {"x": 0.5, "y": 0.0, "z": 0.5}])
def test_random_splits_cover_every_row_once(n, fractions):
    splits = random_splits(n, fractions, seed=3)
    assert list(splits) == list(fractions)
    everything = np.concatenate(list(splits.values()))
    np.testing.assert_array_equal(np.sort(everything), np.arange(n))
    for name, idx in splits.items():
        assert idx.dtype == np.int64
        assert np.all(np.diff(idx) > 0)
        # Every split but the last (which takes the remainder) gets floor(fraction * n) rows.
        if name != list(fractions)[-1]:
            assert len(idx) == int(np.floor(fractions[name] * n + 1e-9))


def test_random_splits_depend_on_the_seed():
    a = random_splits(100, {"train": 0.5, "test": 0.5}, seed=0)
    b = random_splits(100, {"train": 0.5, "test": 0.5}, seed=0)
    c = random_splits(100, {"train": 0.5, "test": 0.5}, seed=1)
    np.testing.assert_array_equal(a["train"], b["train"])
    assert not np.array_equal(a["train"], c["train"])


@pytest.mark.parametrize("fractions", [{"train": 0.5, "test": 0.4}, {"train": 1.2, "test": -0.2}, {}])
def test_random_splits_reject_bad_fractions(fractions):
    with pytest.raises(ValueError, match="sum to 1"):
        random_splits(10, fractions)


def test_missing_names_list_the_available_ones(image_set):
    path, _ = image_set
    with Dataset(path) as ds:
        with pytest.raises(ValueError, match=r"target 'redshift' not found .*available: \['flux', 'logflux'\]"):
            ds.target("redshift")
        with pytest.raises(ValueError, match="split 'holdout' not found"):
            ds.split("holdout")
        with pytest.raises(ValueError, match="tabular column 'nope' not found"):
            ds.tabular(["nope"])
        with pytest.raises(ValueError, match="no 'spectra' modality"):
            ds.read_spectra([0])


def _spectra_file(path, n, appends, *, compression=None, flush_rows=None, monkeypatch=None):
    """n spectra of 64 pixels with ivar and mask, appended in pieces of ``appends`` rows."""
    import astroreg.data._dataset as dmod

    if flush_rows is not None:
        monkeypatch.setattr(dmod, "FLUSH_ROWS", flush_rows)
    rng = np.random.default_rng(3)
    flux = rng.normal(size=(n, 64)).astype("f4")
    spec = SpectraSpec(n_pixels=64, wavelength=tuple(np.linspace(4000.0, 9000.0, 64)), with_ivar=True,
                       with_mask=True, mask_dtype="uint16")
    with DatasetWriter(path, spectra=spec, targets={"t": ""}, compression=compression) as w:
        for s in range(0, n, appends):
            m = min(appends, n - s)
            buf = flux[s:s + m].copy()
            w.append([f"s{i}" for i in range(s, s + m)], targets={"t": np.arange(s, s + m, dtype=float)},
                     spectra={"flux": buf, "ivar": np.abs(buf), "mask": np.zeros((m, 64), "u2")})
            buf[:] = np.nan  # the writer keeps its own copy of what it has not written yet
    return flux


def test_writer_keeps_each_array_contiguous_over_flushed_blocks(tmp_path, monkeypatch):
    # 64 float32 pixels = 256 B a row: HDF5 chunks of 1024 rows, blocks of 2048 rows flushed
    flux = _spectra_file(tmp_path / "s.h5", 5000, 300, flush_rows=2048, monkeypatch=monkeypatch)
    with Dataset(tmp_path / "s.h5") as ds:
        np.testing.assert_array_equal(ds.spectra["flux"][...], flux)
        np.testing.assert_array_equal(ds.target("t"), np.arange(5000.0))
        assert list(ds.ids[:2]) == ["s0", "s1"]
        for start in (0, 2048):  # whole flushed blocks map straight from the file
            view = ds.row_view("spectra/flux", slice(start, start + 2048))
            assert view is not None and not view.flags.writeable
            np.testing.assert_array_equal(view, flux[start:start + 2048])
        part = ds.row_view("spectra/flux", slice(100, 900))  # inside one block
        np.testing.assert_array_equal(part, flux[100:900])
        assert ds.row_view("spectra/flux", slice(4096, 5000)) is not None  # the last, final flush
        assert ds.row_view("spectra/ivar", slice(0, 2048)) is not None
        # across a block boundary the arrays interleave: the caller reads instead
        assert ds.row_view("spectra/flux", slice(2000, 2100)) is None
        assert ds.row_view("spectra/flux", slice(10, 10)) is None
        assert ds.row_view("spectra/nope", slice(0, 10)) is None


def test_row_view_refuses_compressed_arrays(tmp_path, monkeypatch):
    flux = _spectra_file(tmp_path / "c.h5", 600, 200, compression="gzip", flush_rows=512, monkeypatch=monkeypatch)
    with Dataset(tmp_path / "c.h5") as ds:
        assert ds.row_view("spectra/flux", slice(0, 512)) is None
        np.testing.assert_array_equal(ds.spectra["flux"][...], flux)


def test_a_written_dataset_and_file_have_the_usual_permissions_not_mkstemps_private_ones(tmp_path):
    """Datasets are shared within a group: the published file gets 0666 less the umask, not 0600."""
    import os
    import stat

    from astroreg.data import atomic_write_text

    old = os.umask(0o022)
    try:
        with DatasetWriter(tmp_path / "d.h5", targets={"y": ""}, tabular={"x": ""}) as w:
            w.append(["a", "b"], targets={"y": np.array([1.0, 2.0])}, tabular={"x": np.array([0.5, 0.7])})
        text = atomic_write_text(tmp_path / "t.json", "{}")
    finally:
        os.umask(old)
    for path in (tmp_path / "d.h5", text):
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, oct(path.stat().st_mode)
