"""Operator configuration from its environment (set by the Helm chart)."""

from __future__ import annotations

import os

from modelops import __version__

#: The image that runs the trainer and the server unless a resource names another.
RUNTIME_IMAGE = os.environ.get("MODELOPS_RUNTIME_IMAGE", f"modelops:{__version__}")

#: Where the chart asks for Argo CD health checks to be merged into argocd-cm (both empty: not at all).
ARGOCD_NAMESPACE = os.environ.get("MODELOPS_ARGOCD_NAMESPACE", "")
ARGOCD_HEALTH_DIR = os.environ.get("MODELOPS_ARGOCD_HEALTH_DIR", "")
