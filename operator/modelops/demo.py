"""`make demo`: a local cluster, the CRDs, the operator, the examples — and what happened."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
from rich.console import Console
from rich.panel import Panel

from modelops.devcluster.cluster import Cluster, kubeconfig_path, state_dir
from modelops.devcluster.toolchain import ensure_toolchain

ROOT = Path(__file__).resolve().parents[2]
NAMESPACE = "modelops-demo"
LIVENESS = "http://127.0.0.1:18080/healthz"
console = Console()


def step(message: str) -> None:
    console.print(f"[bold cyan]▶[/] {message}")


def show(output: str) -> None:
    """kubectl's own output, unwrapped and uncoloured."""
    console.print(output.rstrip(), soft_wrap=True, markup=False, highlight=False)


def main() -> int:
    say = lambda m: console.print(f"  {m}")  # noqa: E731
    cluster = Cluster(log=say)
    step("local control plane")
    cluster.up()
    tools = ensure_toolchain(say)

    def kubectl(*args: str, stdin: str | None = None) -> str:
        done = cluster.kubectl(tools, *args, stdin=stdin)
        if done.returncode != 0:
            raise SystemExit(f"kubectl {' '.join(args)} failed: {done.stderr}")
        return done.stdout

    step("CRDs")
    show(kubectl("apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "crds")))
    kubectl("wait", "--for=condition=Established", "--timeout=60s", "-f", str(ROOT / "crds"))

    step("operator")
    log_path = state_dir() / "logs" / "operator.log"
    with open(log_path, "ab") as log:
        operator = subprocess.Popen(
            [sys.executable, "-m", "modelops.cli", "run", "--liveness", LIVENESS, "--metrics-port", "19090"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "KUBECONFIG": str(kubeconfig_path())},
        )
    try:
        _wait_alive(operator)
        console.print(f"  running (pid {operator.pid}), liveness {LIVENESS}, metrics :19090, log {log_path}")

        step(f"examples, in namespace {NAMESPACE}")
        kubectl(
            "apply",
            "-f",
            "-",
            stdin=json.dumps({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}),
        )
        show(kubectl("apply", "-n", NAMESPACE, "-f", str(ROOT / "examples")))
        time.sleep(3)

        step("what the cluster shows")
        show(kubectl("get", "modelops", "-n", NAMESPACE))
    finally:
        operator.terminate()
        operator.wait(timeout=30)

    console.print(
        Panel.fit(
            "The resources are stored and validated; the reconcilers that train, serve and monitor\n"
            "them are being built (see the README's status).\n"
            "The local cluster is still running, so you can look around:\n"
            f"  export KUBECONFIG={kubeconfig_path()}\n"
            f"  export PATH={tools.kubectl.parent}:$PATH\n"
            f"  kubectl get modelops -n {NAMESPACE}\n"
            "  kubectl explain modeldeployment.spec\n"
            "Stop it with: .venv/bin/modelops cluster down",
            title="ModelOps demo",
        )
    )
    return 0


def _wait_alive(operator: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if operator.poll() is not None:
            raise SystemExit(f"the operator exited with {operator.returncode}: see its log")
        try:
            if httpx.get(LIVENESS, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit("the operator did not become alive in time")


if __name__ == "__main__":
    sys.exit(main())
