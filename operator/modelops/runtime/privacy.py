"""Personal data is dropped or hashed before anything else sees the rows."""

from __future__ import annotations

import hashlib
import hmac

import pandas as pd


class PrivacyError(ValueError):
    """A privacy rule cannot be applied; refusing is safer than training on raw personal data."""


def protect(frame: pd.DataFrame, *, drop: list[str], hash_columns: list[str], salt: bytes | None) -> pd.DataFrame:
    """Drop some columns and replace others by a keyed hash (HMAC-SHA256) of their value; nulls stay null."""
    missing = [c for c in [*drop, *hash_columns] if c not in frame.columns]
    if missing:
        raise PrivacyError(
            f"privacy: column {missing[0]!r} is not in the dataset; refusing to train while a privacy rule "
            "matches nothing (a renamed column would leak)"
        )
    if hash_columns and not salt:
        raise PrivacyError("privacy.saltSecretRef: the salt is empty or missing")
    out = frame.drop(columns=drop)
    for column in hash_columns:
        out[column] = out[column].map(
            lambda v: None if pd.isna(v) else hmac.new(salt, str(v).encode(), hashlib.sha256).hexdigest()  # type: ignore[arg-type]
        )
    return out
