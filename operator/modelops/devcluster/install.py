"""Put the ModelOps API on the local cluster: the CRDs with the admission policies beside them, and the chart's
approver and user roles (what `helm install` would add, without the operator Deployment: the tests run their own
operators). The roles are rendered as release `modelops-dev`, so a `helm install modelops` beside them owns its own."""

from __future__ import annotations

import subprocess
from pathlib import Path

from .cluster import ClusterError, kubeconfig_path
from .toolchain import KUBERNETES_VERSION, Toolchain

ROLE_TEMPLATES = ("templates/approver-role.yaml", "templates/user-roles.yaml")


def _kubectl(tools: Toolchain, *args: str, stdin: str | None = None) -> str:
    done = subprocess.run(
        [str(tools.kubectl), f"--kubeconfig={kubeconfig_path()}", *args], input=stdin, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise ClusterError(f"kubectl {' '.join(args)} failed: {done.stderr}")
    return done.stdout


def install_api(tools: Toolchain, crds: Path, chart: Path) -> str:
    """Apply (server-side, idempotent) and wait until the CRDs are Established; returns kubectl's report."""
    crds = crds.resolve()  # kubectl does not walk a linked folder
    report = _kubectl(tools, "apply", "--server-side", "--force-conflicts", "-f", str(crds))
    definitions = [
        arg
        for path in sorted(crds.glob("*.yaml"))
        if "CustomResourceDefinition" in path.read_text()
        for arg in ("-f", str(path))
    ]
    _kubectl(tools, "wait", "--for=condition=Established", "--timeout=60s", *definitions)
    show_only = [arg for template in ROLE_TEMPLATES for arg in ("--show-only", template)]
    rendered = subprocess.run(
        [str(tools.helm), "template", "modelops-dev", str(chart), "--kube-version", KUBERNETES_VERSION, *show_only],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return report + _kubectl(tools, "apply", "--server-side", "--force-conflicts", "-f", "-", stdin=rendered)
