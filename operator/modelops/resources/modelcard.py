"""A ModelVersion's model card for people: the card its build signed, rebuilt from the record, whether the record's
signature covers exactly that card, and what the cluster decided afterwards (approval, champion, serving), which no
signature covers and the card says so.

Pure: the caller reads the version (and the public key, if any); nothing here touches the cluster or a store.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from modelops.api.v1alpha1 import ModelVersion
from modelops.api.v1alpha1.modelversion import CheckResult, ServingRef
from modelops.contract.training import Threshold
from modelops.evidence import card, signature
from modelops.evidence.card import CARD_FILE, CardFacts
from modelops.evidence.signature import SignatureError

from .lineage import ApprovalInfo, approval_of
from .trust import card_facts

#: The name the given public key goes by in `signature.verify`'s messages.
GIVEN_KEY = "given"


@dataclass(frozen=True)
class CardView:
    """What `modelops card` shows: the signed card, how far its signature is known to cover it, and the unsigned
    facts of the cluster beside it."""

    name: str
    version: int
    facts: CardFacts
    #: The card as the build signed it (CycloneDX ML-BOM), and its canonical bytes: what `sha256sum` checks.
    card: dict[str, Any]
    content: bytes
    #: Whether the record's signature lists `model-card.json` with exactly the digest of `content`.
    covered: bool
    #: For people: what the signature says of the card, and whether it was verified.
    signature: str
    #: The key that verified the signature, when one was given and did.
    verified_key: str | None
    stage: str | None
    approval: ApprovalInfo
    champion: str | None
    checks: Sequence[CheckResult]
    served_by: Sequence[ServingRef]

    @property
    def digest(self) -> str:
        return signature.sha256(self.content)

    @property
    def verified(self) -> bool:
        """A given key verified the signature and it covers this very card: the card can be relied on."""
        return self.verified_key is not None and self.covered


def view(version: ModelVersion, public_key: bytes | None = None) -> CardView:
    """The version's card; with `public_key` (PEM), the signature is verified with it, otherwise only read."""
    facts = card_facts(version)
    signed_card = card.cyclonedx(facts)
    content = card.canonical(signed_card)
    covered, sentence, key = _coverage(version, signature.sha256(content), public_key)
    status = version.status
    return CardView(
        name=version.metadata.name or "",
        version=version.spec.version,
        facts=facts,
        card=signed_card,
        content=content,
        covered=covered,
        signature=sentence,
        verified_key=key,
        stage=status.stage if status else None,
        approval=approval_of(version),
        champion=status.champion if status else None,
        checks=list((status.checks if status else None) or []),
        served_by=list((status.served_by if status else None) or []),
    )


def _coverage(version: ModelVersion, digest: str, public_key: bytes | None) -> tuple[bool, str, str | None]:
    """(covered, the sentence, the verifying key's name) for the card of this digest."""
    record = version.spec.signature
    if record is None:
        return False, "the version is not signed", None
    files: Mapping[str, str]
    key: str | None = None
    if public_key is None:
        try:
            files = signature.listed(record.bundle)
        except SignatureError as error:
            return False, f"the signature cannot be read: {error}", None
        how = "; not verified: pass --key"
    else:
        try:
            vouched = signature.verify(record.bundle, {GIVEN_KEY: public_key})
        except SignatureError as error:
            return False, f"not verified: {error}", None
        except ValueError:  # cryptography's word for a file that is no PEM public key
            return False, "not verified: the given key is not a PEM public key", None
        files, key, how = vouched.files, vouched.key, ", verified with the given key"
    signed_as = files.get(CARD_FILE)
    if signed_as is None:
        return False, f"the signature does not list {CARD_FILE}{how}", key
    if signed_as != digest:
        return (
            False,
            f"the signature lists {CARD_FILE} as {signed_as} but this record's card is {digest}{how}",
            key,
        )
    build = version.spec.lineage.build if version.spec.lineage else None
    by = f"build {build}" if build else "its build"
    return True, f"the card is the one {by} signed ({CARD_FILE} {digest}){how}", key


def markdown(shown: CardView) -> str:
    """The card as Markdown for people: the signed facts first, then what the cluster says, marked unsigned."""
    facts = shown.facts
    bars = {t.metric: t for t in facts.thresholds}
    lines = [
        f"# Model card: {facts.model} v{shown.version} ({facts.namespace})",
        "",
        f"ModelVersion `{shown.name}`" + (f", built by ModelBuild `{facts.build}`." if facts.build else "."),
        "",
        "## Intended use",
        "",
        facts.intended_use or "Not declared.",
        "",
        "## Limitations",
        "",
        *([f"- {limit}" for limit in facts.limitations] or ["None declared."]),
        "",
        "## The model",
        "",
        f"- Task: {facts.task}",
        f"- Estimator: `{facts.estimator or 'unknown'}`",
        f"- Parameters: {_parameters(facts.parameters)}",
        f"- Artifact: `{facts.artifact_digest}`",
        "",
        "## The data",
        "",
        f"- Dataset: `{facts.dataset_uri or 'unknown'}`",
        f"- Digest (of the rows after the privacy rules): `{facts.dataset_digest or 'unknown'}`",
        "",
        "## Metrics on the holdout",
        "",
        "| Metric | Value | Had to be |",
        "|---|---|---|",
        *(f"| {m} | {v:.4g} | {_bar(bars.get(m))} |" for m, v in sorted(facts.metrics.items())),
        "",
        *(
            ["## Metrics by slice of the holdout", "", *map(_slice, sorted(facts.slices.items())), ""]
            if facts.slices
            else []
        ),
        "## Approval and serving (from the cluster, not signed)",
        "",
        f"- Stage: {shown.stage or 'not judged yet'}",
        f"- Decision: {_decision(shown.approval)}",
        f"- Champion it was compared with: {shown.champion or 'none'}",
        "- Checks:" + ("" if shown.checks else " none yet"),
        *(f"  - {'passed' if c.passed else 'failed'} `{c.name}`: {c.message}" for c in shown.checks),
        f"- Served by: {', '.join(f'md/{s.deployment} ({s.track})' for s in shown.served_by) or 'nothing'}",
        "",
        f"**Signature:** {shown.signature}.",
    ]
    return "\n".join(lines) + "\n"


def _slice(item: tuple[str, Mapping[str, float]]) -> str:
    name, measured = item
    said = ", ".join(f"{m} {v:.4g}" for m, v in sorted(measured.items())) or "too few rows to measure"
    return f"- {name}: {said}"


def _parameters(parameters: Mapping[str, Any]) -> str:
    return ", ".join(f"`{k}={json.dumps(v)}`" for k, v in sorted(parameters.items())) or "defaults"


def _bar(threshold: Threshold | None) -> str:
    if threshold is None:
        return "no bar"
    bounds = ([f"≥ {threshold.min:g}"] if threshold.min is not None else []) + (
        [f"≤ {threshold.max:g}"] if threshold.max is not None else []
    )
    return " and ".join(bounds)


def _decision(approval: ApprovalInfo) -> str:
    if approval.state == "Pending":
        return "pending (nobody has approved or rejected it)"
    when = f" at {approval.time.isoformat()}" if approval.time else ""
    why = f": {approval.reason}" if approval.reason else ""
    return f"{approval.state} by {approval.by or 'unknown'}{when}{why}"
