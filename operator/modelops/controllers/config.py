"""Operator configuration from its environment (set by the Helm chart)."""

from __future__ import annotations

import os
from pathlib import Path

from modelops import __version__
from modelops.evidence.signature import key_hint
from modelops.resources.modeldeployment import ServerSettings
from modelops.resources.policy import Policy, parse_list

#: The image that runs the trainer and the server unless a resource names another.
RUNTIME_IMAGE = os.environ.get("MODELOPS_RUNTIME_IMAGE", f"modelops:{__version__}")

#: Where the chart asks for Argo CD health checks to be merged into argocd-cm (both empty: not at all).
ARGOCD_NAMESPACE = os.environ.get("MODELOPS_ARGOCD_NAMESPACE", "")
ARGOCD_HEALTH_DIR = os.environ.get("MODELOPS_ARGOCD_HEALTH_DIR", "")

#: The public keys (PEM) a served version's signature must verify against: the chart mounts one file per key,
#: named after the key (`<name>.pem`).
TRUSTED_KEYS_DIR = os.environ.get("MODELOPS_TRUSTED_KEYS_DIR", "")


def trusted_keys(folder: str) -> tuple[tuple[str, bytes], ...]:
    """The keys in the chart's folder; a file that is no public key stops the operator at start, naming it."""
    if not folder or not Path(folder).is_dir():
        return ()
    keys = tuple((path.stem, path.read_bytes()) for path in sorted(Path(folder).glob("*.pem")))
    for name, pem in keys:
        try:
            key_hint(pem)
        except ValueError:
            raise SystemExit(f"signing.trustedKeys.{name}: not a PEM public key") from None
    return keys


def switch(value: str) -> bool | None:
    """ "true" or "false"; anything else (unset) is None, the default."""
    return {"true": True, "false": False}.get(value.strip().lower())


#: What the chart's administrator allows: Prometheus servers, webhook receivers, artifact locations, other namespaces'
#: Gateways (comma-separated).
POLICY = Policy(
    prometheus_urls=parse_list(os.environ.get("MODELOPS_PROMETHEUS_URLS", "")),
    webhook_prefixes=parse_list(os.environ.get("MODELOPS_WEBHOOK_URL_PREFIXES", "")),
    artifact_prefixes=parse_list(os.environ.get("MODELOPS_ARTIFACT_PREFIXES", "")),
    gateway_parents=parse_list(os.environ.get("MODELOPS_GATEWAY_PARENTS", "")),
    trusted_keys=trusted_keys(TRUSTED_KEYS_DIR),
    allow_unsigned=switch(os.environ.get("MODELOPS_ALLOW_UNSIGNED", "")),
)
SERVERS = ServerSettings(image=RUNTIME_IMAGE, trusted_keys=POLICY.trusted_keys)
