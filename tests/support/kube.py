"""kubectl against the local cluster, and the names its admission policies and Pod Security key on."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass

from modelops.devcluster.cluster import kubeconfig_path
from modelops.devcluster.toolchain import Toolchain

from .storage import STORAGE_SECRET

#: The group the chart lets approve model versions (its default `approvals.groups`).
APPROVERS = "modelops-approvers"
MALLORY = "mallory"
#: Every verb on the four kinds, in her namespace only: what a namespace's data scientist is given.
TENANT_ROLE = {
    "apiVersion": "rbac.authorization.k8s.io/v1",
    "kind": "Role",
    "metadata": {"name": "modelops-tenant"},
    "rules": [
        {
            "apiGroups": ["modelops.io"],
            "resources": ["modelbuilds", "modelversions", "modeldeployments", "modelmonitors"],
            "verbs": ["*"],
        },
        # The team's store: she may read its keys, so her builds and servers may use them (the admission policy
        # refuses a Secret its author could not read).
        {"apiGroups": [""], "resources": ["secrets"], "resourceNames": [STORAGE_SECRET], "verbs": ["get"]},
    ],
}
#: The namespace label that enforces Pod Security `restricted`, as every test namespace does.
RESTRICTED = "pod-security.kubernetes.io/enforce=restricted"


@dataclass
class Kubectl:
    """kubectl against the local cluster, in one namespace unless told otherwise."""

    tools: Toolchain
    namespace: str | None = None
    identity: tuple[str, ...] = ()

    def as_user(self, user: str, *groups: str) -> Kubectl:
        """The same kubectl, impersonating a user (and groups) so RBAC and admission policies apply to them."""
        return Kubectl(self.tools, self.namespace, (f"--as={user}", *(f"--as-group={g}" for g in groups)))

    def run(self, *args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
        ns = ["-n", self.namespace] if self.namespace else []
        done = subprocess.run(
            [str(self.tools.kubectl), f"--kubeconfig={kubeconfig_path()}", *self.identity, *ns, *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if check and done.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed:\n{done.stderr}")
        return done

    def apply(self, manifest: dict | str, *extra: str, check: bool = True) -> subprocess.CompletedProcess:
        text = manifest if isinstance(manifest, str) else json.dumps(manifest)
        return self.run("apply", "-f", "-", *extra, stdin=text, check=check)

    def get(self, *args: str) -> dict:
        return json.loads(self.run("get", *args, "-o", "json").stdout)


def tenant(kubectl: Kubectl) -> Kubectl:
    """kubectl as mallory, given the tenant role in the namespace."""
    kubectl.apply(TENANT_ROLE)
    kubectl.run("create", "rolebinding", "mallory-tenant", "--role=modelops-tenant", f"--user={MALLORY}")
    return kubectl.as_user(MALLORY)
