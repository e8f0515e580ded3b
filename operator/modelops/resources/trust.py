"""Whether a version's record is trusted: signed by a key the administrator trusts, over the very files it records.

The operator checks the bundle the ModelVersion records, never a file (it may not read a tenant's store): the
signature must verify against a trusted key and list the model, the baseline and the provenance with the digests the
record gives, and the card with the digest of the card the record rebuilds. The server checks the files themselves
before loading.
"""

from __future__ import annotations

import functools

from modelops.api.v1alpha1 import ModelVersion
from modelops.contract.training import BASELINE_FILE, MODEL_FILE
from modelops.evidence import card, signature
from modelops.evidence.card import CARD_FILE, CardFacts
from modelops.evidence.provenance import PROVENANCE_FILE
from modelops.evidence.signature import SignatureError, Signed

from .policy import Policy


def card_facts(version: ModelVersion) -> CardFacts:
    """The facts of the version's signed card, from its record alone (the trainer wrote the card from the same)."""
    spec, lineage = version.spec, version.spec.lineage
    declared = spec.model_card
    thresholds = (spec.validation.thresholds if spec.validation else None) or []
    return CardFacts(
        model=spec.model,
        namespace=version.metadata.namespace or "",
        build=(lineage.build if lineage else None) or "",
        task=spec.task,
        artifact_digest=spec.artifact.digest,
        dataset_uri=(lineage.dataset_uri if lineage else None) or "",
        dataset_digest=(lineage.dataset_digest if lineage else None) or "",
        estimator=(lineage.estimator if lineage else None) or "",
        parameters=(lineage.parameters if lineage else None) or {},
        metrics=spec.metrics,
        slices=spec.slice_metrics or {},
        thresholds=[t.wire() for t in thresholds],
        intended_use=declared.intended_use if declared else None,
        limitations=(declared.limitations if declared else None) or [],
    )


def card_digest(version: ModelVersion) -> str:
    return signature.sha256(card.canonical(card.cyclonedx(card_facts(version))))


def signed(version: ModelVersion, policy: Policy) -> Signed:
    """What a trusted key vouches for in the version's signature; SignatureError saying what failed otherwise."""
    record = version.spec.signature
    if record is None:
        raise SignatureError("it is not signed")
    vouched = _verified(record.bundle, policy.trusted_keys)
    provenance = version.spec.provenance
    recorded = {
        MODEL_FILE: version.spec.artifact.digest,
        BASELINE_FILE: version.spec.baseline_digest,
        CARD_FILE: card_digest(version),
        PROVENANCE_FILE: provenance.digest if provenance else None,
    }
    for name, digest in recorded.items():
        if name not in vouched.files:
            raise SignatureError(f"the signature does not cover {name}")
        if vouched.files[name] != digest:
            records = digest or "none"
            raise SignatureError(f"{name} was signed as {vouched.files[name]}, the version records {records}")
    return vouched


def verdict(version: ModelVersion, policy: Policy) -> tuple[bool, str]:
    """Whether the version may serve as far as trust goes, and why, for people."""
    if version.spec.signature is None:
        if policy.unsigned_allowed():
            return True, "unsigned; the administrator allows unsigned versions"
        return False, "it is not signed (the chart's signing.allowUnsigned is off)"
    if not policy.trusted_keys:
        return True, "signed; not verified, since no key is trusted"
    try:
        return True, f"signed by trusted key {signed(version, policy).key}"
    except SignatureError as error:
        return False, str(error)


def problem(version: ModelVersion, policy: Policy) -> str | None:
    """Why the version may not serve for want of trust, naming it; None when it may."""
    trusted, why = verdict(version, policy)
    return None if trusted else f"{version.metadata.name}: {why}"


@functools.lru_cache(maxsize=256)
def _verified(bundle: str, trusted: tuple[tuple[str, bytes], ...]) -> Signed:
    """Verifying costs a key load and an ECDSA check: each bundle is checked once per set of trusted keys."""
    return signature.verify(bundle, dict(trusted))
