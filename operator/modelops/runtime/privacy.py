"""Personal data is dropped or hashed before anything else sees the rows; columns that look personal and that no
rule covers are named (never quoted), so the build can warn before such data reaches the model."""

from __future__ import annotations

import hashlib
import hmac
import re

import pandas as pd

from modelops.contract.training import PersonalColumn

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
_PHONE = re.compile(r"^\+?[\d\s().-]{7,20}$")
_PERSONAL_NAME = re.compile(
    r"e-?mail|phone|mobile|ssn|social.?security|passport|iban|first.?name|last.?name|full.?name|surname|"
    r"street|address|birth|(^|[_\s-])dob($|[_\s-])|(^|[_\s-])id$|_id$",
    re.IGNORECASE,
)
#: A column looks like one kind of personal value when at least this share of a sample of it does.
SHARE = 0.5
SAMPLE = 1000


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


def unprotected(frame: pd.DataFrame, covered: set[str]) -> list[PersonalColumn]:
    """Columns that look personal (e-mail addresses, phone numbers, unique identifiers, or a telling name) and
    are not in `covered` (the privacy rules and the target)."""
    found = []
    for column in frame.columns:
        if column in covered:
            continue
        values = frame[column].dropna()
        sample = values.head(SAMPLE).astype(str)
        looks_like = None
        textual = not (pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values))
        if textual and len(sample):
            if sample.str.match(_EMAIL).mean() >= SHARE:
                looks_like = "e-mail addresses"
            elif (sample.str.match(_PHONE) & (sample.str.count(r"\d") >= 7)).mean() >= SHARE:
                looks_like = "phone numbers"
            elif len(values) >= 20 and values.nunique() >= 0.95 * len(values):
                looks_like = "identifiers"
        if looks_like is None and _PERSONAL_NAME.search(str(column)):
            looks_like = "personal data (by its name)"
        if looks_like:
            found.append(PersonalColumn(name=str(column), looks_like=looks_like))
    return found
