"""The real node runs the project's image as the chart runs it: a container with an ID and a pod address on the
pod network, read-only, as user 65532, in a namespace that enforces Pod Security `restricted`; a Service answers
on its ClusterIP (kube-proxy) and by DNS name (CoreDNS); `kubectl logs` and `kubectl exec` work."""

from __future__ import annotations

import ipaddress
import json

import pytest

from modelops.devcluster import node
from tests.support.kube import Kubectl
from tests.support.manifests import web_server
from tests.support.waiting import eventually


@pytest.fixture
def web(kubectl: Kubectl, image: str) -> dict:
    for manifest in web_server(image):
        kubectl.apply(manifest)
    kubectl.run("wait", "pod/web", "--for=condition=Ready", "--timeout=120s")
    return kubectl.get("pod", "web")


def test_the_image_runs_as_a_container_read_only_as_65532(web: dict, kubectl: Kubectl) -> None:
    status = web["status"]["containerStatuses"][0]
    assert status["containerID"].startswith("containerd://")
    assert web["spec"]["nodeName"] == node.NODE_NAME
    assert ipaddress.ip_address(web["status"]["podIP"]) in ipaddress.ip_network(node.POD_CIDR)
    namespace = kubectl.get("namespace", kubectl.namespace)  # type: ignore[arg-type]
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    who = kubectl.run("exec", "web", "--", "python3", "-c", "import os; print(os.getuid(), os.getgid())")
    assert who.stdout.split() == ["65532", "65532"]
    written = kubectl.run("exec", "web", "--", "python3", "-c", "open('/written', 'w')", check=False)
    assert written.returncode != 0 and "Read-only file system" in written.stderr


def test_a_service_answers_on_its_cluster_ip_and_by_dns_name(web: dict, kubectl: Kubectl) -> None:
    import httpx

    cluster_ip = kubectl.get("service", "web")["spec"]["clusterIP"]

    def answered() -> bool:  # once kube-proxy has seen the ready endpoint: until then it refuses
        try:
            return httpx.get(f"http://{cluster_ip}/", timeout=5).status_code == 200
        except httpx.TransportError:
            return False

    eventually(answered, what=f"an answer from {cluster_ip}")
    fetch = (
        "import json, socket, urllib.request;"
        f"print(json.dumps([socket.gethostbyname('web.{kubectl.namespace}.svc.cluster.local'),"
        f" urllib.request.urlopen('http://web.{kubectl.namespace}.svc/').status]))"
    )
    # From the pod behind the Service itself: DNS from CoreDNS, and the hairpin back through kube-proxy.
    answered = json.loads(kubectl.run("exec", "web", "--", "python3", "-c", fetch).stdout)
    assert answered == [cluster_ip, 200]


def test_kubectl_logs_shows_what_the_container_printed(web: dict, kubectl: Kubectl) -> None:
    kubectl.run(
        "exec",
        "web",
        "--",
        "python3",
        "-c",
        "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/bin/')",
    )
    eventually(lambda: '"GET /bin/ HTTP/1.1" 200' in kubectl.run("logs", "web").stdout)


def test_a_pod_that_breaks_restricted_is_refused(kubectl: Kubectl, image: str) -> None:
    pod = web_server(image)[0]
    pod["spec"]["containers"][0]["securityContext"] = {}
    refused = kubectl.apply(pod, check=False)
    assert refused.returncode != 0 and 'violates PodSecurity "restricted' in refused.stderr
