"""``astroreg ingest catalog``: formats, duplicates, sentinels and missing-value policies, ids, splits."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pandas as pd
import pytest
from astropy.table import Table

from astroreg.cli import main
from astroreg.data import Dataset
from astroreg.ingest import MissingPolicy, NothingIngestedError, ingest_catalog
from astroreg.ingest._hdf5_tables import read_hdf5_table

BANDS = "ugriz"
ANNZ_HEADER = "#" + ";".join(f"F:MAG_{b.upper()};F:MAGERR_{b.upper()}" for b in BANDS) + ";D:Z"


def _frame(n: int = 40, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    cols = {}
    for b in BANDS.upper():
        cols[f"MAG_{b}"] = rng.uniform(17, 23, n).round(5)
        cols[f"MAGERR_{b}"] = rng.uniform(0.01, 0.3, n).round(5)
    cols["Z"] = rng.uniform(0.05, 0.8, n).round(5)
    return pd.DataFrame(cols)


def _annz_csv(path, frame: pd.DataFrame) -> None:
    """An ANNz-style file: '#F:MAG_U;...;D:Z' header above comma-separated rows."""
    header = "#" + ";".join(("D:" if c == "Z" else "F:") + c for c in frame.columns)
    path.write_text(header + "\n" + frame.to_csv(index=False, header=False, float_format="%.6f"))


def _read(path) -> tuple[Dataset, pd.DataFrame]:
    ds = Dataset(path)
    return ds, ds.tabular()


def _pickled_list(names) -> bytes:
    """A list of str as PyTables stores it (pickle protocol 0), written out byte by byte."""
    body = b"(lp0\n" + b"".join(b"V" + n.encode() + b"\np%d\na" % (i + 1) for i, n in enumerate(names))
    return body + b"."


# -- formats -----------------------------------------------------------------------------
def test_annz_csv_prefixes_stripped_units_ids_splits(tmp_path):
    frame = _frame(50)
    _annz_csv(tmp_path / "cat_0.csv", frame)
    report = ingest_catalog(tmp_path / "cat_0.csv", tmp_path / "out.h5", targets=["Z"], units={"MAG*": "mag"},
                            split_fractions={"train": 0.6, "val": 0.2, "test": 0.2}, seed=3, progress=False)
    assert report.n_ok == 50 and report.n_duplicates == 0
    assert report.renamed["F:MAG_U"] == "MAG_U" and report.renamed["D:Z"] == "Z"
    ds, tab = _read(tmp_path / "out.h5")
    with ds:
        assert set(ds.tabular_columns) == set(frame.columns) - {"Z"}
        assert not any(":" in c for c in ds.tabular_columns)
        np.testing.assert_allclose(ds.target("Z"), frame["Z"], atol=1e-6)
        np.testing.assert_allclose(tab["MAGERR_G"], frame["MAGERR_G"], atol=1e-6)
        assert ds.unit("MAG_U") == "mag" and ds.unit("MAGERR_U") == "mag"
        assert list(ds.ids[:2]) == ["cat_0:0", "cat_0:1"]
        assert {s: len(ds.split(s)) for s in ds.split_names} == {"train": 30, "val": 10, "test": 10}
        assert ds.split_seed == 3
    saved = json.loads((tmp_path / "out.h5.ingest-report.json").read_text())
    assert saved["columns"]["MAGERR_U"]["max"] == pytest.approx(frame["MAGERR_U"].max(), abs=1e-6)
    assert saved["splits"] == {"train": 30, "val": 10, "test": 10}


@pytest.mark.parametrize("sep", ["\t", "|", " "])
def test_any_separator_sniffed_or_given(tmp_path, sep):
    frame = _frame(10)
    path = tmp_path / "cat.txt"
    path.write_text(frame.to_csv(index=False, sep=sep if sep != " " else " "))
    for given in (None, sep if sep != " " else r"\s+"):
        ingest_catalog(path, tmp_path / "o.h5", targets=["Z"], sep=given, split_fractions=None, progress=False)
        with Dataset(tmp_path / "o.h5") as ds:
            np.testing.assert_allclose(ds.target("Z"), frame["Z"])
            assert len(ds.tabular_columns) == 10


def test_fits_and_parquet_tables(tmp_path):
    frame = _frame(20)
    t = Table.from_pandas(frame)
    t["MAG_R"].unit = "mag"
    t.write(tmp_path / "cat.fits")
    frame.to_parquet(tmp_path / "cat.parquet")
    for name in ("cat.fits", "cat.parquet"):
        ingest_catalog(tmp_path / name, tmp_path / "o.h5", targets={"Z": ""}, split_fractions=None, progress=False)
        with Dataset(tmp_path / "o.h5") as ds:
            np.testing.assert_allclose(ds.tabular(["MAG_R"])["MAG_R"], frame["MAG_R"])
            assert ds.unit("MAG_R") == ("mag" if name.endswith("fits") else "")


def _write_rail(path, frame: pd.DataFrame) -> None:
    with h5py.File(path, "w") as f:
        g = f.create_group("photometry")
        for c in frame.columns:
            d = g.create_dataset(c, data=frame[c].to_numpy())
            if c.startswith("MAG"):
                d.attrs["unit"] = "mag"


def _write_pandas_fixed(path, frame: pd.DataFrame) -> None:
    """The layout of DataFrame.to_hdf(format='fixed') (as PyTables writes it), with h5py."""
    with h5py.File(path, "w") as f:
        g = f.create_group("cat")
        g.attrs["pandas_type"] = np.bytes_(b"frame")
        g.attrs["nblocks"] = np.int64(1)
        names = np.array([c.encode() for c in frame.columns])
        g.create_dataset("axis0", data=names)
        g.create_dataset("axis1", data=np.arange(len(frame)))
        g.create_dataset("block0_items", data=names)
        v = g.create_dataset("block0_values", data=frame.to_numpy(dtype=np.float64))
        v.attrs["transposed"] = np.uint8(1)


def _write_pandas_table(path, frame: pd.DataFrame, data_columns: bool) -> None:
    """The layout of DataFrame.to_hdf(format='table'), with h5py; names in pickle-protocol-0 attributes."""
    cols = list(frame.columns)
    with h5py.File(path, "w") as f:
        g = f.create_group("cat")
        g.attrs["pandas_type"] = np.bytes_(b"frame_table")
        g.attrs["non_index_axes"] = np.bytes_(b"(lp0\n(I1\n" + _pickled_list(cols)[:-1] + b"tp7\na.")
        if data_columns:
            dtype = [("index", "<i8")] + [(c, "<f8") for c in cols]
            rows = np.zeros(len(frame), dtype=dtype)
            for c in cols:
                rows[c] = frame[c]
        else:
            dtype = [("index", "<i8"), ("values_block_0", "<f8", (len(cols),))]
            rows = np.zeros(len(frame), dtype=dtype)
            rows["values_block_0"] = frame.to_numpy()
        rows["index"] = np.arange(len(frame))
        t = g.create_dataset("table", data=rows)
        if data_columns:
            for c in cols:
                t.attrs[f"{c}_kind"] = np.bytes_(_pickled_list([c]))
        else:
            t.attrs["values_block_0_kind"] = np.bytes_(_pickled_list(cols))


@pytest.mark.parametrize("layout", ["rail", "pandas-fixed", "pandas-table", "pandas-table-datacolumns", "astropy"])
def test_hdf5_table_layouts(tmp_path, layout):
    frame = _frame(25)
    path = tmp_path / "cat.hdf5"
    if layout == "rail":
        _write_rail(path, frame)
    elif layout == "pandas-fixed":
        _write_pandas_fixed(path, frame)
    elif layout.startswith("pandas-table"):
        _write_pandas_table(path, frame, data_columns=layout.endswith("datacolumns"))
    else:
        t = Table.from_pandas(frame)
        t["MAG_U"].unit = "mag"
        t.write(path, path="data", serialize_meta=True)
    read = read_hdf5_table(path)
    assert sorted(read.columns) == sorted(frame.columns)
    pd.testing.assert_frame_equal(read[frame.columns], frame, check_dtype=False)
    report = ingest_catalog(path, tmp_path / "o.h5", targets=["Z"], progress=False)
    assert report.n_ok == 25
    with Dataset(tmp_path / "o.h5") as ds:
        np.testing.assert_allclose(ds.target("Z"), frame["Z"])
        if layout in ("rail", "astropy"):
            assert ds.unit("MAG_U") == "mag"


def test_hdf5_with_several_tables_needs_a_key(tmp_path):
    path = tmp_path / "two.h5"
    _write_rail(path, _frame(5))
    with h5py.File(path, "a") as f:
        f.create_group("other").create_dataset("x", data=np.arange(3.0))
    with pytest.raises(ValueError, match="holds 2 tables: .*'photometry'.*--table"):
        read_hdf5_table(path)
    assert len(read_hdf5_table(path, key="photometry")) == 5
    with pytest.raises(ValueError, match="no table 'nope'"):
        read_hdf5_table(path, key="nope")


def test_pickled_pandas_object_columns_are_dropped_with_a_warning(tmp_path):
    path = tmp_path / "obj.h5"
    _write_pandas_fixed(path, _frame(4))
    with h5py.File(path, "a") as f:
        g = f["cat"]
        g.attrs["nblocks"] = np.int64(2)
        g.create_dataset("block1_items", data=np.array([b"name"]))
        # PyTables keeps object columns in a VLARRAY of pickles; the bytes here are never read
        d = g.create_dataset("block1_values", data=np.zeros(1, np.uint8))
        d.attrs["CLASS"] = np.bytes_(b"VLARRAY")
    with pytest.warns(UserWarning, match=r"dropped columns \['name'\].*does not unpickle"):
        frame = read_hdf5_table(path)
    assert "name" not in frame.columns and len(frame) == 4


# -- several files, duplicates, ids -------------------------------------------------------
def test_concatenation_and_duplicates(tmp_path):
    a, b = _frame(30, seed=1), _frame(20, seed=2)
    b.iloc[:5] = a.iloc[:5].to_numpy()  # 5 exact copies across files
    a = pd.concat([a, a.iloc[[7]]], ignore_index=True)  # 1 copy within a file
    _annz_csv(tmp_path / "a.csv", a)
    _annz_csv(tmp_path / "b.csv", b)
    report = ingest_catalog([tmp_path / "a.csv", tmp_path / "b.csv"], tmp_path / "o.h5", targets=["Z"],
                            split_fractions=None, progress=False)
    assert report.n_rows == 51 and report.n_duplicates == 6 and report.n_ok == 45
    assert [f["rows"] for f in report.files] == [31, 20]
    with Dataset(tmp_path / "o.h5") as ds:
        assert "b:0" not in set(ds.ids) and "a:0" in set(ds.ids) and "b:5" in set(ds.ids)
        assert len(set(ds.ids)) == 45


def test_files_with_different_columns_are_named(tmp_path):
    _annz_csv(tmp_path / "a.csv", _frame(5))
    _annz_csv(tmp_path / "b.csv", _frame(5).drop(columns=["MAG_Z"]))
    with pytest.raises(ValueError, match=r"b.csv has different columns from a.csv: missing \['MAG_Z'\]"):
        ingest_catalog([tmp_path / "a.csv", tmp_path / "b.csv"], tmp_path / "o.h5", targets=["Z"], progress=False)


def test_id_column_and_row_ids(tmp_path):
    frame = _frame(6)
    frame.insert(0, "objid", [f"obj{i}" for i in range(6)])
    frame.to_csv(tmp_path / "c.csv", index=False)
    ingest_catalog(tmp_path / "c.csv", tmp_path / "o.h5", targets=["Z"], id_column="objid", split_fractions=None,
                   progress=False)
    with Dataset(tmp_path / "o.h5") as ds:
        assert list(ds.ids) == [f"obj{i}" for i in range(6)] and "objid" not in ds.tabular_columns
    ingest_catalog(tmp_path / "c.csv", tmp_path / "o.h5", targets=["Z"], id_style="row", split_fractions=None,
                   progress=False)
    with Dataset(tmp_path / "o.h5") as ds:
        assert list(ds.ids) == [f"row{i}" for i in range(6)]
    frame.loc[3, "objid"] = "obj1"
    frame.to_csv(tmp_path / "c.csv", index=False)
    with pytest.raises(ValueError, match=r"ids repeat in column 'objid'.*\['obj1'\]"):
        ingest_catalog(tmp_path / "c.csv", tmp_path / "o.h5", targets=["Z"], id_column="objid", progress=False)


# -- sentinels and policies ---------------------------------------------------------------
@pytest.fixture
def holes(tmp_path):
    """20 rows: MAG_U=99 (rows 0-3, MAGERR_U=99 too), MAG_G=-9999 (row 5), MAG_R NaN (6), MAG_I inf (7), Z=-99 (8)."""
    frame = _frame(20, seed=4)
    frame.loc[0:3, ["MAG_U", "MAGERR_U"]] = 99.0
    frame.loc[5, "MAG_G"] = -9999.0
    frame.loc[6, "MAG_R"] = np.nan
    frame.loc[7, "MAG_I"] = np.inf
    frame.loc[8, "Z"] = -99.0
    path = tmp_path / "holes.parquet"
    frame.to_parquet(path)
    return path, frame


def test_default_policy_drops_rows_with_sentinels_nan_and_inf(holes, tmp_path):
    path, _ = holes
    report = ingest_catalog(path, tmp_path / "o.h5", targets=["Z"], split_fractions=None, progress=False)
    assert report.n_dropped == 8 and report.n_ok == 12
    assert report.missing["MAG_U"]["missing"] == 4 and report.missing["MAG_U"]["dropped"] == 4
    assert report.missing["Z"]["dropped"] == 1
    with Dataset(tmp_path / "o.h5") as ds:
        assert set(ds.ids) == {f"holes:{i}" for i in (4, *range(9, 20))}
        assert np.isfinite(ds.tabular().to_numpy()).all()
    assert {e["row"] for e in json.loads((tmp_path / "o.h5.ingest-report.json").read_text())["dropped_examples"]} \
        == {f"holes.parquet:{i}" for i in (0, 1, 2, 3, 5, 6, 7, 8)}


def test_limit_flag_keep_and_per_column_sentinels(holes, tmp_path):
    path, frame = holes
    report = ingest_catalog(
        path, tmp_path / "o.h5", targets=["Z"], split_fractions={"train": 0.5, "val": 0.5}, seed=0,
        missing={"MAG_U": "limit:25.5:MAGERR_U=1.0", "MAG_G": "flag", "MAG_R": "keep", "MAG_I": "flag:30"},
        column_sentinels={"MAG_G": "-9999"}, progress=False,
    )
    assert report.n_dropped == 1 and report.n_ok == 19  # only the Z=-99 row
    assert report.missing["MAG_U"]["replaced"] == 4 and report.missing["MAG_G"]["flagged"] == 1
    with Dataset(tmp_path / "o.h5") as ds:
        tab = ds.tabular().set_index(ds.ids)
        train_ids = set(ds.ids[ds.split("train")])
    assert (tab.loc[[f"holes:{i}" for i in range(4)], "MAG_U"] == 25.5).all()
    assert (tab.loc[[f"holes:{i}" for i in range(4)], "MAGERR_U"] == 1.0).all()
    assert tab["MAG_G_missing"].sum() == 1 and tab.loc["holes:5", "MAG_G_missing"] == 1
    train_g = frame.drop(index=[5, 8])["MAG_G"][[f"holes:{i}" in train_ids for i in frame.drop(index=[5, 8]).index]]
    assert tab.loc["holes:5", "MAG_G"] == pytest.approx(np.median(train_g))
    assert np.isnan(tab.loc["holes:6", "MAG_R"]) and tab["MAG_R"].isna().sum() == 1
    ingest_catalog(path, tmp_path / "k.h5", targets=["Z"], missing={"Z": "keep", "MAG*": "keep", "MAGERR_U": "keep"},
                   split_fractions=None, progress=False)
    with Dataset(tmp_path / "k.h5") as ds:  # kept missing values are NaN, not the sentinel
        z, kept = ds.target("Z"), ds.tabular()
    assert np.isnan(z[8]) and np.isfinite(np.delete(z, 8)).all()
    assert kept["MAG_U"].isna().sum() == 4 and kept["MAGERR_U"].isna().sum() == 4 and np.isnan(kept["MAG_G"][5])
    assert not (kept.to_numpy() == 99.0).any()
    assert tab.loc["holes:7", "MAG_I"] == 30.0 and tab.loc["holes:7", "MAG_I_missing"] == 1
    # per-column sentinels 'none': 99 is a value again
    ingest_catalog(path, tmp_path / "p.h5", targets=["Z"], column_sentinels={"MAG*_U": "none"}, split_fractions=None,
                   progress=False)
    with Dataset(tmp_path / "p.h5") as ds:
        assert (ds.tabular(["MAG_U"])["MAG_U"] == 99.0).sum() == 4


def test_flag_by_default_leaves_targets_to_drop_and_all_nan_column_in_report(holes, tmp_path):
    path, frame = holes
    report = ingest_catalog(path, tmp_path / "o.h5", targets=["Z"], missing_default="flag", split_fractions=None,
                            missing={"MAG_R": "keep", "MAG_Z": "keep"},
                            column_sentinels={"MAG_Z": [float(v) for v in frame["MAG_Z"]]},
                            progress=False)
    assert report.n_dropped == 1 and report.missing["Z"]["policy"] == "drop"
    assert report.missing["MAGERR_U"]["flagged"] == 4
    with Dataset(tmp_path / "o.h5") as ds:
        assert {"MAG_U_missing", "MAGERR_U_missing", "MAG_G_missing", "MAG_I_missing"} <= set(ds.tabular_columns)
        assert "MAG_R_missing" not in ds.tabular_columns
    def no_nan(name):
        raise AssertionError(f"{name} in the JSON report")

    saved = json.loads((tmp_path / "o.h5.ingest-report.json").read_text(), parse_constant=no_nan)
    assert saved["columns"]["MAG_Z"]["min"] is None and saved["columns"]["MAG_Z"]["n_nan"] == 19
    assert saved["missing"]["MAG_Z"]["kept"] == 19


def test_policy_parsing_and_bad_policies(holes, tmp_path):
    assert MissingPolicy.parse("limit:25.3:MAGERR_U=1") == MissingPolicy("limit", 25.3, "MAGERR_U", 1.0)
    assert MissingPolicy.parse("flag") == MissingPolicy("flag")
    with pytest.raises(ValueError, match="policy 'limit' not understood; expected drop, keep"):
        MissingPolicy.parse("limit")
    path, _ = holes
    with pytest.raises(ValueError, match="target 'Z' can only have the missing-value policy drop or keep"):
        ingest_catalog(path, tmp_path / "o.h5", targets=["Z"], missing={"Z": "limit:0.1"}, progress=False)
    with pytest.raises(ValueError, match="'MAG_Q' matches no used column"):
        ingest_catalog(path, tmp_path / "o.h5", targets=["Z"], missing={"MAG_Q": "flag"}, progress=False)


def test_all_rows_dropped_is_one_clear_error_with_a_report(tmp_path):
    frame = _frame(5)
    frame["MAG_U"] = 99.0
    frame.to_csv(tmp_path / "c.csv", index=False)
    with pytest.raises(NothingIngestedError, match=r"all 5 rows of c.csv were dropped.*column 'MAG_U'.*--exclude"):
        ingest_catalog(tmp_path / "c.csv", tmp_path / "o.h5", targets=["Z"], progress=False)
    assert not (tmp_path / "o.h5").exists() and (tmp_path / "o.h5.ingest-report.json").exists()


# -- test catalogue ---------------------------------------------------------------------------
def test_test_catalogue_is_the_test_split(tmp_path):
    main_, test = _frame(40, seed=5), _frame(10, seed=6)
    main_.iloc[0] = test.iloc[2].to_numpy()  # a training row that repeats a test row is dropped
    _annz_csv(tmp_path / "train.csv", main_)
    _annz_csv(tmp_path / "test.csv", test)
    report = ingest_catalog(tmp_path / "train.csv", tmp_path / "o.h5", targets=["Z"],
                            test_catalogs=tmp_path / "test.csv", progress=False)
    assert report.n_duplicates == 1 and report.splits == {"train": 31, "val": 8, "test": 10}
    with Dataset(tmp_path / "o.h5") as ds:
        assert sorted(ds.ids[ds.split("test")]) == sorted(f"test:{i}" for i in range(10))
        assert "train:0" not in set(ds.ids)
        np.testing.assert_allclose(np.sort(ds.target("Z", ds.split("test"))), np.sort(test["Z"]), atol=1e-6)
    with pytest.raises(ValueError, match="name 'test', but the test split comes from the test catalogue"):
        ingest_catalog(tmp_path / "train.csv", tmp_path / "o.h5", targets=["Z"], test_catalogs=tmp_path / "test.csv",
                       split_fractions={"train": 0.5, "test": 0.5}, progress=False)


# -- bad input -----------------------------------------------------------------------------
def test_bad_input_gets_one_clear_line(tmp_path):
    _annz_csv(tmp_path / "c.csv", _frame(5))
    with pytest.raises(ValueError, match="column 'REDSHIFT' not found in c.csv; columns are: MAG_U"):
        ingest_catalog(tmp_path / "c.csv", tmp_path / "o.h5", targets=["REDSHIFT"], progress=False)
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(ValueError, match="empty"):
        ingest_catalog(tmp_path / "empty.csv", tmp_path / "o.h5", targets=["Z"], progress=False)
    (tmp_path / "bad.parquet").write_bytes(np.random.default_rng(0).bytes(300))
    with pytest.raises(ValueError, match="could not read catalogue .*bad.parquet as Parquet"):
        ingest_catalog(tmp_path / "bad.parquet", tmp_path / "o.h5", targets=["Z"], progress=False)
    (tmp_path / "bad.h5").write_bytes(np.random.default_rng(0).bytes(300))
    with pytest.raises(ValueError, match="could not read catalogue .*bad.h5 as HDF5"):
        ingest_catalog(tmp_path / "bad.h5", tmp_path / "o.h5", targets=["Z"], progress=False)
    _write_pandas_table(tmp_path / "full.h5", _frame(50), data_columns=False)
    whole = (tmp_path / "full.h5").read_bytes()
    for cut in (len(whole) // 3, len(whole) - 200):
        (tmp_path / "cut.h5").write_bytes(whole[:cut])
        with pytest.raises(ValueError, match="cut.h5"):
            ingest_catalog(tmp_path / "cut.h5", tmp_path / "o.h5", targets=["Z"], progress=False)
    (tmp_path / "noheader.csv").write_text("1.0,2.0,3.0\n4.0,5.0,6.0\n")
    with pytest.raises(ValueError, match="has no header line"):
        ingest_catalog(tmp_path / "noheader.csv", tmp_path / "o.h5", targets=["Z"], progress=False)
    with pytest.raises(FileNotFoundError):
        ingest_catalog(tmp_path / "none.csv", tmp_path / "o.h5", targets=["Z"], progress=False)


def test_cli_ingest_catalog(tmp_path, capsys):
    frame = _frame(30)
    frame.loc[0, "MAG_U"] = 99.0
    _annz_csv(tmp_path / "c.csv", frame)
    out = str(tmp_path / "o.h5")
    args = ["ingest", "catalog", "--catalog", str(tmp_path / "c.csv"), "--out", out, "--target", "Z",
            "--unit", "MAG*=mag", "--missing", "MAG_U=flag", "--splits", "train=0.5,val=0.5", "--seed", "1"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "ingested 30 of 30 catalogue rows" in printed and "MAG_U: 1 missing -> flag" in printed
    assert "MAGERR_U" in printed and "max" in printed
    with Dataset(out) as ds:
        assert "MAG_U_missing" in ds.tabular_columns and ds.split_names == ("train", "val")
    assert main(args) == 2  # no --overwrite
    assert "--overwrite" in capsys.readouterr().err
    assert main(args + ["--overwrite", "--missing", "MAG_G=sometimes"]) == 2
    assert "not understood" in capsys.readouterr().err


# -- the real BOSS DR10 files -----------------------------------------------------------------
def test_boss_dr10_files(shared_dir, tmp_path):
    folder = shared_dir / "data" / "photoz"
    files = [folder / f"boss_dr10_{k}.csv" for k in ("0", "1", "3", "colorCuts")]
    if not all(f.exists() for f in files):
        pytest.skip(f"BOSS DR10 catalogues absent from {folder}")
    report = ingest_catalog(files, tmp_path / "boss.h5", targets=["Z"], units={"MAG*": "mag"}, progress=False)
    assert report.n_rows == 28000
    assert report.n_ok == 28000 - report.n_duplicates - report.n_dropped
    assert report.n_dropped == 0  # no sentinel in these files
    with Dataset(tmp_path / "boss.h5") as ds:
        assert ds.target_names == ("Z",)
        assert set(ds.tabular_columns) == {f"MAG{e}_{b}" for e in ("", "ERR") for b in BANDS.upper()}
        z = ds.target("Z")
        assert 0.3 < np.median(z) < 0.7 and z.max() < 1.0
    assert report.columns["MAGERR_U"]["max"] > 1e3  # the huge u-band errors are visible in the summary
