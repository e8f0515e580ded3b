"""`make demo`: from nothing to a trained, validated and approved model version on a local cluster.

It starts the local control plane, installs the API, runs the operator from this checkout, applies
examples/, follows the build, approves the version as a member of the approvers group, and shows lineage.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from sklearn.datasets import load_breast_cancer

from modelops.devcluster.cluster import Cluster, free_port, kubeconfig_path, state_dir
from modelops.devcluster.install import install_api
from modelops.devcluster.toolchain import ensure_toolchain

ROOT = Path(__file__).resolve().parents[2]
NAMESPACE = "modelops-demo"
APPROVER = ("--as=dana", "--as-group=modelops-approvers")
console = Console(soft_wrap=True)


def step(message: str) -> None:
    console.print(f"\n[bold cyan]▶[/] [bold]{message}[/]")


def show(output: str) -> None:
    """kubectl's own output, unwrapped and uncoloured."""
    console.print(output.rstrip(), soft_wrap=True, markup=False, highlight=False)


SETTLED = ("Succeeded", "Failed", "Validated", "Approved", "Rejected")


def wait_for(
    check: Callable[[], str | None], what: str, timeout: float = 300, settled: tuple[str, ...] = SETTLED
) -> str:
    """Poll until `check` returns a settled value, printing each new value it reports along the way."""
    deadline, last = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        value = check()
        if value and value != last:
            console.print(f"  {what}: [green]{value}[/]")
            last = value
        if value and value.split(" ")[0] in settled:
            return value
        time.sleep(1)
    raise SystemExit(f"{what} did not settle in {timeout:.0f}s")


def main() -> int:
    cluster = Cluster(log=lambda m: console.print(f"  {m}"))
    step("1. local Kubernetes control plane (no Docker)")
    cluster.up()
    tools = ensure_toolchain(lambda m: console.print(f"  {m}"))

    def kubectl(*args: str, stdin: str | None = None) -> str:
        done = cluster.kubectl(tools, *args, stdin=stdin)
        if done.returncode != 0:
            raise SystemExit(f"kubectl {' '.join(args)} failed: {done.stderr}")
        return done.stdout

    def field(kind: str, name: str, path: str) -> str | None:
        done = cluster.kubectl(tools, "get", kind, name, "-n", NAMESPACE, "-o", f"jsonpath={path}")
        return done.stdout.strip() or None if done.returncode == 0 else None

    def modelops(*args: str, check: bool = True) -> subprocess.CompletedProcess:
        """The `modelops` command as a person types it, shown first, in the demo namespace."""
        command = ["modelops", *args, "-n", NAMESPACE]
        console.print(f"  [dim]$ {escape(shlex.join(command))}[/]", highlight=False)
        done = subprocess.run(
            [sys.executable, "-m", "modelops.cli", *command[1:]],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "KUBECONFIG": str(kubeconfig_path())},
        )
        if check and done.returncode != 0:
            raise SystemExit(f"{shlex.join(command)} failed: {done.stderr}")
        return done

    def fields(kind: str, name: str, *paths: str) -> str:
        """The non-empty values of several fields, joined by spaces."""
        return " ".join(value for path in paths if (value := field(kind, name, path)))

    step("2. the ModelOps API: CRDs, approval policy, approver role")
    show(install_api(tools, ROOT / "crds", ROOT / "charts" / "modelops"))

    step("3. the operator")
    health = f"http://127.0.0.1:{free_port()}/healthz"
    log_path = state_dir() / "logs" / "operator.log"
    with open(log_path, "ab") as log:
        operator = subprocess.Popen(
            [sys.executable, "-m", "modelops.cli", "run", "--liveness", health, "--metrics-port", "0"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "KUBECONFIG": str(kubeconfig_path())},
        )
    try:
        _wait_alive(operator, health)
        console.print(f"  running (pid {operator.pid}); its log: {log_path}")

        step(f"4. a fresh namespace {NAMESPACE}, and the examples")
        cluster.kubectl(tools, "delete", "namespace", NAMESPACE, "--wait=true", "--timeout=120s")
        namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}
        kubectl("apply", "-f", "-", stdin=json.dumps(namespace))
        show(kubectl("apply", "-n", NAMESPACE, "-f", str(ROOT / "examples")))

        step("5. the build: a real training run, in a Job whose pod runs on this machine")
        build = wait_for(
            lambda: fields("mb", "breast-cancer-1", "{.status.phase}", "{.status.failureReason}"),
            "ModelBuild breast-cancer-1",
        )
        if not build.startswith("Succeeded"):
            show(kubectl("get", "mb", "breast-cancer-1", "-n", NAMESPACE, "-o", "jsonpath={.status.conditions}"))
            raise SystemExit("the build failed")
        version = field("mb", "breast-cancer-1", "{.status.modelVersion}") or ""
        show(kubectl("get", "mb,mv", "-n", NAMESPACE, "-o", "wide"))

        step(f"6. validation of {version} against its thresholds and the champion")
        wait_for(lambda: field("mv", version, "{.status.stage}"), f"ModelVersion {version}")
        for check in json.loads(field("mv", version, "{.status.checks}") or "[]"):
            console.print(f"  {'✔' if check['passed'] else '✘'} {check['message']}")

        step("7. approval, by dana of the approvers group (anyone else is refused by the API server)")
        refused = modelops("approve", version, "--reason", "looks fine to me", "--as=mallory", check=False)
        console.print(f"  mallory: [red]{escape(refused.stderr.strip().splitlines()[-1].removeprefix('error '))}[/]")
        show(modelops("approve", version, "--reason", "metrics reviewed", *APPROVER).stderr)
        wait_for(
            lambda: field("mv", version, "{.status.stage}"), f"ModelVersion {version}", settled=("Approved", "Rejected")
        )

        step("8. lineage: what was trained, from what, approved by whom")
        show(modelops("lineage", f"mv/{version}").stdout)
        step("9. serving: the ModelDeployment follows the latest Approved version")
        wait_for(
            lambda: fields(
                "md", "breast-cancer", '{.status.conditions[?(@.type=="Ready")].reason}', "{.status.servingVersion}"
            ),
            "ModelDeployment breast-cancer",
            settled=("Serving",),
        )
        show(kubectl("get", "md,deployment,service", "-n", NAMESPACE))
        show(modelops("lineage", "md/breast-cancer").stdout)
        pods = json.loads(
            kubectl("get", "pods", "-n", NAMESPACE, "-l", "app.kubernetes.io/instance=breast-cancer", "-o", "json")
        )
        address = pods["items"][0]["status"]["podIP"]
        records = load_breast_cancer(as_frame=True).frame.drop(columns=["target"]).head(3).to_dict(orient="records")
        answer = httpx.post(f"http://{address}:3000/predict", json={"records": records}, timeout=30).json()
        console.print(f"  POST http://{address}:3000/predict (3 records) → {json.dumps(answer)}")
        metrics = httpx.get(f"http://{address}:3000/metrics", timeout=10).text
        sample = [line for line in metrics.splitlines() if line.startswith("modelops_feature_observations_total")][:3]
        console.print("  /metrics, per-feature histograms on the training baseline's bins:")
        for line in sample:
            console.print(f"    {line}", markup=False, highlight=False)

        step("10. monitoring: normal traffic, then traffic whose features moved (every value x3)")
        frame = load_breast_cancer(as_frame=True).frame.drop(columns=["target"])
        for label, batch in (("normal", frame), ("shifted", frame * 3)):
            rows = batch.sample(frac=1, random_state=1).to_dict(orient="records")
            for start in range(0, len(rows), 20):
                httpx.post(f"http://{address}:3000/predict", json={"records": rows[start : start + 20]}, timeout=30)
            console.print(f"  sent {len(rows)} {label} records")
            if label == "normal":
                wait_for(
                    lambda: fields("mm", "breast-cancer", '{.status.conditions[?(@.type=="DriftDetected")].status}'),
                    "DriftDetected on normal traffic",
                    timeout=120,
                    settled=("False",),
                )
        wait_for(
            lambda: fields("mm", "breast-cancer", '{.status.conditions[?(@.type=="DriftDetected")].status}'),
            "DriftDetected after the shift",
            timeout=120,
            settled=("True",),
        )
        show(kubectl("get", "mm", "-n", NAMESPACE))
        console.print(f"  {field('mm', 'breast-cancer', '{.status.activeAlerts[0].message}')}")
        retrain = field("mm", "breast-cancer", "{.status.lastRetrain.build}")
        console.print(f"  retraining started: ModelBuild {retrain}")

        step("11. what the operator reported (Events on ModelOps objects)")
        for event in sorted(
            json.loads(kubectl("get", "events", "-n", NAMESPACE, "-o", "json"))["items"],
            key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or "",
        ):
            involved = event["involvedObject"]
            if involved.get("apiVersion", "").startswith("modelops.io/"):
                console.print(
                    f"  {involved['kind']}/{involved['name']:<18} {event['type']:<8} {event['reason']:<14} {event['message']}",
                    markup=False,
                    highlight=False,
                )
    finally:
        operator.terminate()
        operator.wait(timeout=30)

    console.print(
        Panel.fit(
            "Built, validated, approved, served and monitored:\n"
            "drift caught, alert raised, retraining started.\n"
            "The local cluster is still running, so you can look around:\n"
            f"  export KUBECONFIG={kubeconfig_path()}\n"
            f"  export PATH={tools.kubectl.parent}:$PATH\n"
            f"  kubectl get modelops -n {NAMESPACE}\n"
            "Stop it with: .venv/bin/modelops cluster down",
            title="ModelOps demo",
        )
    )
    return 0


def _wait_alive(operator: subprocess.Popen, health: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if operator.poll() is not None:
            raise SystemExit(f"the operator exited with {operator.returncode}: see its log")
        try:
            if httpx.get(health, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit("the operator did not become alive in time")


if __name__ == "__main__":
    sys.exit(main())
