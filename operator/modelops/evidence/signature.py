"""Model signatures in the OpenSSF model-signing format: a sigstore bundle whose DSSE envelope carries an in-toto
statement listing each signed file's sha256, signed with an elliptic-curve key (no network, no transparency log).

The trainer signs its export folder; the operator checks a bundle against the administrator's trusted keys without
any file (it may not read a tenant's store); the server checks the files it downloaded against the same bundle
before it loads one of them.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import json
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

#: A signed file's name in the bundle: one plain name in the build's folder, never a path.
FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


class SignatureError(ValueError):
    """Why a signature cannot be trusted, for a person: it names the key or the file, never a secret."""


@dataclass(frozen=True)
class Signed:
    """What a trusted signature vouches for."""

    #: The trusted key's name (as the administrator named it).
    key: str
    #: Each signed file's name and its `sha256:` digest.
    files: Mapping[str, str]


def key_hint(public_key_pem: bytes) -> str:
    """The hint a bundle carries to name its key: the sha256 of the public key in PEM (model-signing's own rule)."""
    key = serialization.load_pem_public_key(public_key_pem)
    pem = key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(pem).hexdigest()


def new_private_key() -> bytes:
    """A new P-256 signing key (PEM, unencrypted), as `openssl ecparam -name prime256v1 -genkey` makes one."""
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def public_key_of(private_key_pem: bytes) -> bytes:
    """The public key (PEM) of a private key (PEM): what an administrator trusts for a build's signing key."""
    key = serialization.load_pem_private_key(private_key_pem, password=None)
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def sign(folder: Path, private_key: Path) -> str:
    """Sign every file in `folder` (its name is the statement's subject) and return the bundle as JSON text."""
    from model_signing import signing

    with tempfile.TemporaryDirectory() as tmp:
        bundle = Path(tmp) / "bundle.json"
        signing.Config().use_elliptic_key_signer(private_key=private_key).sign(folder, bundle)  # type: ignore[no-untyped-call]
        return bundle.read_text()


def hint_of(bundle: str) -> str:
    """The key hint a bundle names, or "" when it names none (or is no bundle)."""
    try:
        material = json.loads(bundle)["verificationMaterial"]
        return str(material.get("publicKey", {}).get("hint") or "")
    except (ValueError, KeyError, TypeError, AttributeError):
        return ""


def listed(bundle: str) -> dict[str, str]:
    """The files a bundle lists, name → `sha256:` digest, read from its in-toto statement without checking the
    signature: enough to tell whether it covers a card, not whether anyone trusted signed it."""
    try:
        envelope = json.loads(bundle)["dsseEnvelope"]
        statement = json.loads(base64.b64decode(envelope["payload"], validate=True))
        resources = statement["predicate"]["resources"]
        return {str(r["name"]): f"sha256:{r['digest']}" for r in resources if r.get("algorithm", "sha256") == "sha256"}
    except (ValueError, KeyError, TypeError, AttributeError, binascii.Error) as error:
        raise SignatureError(f"it is no model-signing bundle ({type(error).__name__}: {error})") from None


def verify(bundle: str, trusted: Mapping[str, bytes]) -> Signed:
    """The files a bundle vouches for, if a trusted key signed it; SignatureError otherwise.

    `trusted` maps the administrator's names to public keys (PEM). The key is chosen by the bundle's hint, so a
    wrong key is named as such rather than reported as a bad signature.
    """
    from model_signing._signing import sign_sigstore_pb

    if not trusted:
        raise SignatureError("no key is trusted")
    hint = hint_of(bundle)
    named = [name for name, pem in trusted.items() if key_hint(pem) == hint]
    if not named:
        known = ", ".join(sorted(trusted))
        raise SignatureError(f"signed by a key that is not trusted (key hint {hint[:12] or 'none'}; trusted: {known})")
    name = named[0]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "bundle.json"
            path.write_text(bundle)
            signature = sign_sigstore_pb.Signature.read(path)
        manifest = _verifier(trusted[name]).verify(signature)
    except Exception as error:  # the library raises ValueError, InvalidSignature, KeyError, protobuf's errors
        raise SignatureError(f"the signature does not verify against trusted key {name}: {_why(error)}") from None
    files: dict[str, str] = {}
    for resource in manifest.resource_descriptors():
        if not FILE_NAME.fullmatch(resource.identifier) or resource.digest.algorithm != "sha256":
            raise SignatureError(f"the signature lists {resource.identifier!r}, which is not a sha256 of a plain file")
        files[resource.identifier] = f"sha256:{resource.digest.digest_hex}"
    return Signed(key=name, files=files)


def verify_folder(folder: Path, bundle: str, trusted: Mapping[str, bytes]) -> Signed:
    """Check the files in `folder` against a trusted bundle with the library's own verifier: every signed file
    present and unchanged, no other file."""
    from model_signing import verifying

    signed = verify(bundle, trusted)
    with tempfile.TemporaryDirectory() as tmp:
        key, path = Path(tmp) / "key.pem", Path(tmp) / "bundle.json"
        key.write_bytes(trusted[signed.key])
        path.write_text(bundle)
        try:
            verifying.Config().use_elliptic_key_verifier(public_key=key).verify(folder, path)  # type: ignore[no-untyped-call]
        except ValueError as error:
            raise SignatureError(f"the files do not match their signature: {_why(error)}") from None
    return signed


def sha256(content: bytes) -> str:
    return "sha256:" + hashlib.sha256(content).hexdigest()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


@functools.lru_cache(maxsize=64)
def _verifier(public_key_pem: bytes):  # type: ignore[no-untyped-def]
    from model_signing._signing import sign_ec_key

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "key.pem"
        path.write_bytes(public_key_pem)
        return sign_ec_key.Verifier(path)


def _why(error: Exception) -> str:
    return (str(error).strip() or type(error).__name__)[:300]
