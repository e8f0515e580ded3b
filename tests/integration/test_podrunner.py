"""Runtime pods (label modelops.io/runtime) run for real on this machine; kwok fakes the others."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

from tests.integration.conftest import Kubectl

RUNTIME = {"modelops.io/runtime": "server"}


def eventually(check: Callable[[], Any], timeout: float = 60, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"{what} not reached in {timeout}s")


def pod(name: str, command: list[str], labels: dict | None = None, **container: Any) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels if labels is not None else RUNTIME},
        "spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "main", "image": "modelops:test", "command": command, **container}],
        },
    }


def test_server_pod_runs_for_real_and_becomes_ready_by_its_probe(kubectl: Kubectl) -> None:
    kubectl.apply(
        pod(
            "web",
            ["python", "-m", "http.server", "--bind", "$(MODELOPS_BIND_HOST)", "8000"],
            readinessProbe={"httpGet": {"path": "/", "port": 8000}, "periodSeconds": 1},
        )
    )
    eventually(
        lambda: any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in kubectl.get("pod", "web")["status"].get("conditions", [])
        ),
        what="Ready",
    )
    address = kubectl.get("pod", "web")["status"]["podIP"]
    assert address.startswith("127.0.")
    assert httpx.get(f"http://{address}:8000/", timeout=5).status_code == 200

    kubectl.run("delete", "pod", "web", "--timeout=60s")
    assert "NotFound" in kubectl.run("get", "pod", "web", check=False).stderr
    with_error = None
    try:
        httpx.get(f"http://{address}:8000/", timeout=2)
    except httpx.HTTPError as error:
        with_error = error
    assert with_error is not None, "the server process outlived its pod"


def test_exit_code_and_termination_message_reach_the_pod_status(kubectl: Kubectl) -> None:
    kubectl.apply(pod("fails", ["sh", "-c", "echo 'the data was bad' > $(MODELOPS_TERMINATION_LOG); exit 3"]))
    state = eventually(
        lambda: kubectl.get("pod", "fails")["status"].get("phase") == "Failed" and kubectl.get("pod", "fails"),
        what="phase Failed",
    )
    terminated = state["status"]["containerStatuses"][0]["state"]["terminated"]
    assert terminated["exitCode"] == 3
    assert terminated["reason"] == "Error"
    assert terminated["message"].strip() == "the data was bad"


def test_memory_limit_is_enforced_as_oomkilled(kubectl: Kubectl) -> None:
    kubectl.apply(
        pod(
            "hungry",
            ["python", "-c", "x = bytearray(400 * 2**20); x[::4096] = b'1' * len(x[::4096])"],
            resources={"limits": {"memory": "100Mi"}},
        )
    )
    state = eventually(
        lambda: kubectl.get("pod", "hungry")["status"].get("phase") == "Failed" and kubectl.get("pod", "hungry"),
        what="phase Failed",
    )
    terminated = state["status"]["containerStatuses"][0]["state"]["terminated"]
    assert terminated["reason"] == "OOMKilled" and terminated["exitCode"] == 137


def test_other_pods_are_left_to_kwok(kubectl: Kubectl) -> None:
    kubectl.apply(pod("faked", ["this-command-does-not-exist"], labels={}))
    status = eventually(lambda: kubectl.get("pod", "faked")["status"].get("phase") == "Running", what="Running")
    assert status
    assert not kubectl.get("pod", "faked")["status"]["podIP"].startswith("127.")
