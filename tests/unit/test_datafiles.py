"""``--with NAME``: notebook values as workspace files, read back as the agent would."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd  # type: ignore[import-untyped]
import pytest

from agcluster_jupyter.kernel.datafiles import DataFileError, as_file


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame({"city": ["Oslo", "Rome"], "temp": [3.5, 14.0]})


def test_dataframe_as_csv_parquet_and_json(frame: pd.DataFrame) -> None:
    csv = as_file("sales", frame)
    assert csv.filename == "sales.csv"
    assert csv.description == "sales.csv: DataFrame, 2 rows × 2 columns: city, temp"
    pd.testing.assert_frame_equal(pd.read_csv(io.BytesIO(csv.data)), frame)

    parquet = as_file("sales", frame, "parquet")
    assert parquet.filename == "sales.parquet"
    pd.testing.assert_frame_equal(pd.read_parquet(io.BytesIO(parquet.data)), frame)

    records = json.loads(as_file("sales", frame, "json").data)
    assert records == [{"city": "Oslo", "temp": 3.5}, {"city": "Rome", "temp": 14.0}]


def test_a_meaningful_index_is_kept_and_a_series_is_one_column(frame: pd.DataFrame) -> None:
    indexed = frame.set_index("city")
    back = pd.read_csv(io.BytesIO(as_file("t", indexed).data), index_col="city")
    pd.testing.assert_frame_equal(back, indexed)
    series = as_file("temp", frame["temp"])
    assert series.filename == "temp.csv"
    assert pd.read_csv(io.BytesIO(series.data))["temp"].tolist() == [3.5, 14.0]


def test_wide_frames_list_a_few_columns() -> None:
    wide = pd.DataFrame([[0] * 30], columns=[f"c{i}" for i in range(30)])
    assert as_file("w", wide).description.endswith("c11, … (30 in all)")


def test_arrays_as_npy_or_csv() -> None:
    array = np.arange(6, dtype=np.int32).reshape(2, 3)
    npy = as_file("grid", array)
    assert npy.filename == "grid.npy"
    assert "shape 2 × 3, dtype int32" in npy.description
    np.testing.assert_array_equal(np.load(io.BytesIO(npy.data)), array)
    csv = as_file("grid", array, "csv")
    assert csv.data.decode().splitlines() == ["0,1,2", "3,4,5"]
    with pytest.raises(DataFileError, match="1-D or 2-D"):
        as_file("cube", np.zeros((2, 2, 2)), "csv")
    with pytest.raises(DataFileError, match="npy or csv"):
        as_file("grid", array, "parquet")


def test_files_text_bytes_and_json(tmp_path: Path) -> None:
    path = tmp_path / "notes.md"
    path.write_text("# hi")
    uploaded = as_file("p", path)
    assert (uploaded.filename, uploaded.data) == ("notes.md", b"# hi")
    assert as_file("p", str(path)).filename == "notes.md"
    with pytest.raises(DataFileError, match="uploaded as it is"):
        as_file("p", path, "csv")
    assert as_file("blob", b"\x00\x01").filename == "blob.bin"
    assert as_file("note", "not a path\nat all").data == b"not a path\nat all"
    assert as_file("long", "x" * 5000).filename == "long.txt"  # no OSError from the path test
    assert json.loads(as_file("cfg", {"a": [1, 2]}).data) == {"a": [1, 2]}


def test_what_cannot_be_a_file_says_what_can() -> None:
    with pytest.raises(DataFileError, match="cannot write a object.*DataFrame, array"):
        as_file("x", object())
    with pytest.raises(DataFileError, match="one of csv, parquet, json, npy"):
        as_file("x", [1], "xlsx")
    with pytest.raises(DataFileError, match="csv, parquet or json"):
        as_file("x", pd.DataFrame({"a": [1]}), "npy")
