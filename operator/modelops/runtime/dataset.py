"""Read a dataset by URI (fsspec), and fingerprint it."""

from __future__ import annotations

import hashlib
from pathlib import PurePosixPath

import fsspec
import pandas as pd

BUNDLED_PREFIX = "sklearn://"


class DatasetError(ValueError):
    """The dataset cannot be read; the message says why."""


def _bundled(name: str) -> pd.DataFrame:
    """A dataset shipped inside scikit-learn (no download), as a frame whose label column is `target`."""
    from sklearn import datasets

    loaders = {
        "breast_cancer": datasets.load_breast_cancer,
        "iris": datasets.load_iris,
        "wine": datasets.load_wine,
        "diabetes": datasets.load_diabetes,
        "digits": datasets.load_digits,
        "linnerud": datasets.load_linnerud,
    }
    if name not in loaders:
        raise DatasetError(f"dataset.uri: unknown bundled dataset {name!r}; choose one of {', '.join(sorted(loaders))}")
    return loaders[name](as_frame=True).frame


def infer_format(uri: str) -> str:
    suffixes = PurePosixPath(uri.split("?", 1)[0]).suffixes
    if ".parquet" in suffixes or ".pq" in suffixes:
        return "parquet"
    if ".csv" in suffixes:
        return "csv"
    raise DatasetError(f"dataset.format: cannot infer the format of {uri!r}; set dataset.format to csv or parquet")


def load(uri: str, fmt: str | None = None) -> pd.DataFrame:
    if uri.startswith(BUNDLED_PREFIX):
        return _bundled(uri.removeprefix(BUNDLED_PREFIX).strip("/"))
    fmt = fmt or infer_format(uri)
    try:
        with fsspec.open(uri, "rb", compression="infer") as handle:
            return pd.read_parquet(handle) if fmt == "parquet" else pd.read_csv(handle)
    except FileNotFoundError:
        raise DatasetError(f"dataset.uri: {uri} does not exist") from None
    except (ValueError, OSError) as error:
        raise DatasetError(f"dataset.uri: cannot read {uri} as {fmt}: {type(error).__name__}") from None


def digest(frame: pd.DataFrame) -> str:
    """SHA-256 of the rows and column names, independent of the file format it came from."""
    h = hashlib.sha256()
    h.update("\x1f".join(map(str, frame.columns)).encode())
    h.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return "sha256:" + h.hexdigest()
