"""Signing keys as a team would make them: P-256, PEM, unencrypted."""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from modelops.evidence.signature import public_key_of


def private_key() -> bytes:
    """A new P-256 private key (PEM)."""
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def keypair(folder: Path, name: str) -> tuple[Path, bytes]:
    """A private key written to `folder/<name>.key`, and its public key (PEM)."""
    path = folder / f"{name}.key"
    path.write_bytes(private_key())
    return path, public_key_of(path.read_bytes())
