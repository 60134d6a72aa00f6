"""Python values as workspace files: what ``%%agent --with NAME`` uploads.

``as_file(name, value, fmt)`` turns a DataFrame or Series (CSV by default, or parquet or
JSON), a NumPy array (``.npy``, or CSV for 1-D/2-D), a path to an existing file, text,
bytes or JSON-able data into ``DataFile(filename, data, description)``; the description is
the line the agent reads in its prompt ("sales.csv: DataFrame, 120 rows × 4 columns: ...").
Nothing is imported that the value does not already bring (pandas, NumPy, pyarrow).
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["FORMATS", "DataFile", "DataFileError", "as_file"]

FORMATS = ("csv", "parquet", "json", "npy")


class DataFileError(ValueError):
    """The value cannot become a workspace file (the message says what to do instead)."""


@dataclass(frozen=True)
class DataFile:
    filename: str
    data: bytes
    description: str


def _module(value: Any) -> str:
    return type(value).__module__.split(".")[0]


def _columns(frame: Any, limit: int = 12) -> str:
    names = [str(c) for c in frame.columns]
    shown = ", ".join(names[:limit])
    return shown + (f", … ({len(names)} in all)" if len(names) > limit else "")


def _frame(name: str, frame: Any, fmt: str) -> DataFile:
    rows, cols = frame.shape
    # a default RangeIndex carries nothing; any other index is data the agent needs
    keep_index = type(frame.index).__name__ != "RangeIndex"
    what = f"DataFrame, {rows} rows × {cols} columns: {_columns(frame)}"
    if fmt == "parquet":
        buffer = io.BytesIO()
        try:
            frame.to_parquet(buffer, index=keep_index)
        except ImportError as exc:
            raise DataFileError(f"--with {name}:parquet needs pyarrow ({exc})") from None
        return DataFile(f"{name}.parquet", buffer.getvalue(), f"{name}.parquet: {what}")
    if fmt == "json":
        text = frame.to_json(orient="records", date_format="iso")
        return DataFile(f"{name}.json", text.encode(), f"{name}.json: {what}, as records")
    if fmt != "csv":
        raise DataFileError(f"--with {name}: a DataFrame is written as csv, parquet or json")
    text = frame.to_csv(index=keep_index)
    return DataFile(f"{name}.csv", text.encode(), f"{name}.csv: {what}")


def _array(name: str, array: Any, fmt: str) -> DataFile:
    import numpy as np  # the value is a NumPy array: NumPy is there

    shape = " × ".join(str(n) for n in array.shape) or "scalar"
    what = f"NumPy array, shape {shape}, dtype {array.dtype}"
    if fmt == "csv":
        if array.ndim not in (1, 2):
            raise DataFileError(f"--with {name}:csv needs a 1-D or 2-D array, not {array.ndim}-D")
        buffer = io.StringIO()
        np.savetxt(buffer, array, delimiter=",", fmt="%s")
        return DataFile(f"{name}.csv", buffer.getvalue().encode(), f"{name}.csv: {what}")
    if fmt not in ("npy", ""):
        raise DataFileError(f"--with {name}: an array is written as npy or csv")
    buffer_b = io.BytesIO()
    np.save(buffer_b, array, allow_pickle=False)
    return DataFile(f"{name}.npy", buffer_b.getvalue(), f"{name}.npy: {what} (numpy.load)")


def _is_file(value: str | os.PathLike[str]) -> bool:
    try:
        return Path(value).is_file()
    except (OSError, ValueError):  # text that is no path: too long, NUL bytes
        return False


def as_file(name: str, value: Any, fmt: str = "") -> DataFile:
    """The workspace file for the notebook variable ``name`` holding ``value``."""
    if fmt and fmt not in FORMATS:
        raise DataFileError(f"--with {name}:{fmt}: the format is one of {', '.join(FORMATS)}")
    if _module(value) == "pandas" and hasattr(value, "to_frame") and hasattr(value, "name"):
        value = value.to_frame()  # a Series: one column
    if _module(value) == "pandas" and hasattr(value, "to_csv") and hasattr(value, "columns"):
        return _frame(name, value, fmt or "csv")
    if _module(value) == "numpy" and hasattr(value, "shape") and hasattr(value, "dtype"):
        return _array(name, value, fmt)
    if isinstance(value, (str, os.PathLike)) and _is_file(value):
        path = Path(value)
        if fmt:
            raise DataFileError(f"--with {name}: a file is uploaded as it is; drop ':{fmt}'")
        size = path.stat().st_size
        return DataFile(path.name, path.read_bytes(), f"{path.name}: the file {path} ({size} B)")
    if isinstance(value, (bytes, bytearray, memoryview)):
        return DataFile(f"{name}.bin", bytes(value), f"{name}.bin: {len(value)} bytes")
    if isinstance(value, str):
        return DataFile(f"{name}.txt", value.encode(), f"{name}.txt: text, {len(value)} chars")
    try:
        text = json.dumps(value, indent=2, ensure_ascii=False, default=None)
    except (TypeError, ValueError):
        raise DataFileError(
            f"--with {name}: cannot write a {type(value).__name__} to a file; pass a "
            "DataFrame, array, path, str, bytes or JSON-able data"
        ) from None
    return DataFile(f"{name}.json", text.encode(), f"{name}.json: {type(value).__name__} as JSON")
