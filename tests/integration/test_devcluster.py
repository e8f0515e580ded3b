"""The local control plane behaves like a cluster: pods get scheduled, Deployments run, Jobs complete;
`up` is idempotent and `down` leaves no process behind."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from modelops.devcluster import cluster as devcluster
from modelops.devcluster import node
from modelops.devcluster.toolchain import Toolchain
from tests.support.kube import Kubectl
from tests.support.manifests import restricted_pod, web_server
from tests.support.waiting import eventually


def _wait_for(kubectl: Kubectl, jsonpath: str, expected: str, *args: str, timeout: float = 60) -> None:
    eventually(
        lambda: kubectl.run("get", *args, "-o", f"jsonpath={jsonpath}", check=False).stdout == expected,
        timeout=timeout,
        what=f"{' '.join(args)} {jsonpath} = {expected!r}",
    )


def test_server_version_is_the_pinned_one(kubectl: Kubectl) -> None:
    assert "Server Version: v1.34.4" in kubectl.run("version").stdout


def test_deployment_gets_running_pods(kubectl: Kubectl, image: str) -> None:
    pod = restricted_pod(image, ["python3", "-c", "import time; time.sleep(3600)"])
    kubectl.apply(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web"},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}}, "spec": pod},
            },
        }
    )
    _wait_for(kubectl, "{.status.readyReplicas}", "2", "deployment", "web")
    pods = kubectl.get("pods", "-l", "app=web")["items"]
    assert {p["status"]["phase"] for p in pods} == {"Running"}
    assert {p["spec"]["nodeName"] for p in pods} == {node.NODE_NAME}
    assert all(c["containerID"].startswith("containerd://") for p in pods for c in p["status"]["containerStatuses"])


def test_job_completes(kubectl: Kubectl, image: str) -> None:
    pod = {**restricted_pod(image, ["python3", "-c", "print('done')"]), "restartPolicy": "Never"}
    kubectl.apply(
        {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "hello"}, "spec": {"template": {"spec": pod}}}
    )
    _wait_for(kubectl, "{.status.succeeded}", "1", "job", "hello")
    assert kubectl.run("logs", "job/hello").stdout.strip() == "done"


def test_rbac_is_enforced(kubectl: Kubectl) -> None:
    nobody = kubectl.run("auth", "can-i", "list", "pods", "--as=nobody", check=False)
    assert nobody.stdout.strip() == "no"


@pytest.fixture
def second_cluster(cluster: Toolchain, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> devcluster.Cluster:
    """Another control plane in its own state directory, so the session's cluster is left alone. kwok-only: a
    host has room for one real node (one node address, one kube-proxy owning the KUBE- chains)."""
    monkeypatch.setenv("MODELOPS_CLUSTER_DIR", str(tmp_path / "cluster"))
    return devcluster.Cluster(log=lambda _: None, real_node=False)


def test_up_is_idempotent_and_down_leaves_nothing(second_cluster: devcluster.Cluster) -> None:
    second_cluster.up()
    first = devcluster.State.load()
    assert first is not None and second_cluster.running()
    second_cluster.up()
    assert devcluster.State.load() == first, "a second `up` restarted the cluster"
    second_cluster.down()
    assert not second_cluster.running()
    for pid in first.pids.values():
        assert not devcluster.process_running(pid), f"process {pid} survived `down`"


def test_status_command_reports_the_cluster(cluster: Toolchain) -> None:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "modelops.cli", "cluster", "status"],
        capture_output=True,
        text=True,
        env={**os.environ},
    )
    assert done.returncode == 0
    assert "kube-apiserver" in done.stderr and "ready" in done.stderr


def host_state() -> dict[str, object]:
    """What the real node touches on the host, as `ip`, iptables, the mount table, sysctls and cgroups show it."""
    import subprocess

    from modelops.devcluster import host

    def shown(*command: str) -> str:
        return subprocess.run(command, capture_output=True, text=True).stdout

    return {
        "links": shown("ip", "-o", "link", "show"),
        "addresses": shown("ip", "-o", "addr", "show"),
        "routes": shown("ip", "route", "show"),
        "iptables": [line for line in shown("iptables-save").splitlines() if not line.startswith("#")],
        "ip6tables": [line for line in shown("ip6tables-save").splitlines() if not line.startswith("#")],
        "mounts": sorted(line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()),
        "sysctls": host.read_sysctls(),
        "paths": [p for p in host.HARD_CODED_PATHS if os.path.lexists(p)],
        "cgroups": [str(p) for p in host.cgroup_hierarchies() if (p / "modelops").exists()],
        "netns": sorted(os.listdir("/run/netns")) if os.path.isdir("/run/netns") else [],
    }


@pytest.mark.restarts_cluster
def test_down_puts_the_host_back_as_it_was_before_up(cluster: Toolchain, kubectl: Kubectl, image: str) -> None:
    """With a pod running (a sandbox, a veth, mounts, kube-proxy's chains for its Service), `down` then leaves
    the host as it found it; `up` comes back for whatever runs after."""
    for manifest in web_server(image):
        kubectl.apply(manifest)
    kubectl.run("wait", "pod/web", "--for=condition=Ready", "--timeout=120s")
    local = devcluster.Cluster(log=lambda _: None)
    before = devcluster.Host.load(local.dir / "host.json")
    assert before is not None
    running = host_state()
    local.down()
    after = host_state()
    assert after != running
    assert after["sysctls"] == before.sysctls
    assert not after["cgroups"] and after["paths"] == before.paths and after["netns"] == before.netns
    assert "modelops0" not in after["links"] and "10.255.0.1" not in after["addresses"]
    assert not [line for line in after["iptables"] if "KUBE-" in line or "CNI-" in line or "MODELOPS-" in line]
    assert not [m for m in after["mounts"] if str(local.dir) in m]
    local.up()
