"""Operator configuration from its environment (set by the Helm chart)."""

from __future__ import annotations

import os

from modelops import __version__
from modelops.resources.policy import Policy, parse_list

#: The image that runs the trainer and the server unless a resource names another.
RUNTIME_IMAGE = os.environ.get("MODELOPS_RUNTIME_IMAGE", f"modelops:{__version__}")

#: Where the chart asks for Argo CD health checks to be merged into argocd-cm (both empty: not at all).
ARGOCD_NAMESPACE = os.environ.get("MODELOPS_ARGOCD_NAMESPACE", "")
ARGOCD_HEALTH_DIR = os.environ.get("MODELOPS_ARGOCD_HEALTH_DIR", "")

#: What the chart's administrator allows: Prometheus servers, webhook receivers, artifact locations, other namespaces'
#: Gateways (comma-separated).
POLICY = Policy(
    prometheus_urls=parse_list(os.environ.get("MODELOPS_PROMETHEUS_URLS", "")),
    webhook_prefixes=parse_list(os.environ.get("MODELOPS_WEBHOOK_URL_PREFIXES", "")),
    artifact_prefixes=parse_list(os.environ.get("MODELOPS_ARTIFACT_PREFIXES", "")),
    gateway_parents=parse_list(os.environ.get("MODELOPS_GATEWAY_PARENTS", "")),
)
