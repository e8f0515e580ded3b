"""The Helm chart lints, renders our CRDs and an operator that passes Pod Security "restricted"."""

from __future__ import annotations

import subprocess

import yaml

from modelops.devcluster.toolchain import Toolchain
from tests.conftest import ROOT
from tests.integration.conftest import Kubectl

CHART = ROOT / "charts" / "modelops"


def helm(tools: Toolchain, *args: str) -> str:
    done = subprocess.run([str(tools.helm), *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_chart_lints_and_renders(cluster: Toolchain) -> None:
    helm(cluster, "lint", str(CHART), "--kube-version", "1.34.4")
    rendered = list(
        yaml.safe_load_all(helm(cluster, "template", "mo", str(CHART), "--include-crds", "--kube-version", "1.34.4"))
    )
    kinds = sorted(d["kind"] for d in rendered if d)
    assert kinds.count("CustomResourceDefinition") == 4
    assert "Deployment" in kinds and "ServiceAccount" in kinds


def test_operator_pod_passes_restricted_pod_security(cluster: Toolchain, kubectl: Kubectl) -> None:
    kubectl.run("label", "namespace", kubectl.namespace, "pod-security.kubernetes.io/enforce=restricted")
    rendered = helm(cluster, "template", "mo", str(CHART), "--namespace", kubectl.namespace, "--kube-version", "1.34.4")
    done = kubectl.apply(rendered, "--dry-run=server", check=False)
    assert done.returncode == 0, done.stderr
    assert "violate" not in done.stderr, done.stderr
