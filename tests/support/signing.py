"""Signing keys as a team would make them: P-256, PEM, unencrypted."""

from __future__ import annotations

from pathlib import Path

from modelops.evidence.signature import new_private_key as private_key
from modelops.evidence.signature import public_key_of


def keypair(folder: Path, name: str) -> tuple[Path, bytes]:
    """A private key written to `folder/<name>.key`, and its public key (PEM)."""
    path = folder / f"{name}.key"
    path.write_bytes(private_key())
    return path, public_key_of(path.read_bytes())


__all__ = ["keypair", "private_key"]
