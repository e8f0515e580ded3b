"""Messages from code the trainer does not control (scikit-learn, pandas, a user's function) may quote the data
they choked on — `could not convert string to float: 'alice@example.com'`. Before such a message reaches a log,
the build's status or an Event, what it quotes is masked; the kind of failure stays readable."""

from __future__ import annotations

import re

MASK = "<redacted>"
_QUOTED = re.compile(r"'[^'\n]*'|\"[^\"\n]*\"")
_EMAIL = re.compile(r"[^\s@'\"<>]+@[^\s@'\"<>]+")
_NUMBER = re.compile(r"\+?\d[\d ().-]{4,}\d")  # six or more digits and separators: phone numbers, ids, amounts


def redact(text: str) -> str:
    """The message with quoted values, e-mail addresses and long numbers masked."""
    for pattern in (_QUOTED, _EMAIL, _NUMBER):
        text = pattern.sub(MASK, text)
    return text
