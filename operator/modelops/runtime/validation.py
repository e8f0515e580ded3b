"""Declared columns checked against the data: one message per broken rule, each naming its column.

Messages give counts and the declared bounds, never a value of the data, so logs and status stay free of personal
data.
"""

from __future__ import annotations

import pandas as pd

from modelops.contract.serving import NUMERIC_TYPES
from modelops.contract.training import Column


def violations(frame: pd.DataFrame, columns: list[Column], target: str) -> list[str]:
    problems: list[str] = []
    if target not in frame.columns:
        problems.append(f"dataset.target: column {target!r} is not in the dataset")
    for column in columns:
        if column.name not in frame.columns:
            problems.append(f"column {column.name!r}: declared but not in the dataset")
            continue
        problems.extend(_check(frame[column.name], column))
    return problems


def _check(values: pd.Series, column: Column) -> list[str]:
    name = repr(column.name)
    problems = []
    null_fraction = float(values.isna().mean()) if len(values) else 0.0
    if null_fraction > column.max_null_fraction:
        problems.append(
            f"column {name}: {null_fraction:.1%} of values are missing, more than maxNullFraction "
            f"{column.max_null_fraction:.1%}"
        )
    present = values.dropna()
    if column.type in NUMERIC_TYPES:
        numeric = pd.to_numeric(present, errors="coerce")
        bad_type = int(numeric.isna().sum())
        if bad_type:
            problems.append(f"column {name}: {bad_type} values are not numbers")
        numeric = numeric.dropna()
        if column.type == "integer" and len(numeric) and not (numeric == numeric.round()).all():
            problems.append(f"column {name}: {int((numeric != numeric.round()).sum())} values are not integers")
        if column.minimum is not None and (below := int((numeric < column.minimum).sum())):
            problems.append(f"column {name}: {below} values are below the minimum {column.minimum:g}")
        if column.maximum is not None and (above := int((numeric > column.maximum).sum())):
            problems.append(f"column {name}: {above} values are above the maximum {column.maximum:g}")
    elif column.type == "boolean":
        bad = int((~present.astype(str).str.lower().isin({"true", "false", "0", "1"})).sum())
        if bad:
            problems.append(f"column {name}: {bad} values are not booleans")
    if column.allowed_values is not None:
        allowed = set(column.allowed_values)
        outside = present.astype(str)[~present.astype(str).isin(allowed)]
        if len(outside):
            problems.append(f"column {name}: {len(outside)} values are not in allowedValues")
    return problems
