"""How fast the operator brings 1,000 ModelDeployments to a written status, against a plain client doing the
minimum an operator must (create the same Deployment and Service, write each status once) with the same
concurrency, one after the other, each on a fresh local control plane.

Run: .venv/bin/python bench/operator_scale.py [--crs 1000] [--runs 3] [--no-ready]
It starts its own local control planes (kwok fakes every pod here, so 1,000 servers need no CPU), and stops them.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from statistics import median
from typing import Any

from kubernetes import client, config, dynamic, watch

from modelops.api.v1alpha1 import ModelDeployment, ModelVersion
from modelops.api.v1alpha1.modeldeployment import RolloutStatus
from modelops.controllers.settings import FIELD_MANAGER, WORKERS
from modelops.devcluster.cluster import Cluster, kubeconfig_path
from modelops.devcluster.install import install_api
from modelops.devcluster.operator import Operator
from modelops.devcluster.toolchain import ensure_toolchain
from modelops.resources import modeldeployment as children
from modelops.resources import traffic

ROOT = Path(__file__).resolve().parents[1]
MODEL = "bench"
#: The namespace of a second tenant, who creates one deployment while the first creates all the others.
OTHER = "other"


def api() -> dynamic.DynamicClient:
    config.load_kube_config(str(kubeconfig_path()))
    configuration = client.Configuration.get_default_copy()
    configuration.connection_pool_maxsize = WORKERS
    return dynamic.DynamicClient(client.ApiClient(configuration))


def deployment(name: str, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "modelops.io/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"model": MODEL, "replicas": 1},
    }


def approved_version(dyn: dynamic.DynamicClient, namespace: str) -> ModelVersion:
    versions = dyn.resources.get(api_version="modelops.io/v1alpha1", kind="ModelVersion")
    body = {
        "apiVersion": "modelops.io/v1alpha1",
        "kind": "ModelVersion",
        "metadata": {"name": f"{MODEL}-v1", "namespace": namespace, "labels": {"modelops.io/model": MODEL}},
        "spec": {
            "model": MODEL,
            "version": 1,
            "task": "classification",
            "artifact": {"uri": "file:///nowhere/model.bentomodel", "digest": "sha256:" + "0" * 64},
            "metrics": {"accuracy": 0.9},
        },
    }
    versions.create(body=body, namespace=namespace)
    approval = {"spec": {"approval": {"state": "Approved", "by": "bench"}}}
    subprocess.run(
        [
            str(ensure_toolchain().kubectl),
            f"--kubeconfig={kubeconfig_path()}",
            "--as=bench",
            "--as-group=modelops-approvers",
            "-n",
            namespace,
            "patch",
            "mv",
            f"{MODEL}-v1",
            "--type=merge",
            "-p",
            json.dumps(approval),
        ],
        check=True,
        capture_output=True,
    )
    return ModelVersion.model_validate(versions.get(name=f"{MODEL}-v1", namespace=namespace).to_dict())


def namespace(dyn: dynamic.DynamicClient, name: str) -> None:
    dyn.resources.get(api_version="v1", kind="Namespace").create(body={"metadata": {"name": name}})


def direct(dyn: dynamic.DynamicClient, ns: str, count: int, version: ModelVersion) -> float:
    """Create each ModelDeployment, apply the children the operator would (its Deployment and Service), and write
    its status once."""
    mds = dyn.resources.get(api_version="modelops.io/v1alpha1", kind="ModelDeployment")
    settings = children.ServerSettings(image="modelops:bench")

    def one(i: int) -> None:
        created = mds.create(body=deployment(f"md-{i}", ns), namespace=ns).to_dict()
        md = ModelDeployment.model_validate(created)
        for manifest in traffic.plan(md, version, None, RolloutStatus(), "Replicas", False, settings).apply:
            dyn.resources.get(api_version=manifest["apiVersion"], kind=manifest["kind"]).server_side_apply(
                body=manifest, name=manifest["metadata"]["name"], namespace=ns, field_manager=FIELD_MANAGER
            )
        status = {"servingVersion": version.metadata.name, "observedGeneration": 1, "replicas": 1}
        mds.status.patch(
            name=f"md-{i}", namespace=ns, body={"status": status}, content_type="application/merge-patch+json"
        )

    started = time.perf_counter()
    with ThreadPoolExecutor(WORKERS) as pool:
        list(pool.map(one, range(count)))
    return time.perf_counter() - started


def until_ready(
    dyn: dynamic.DynamicClient, ns: str, count: int, started: float, ready_too: bool
) -> tuple[float, float | None, int]:
    """(seconds from `started` until every status names the serving version, until every one is Ready (None unless
    `ready_too`), how many watch requests that took), told by a watch of the deployments: each status change comes
    once. (A list of every deployment each half second, as this script did before, was at 1,000 deployments 40 s of
    this script's CPU and much of the API server's, on the same two cores, all counted against the operator.)"""
    api = client.CustomObjectsApi(dyn.client)
    serving: set[str] = set()
    ready: set[str] = set()
    written = None
    version, watches = "", 0
    deadline = time.monotonic() + 3600
    while time.monotonic() < deadline:
        watches += 1
        since = {"resource_version": version} if version else {}
        for event in watch.Watch().stream(
            api.list_namespaced_custom_object,
            "modelops.io",
            "v1alpha1",
            ns,
            "modeldeployments",
            timeout_seconds=30,
            **since,
        ):
            body = event["object"]
            version = body["metadata"]["resourceVersion"]
            name, status = body["metadata"]["name"], body.get("status") or {}
            (serving.add if status.get("servingVersion") else serving.discard)(name)
            is_ready = any(c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions") or [])
            (ready.add if is_ready else ready.discard)(name)
            if written is None and len(serving) == count:
                written = time.perf_counter() - started
                if not ready_too:
                    return written, None, watches
            if len(ready) == count:
                return written or 0.0, time.perf_counter() - started, watches
    raise SystemExit(f"not all {count} ModelDeployments became Ready in an hour")


def requests_served() -> Counter[str]:
    """The API server's own count of the requests it has answered, by verb and resource (`get deployments`):
    counted around each side, it shows what each one asks for per ModelDeployment."""
    metrics = subprocess.run(
        [str(ensure_toolchain().kubectl), f"--kubeconfig={kubeconfig_path()}", "get", "--raw", "/metrics"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    counts: Counter[str] = Counter()
    for line in metrics.splitlines():
        if line.startswith("apiserver_request_total{"):
            labels = dict(re.findall(r'(\w+)="([^"]*)"', line))
            what = labels["resource"] + (f"/{labels['subresource']}" if labels.get("subresource") else "")
            counts[f"{labels['verb'].lower()} {what}"] += int(float(line.rsplit(" ", 1)[1]))
    return counts


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """User and system time the process has used (on a 2-core machine, its share of the work)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class OperatorSide:
    written_s: float  # until every status names the serving version
    ready_s: float | None  # until every one is Ready
    rss_mb: float
    cpu_s: float
    #: A second tenant's one deployment, seconds until its status is written: on the idle operator, and when created
    #: halfway through the first tenant's burst.
    tenant_idle_s: float
    tenant_burst_s: float
    watches: int  # this script's: the API server counts them with the operator's


def with_operator(dyn: dynamic.DynamicClient, ns: str, count: int, ready_too: bool) -> OperatorSide:
    operator = Operator(
        Path(tempfile.gettempdir()) / "modelops-bench-operator.log", namespaces=[ns, OTHER], metrics=False
    )
    operator.start()
    try:
        until_approved(dyn, ns)
        until_approved(dyn, OTHER)
        mds = dyn.resources.get(api_version="modelops.io/v1alpha1", kind="ModelDeployment")
        idle_s, idle_watches = second_tenant(dyn, "alone", 1)
        started = time.perf_counter()
        with ThreadPoolExecutor(WORKERS) as pool, ThreadPoolExecutor(1) as prober:
            created = [pool.submit(mds.create, body=deployment(f"md-{i}", ns), namespace=ns) for i in range(count)]

            def in_burst() -> tuple[float, int]:
                created[count // 2].result()  # the burst is half created
                return second_tenant(dyn, "in-burst", 2)

            probe = prober.submit(in_burst)
            for creation in created:
                creation.result()
            written, ready, watches = until_ready(dyn, ns, count, started, ready_too)
            burst_s, burst_watches = probe.result()
        pid = operator.process.pid  # type: ignore[union-attr]
        return OperatorSide(
            written,
            ready,
            peak_rss_mb(pid),
            cpu_seconds(pid),
            idle_s,
            burst_s,
            watches + idle_watches + burst_watches,
        )
    finally:
        operator.stop(timeout=60)


def second_tenant(dyn: dynamic.DynamicClient, name: str, deployments: int) -> tuple[float, int]:
    """(seconds from creating a deployment in the second tenant's namespace until its status names its serving
    version, how many watches that took); `deployments`: how many that namespace then has."""
    mds = dyn.resources.get(api_version="modelops.io/v1alpha1", kind="ModelDeployment")
    mds.create(body=deployment(name, OTHER), namespace=OTHER)
    written, _, watches = until_ready(dyn, OTHER, deployments, time.perf_counter(), False)
    return written, watches


def until_approved(dyn: dynamic.DynamicClient, ns: str) -> None:
    """Until the operator has approved the version, as the plain client's side starts with it approved: else the
    deployments created first find nothing to serve, and are reconciled twice."""
    versions = dyn.resources.get(api_version="modelops.io/v1alpha1", kind="ModelVersion")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        body = versions.get(name=f"{MODEL}-v1", namespace=ns).to_dict()
        if (body.get("status") or {}).get("stage") == "Approved":
            return
        time.sleep(0.2)
    raise SystemExit("the operator did not approve the version in 2 minutes")


def per_deployment(before: Counter[str], after: Counter[str], count: int) -> dict[str, float]:
    """Requests per ModelDeployment between two counts, by verb and resource, the most frequent first."""
    spent = after - before
    return {what: round(n / count, 2) for what, n in spent.most_common() if n / count >= 0.01}


@contextmanager
def fresh_cluster(*namespaces: str) -> Iterator[tuple[dynamic.DynamicClient, ModelVersion]]:
    """A control plane of its own for one side, with the API installed and an approved version in each namespace
    (the first one's is given): neither side inherits the other's objects, nor the backlog of pods
    kube-controller-manager and kwok still bring up for it."""
    with tempfile.TemporaryDirectory() as state:
        os.environ["MODELOPS_CLUSTER_DIR"] = state
        cluster = Cluster(log=lambda m: print(f"# {m}", file=sys.stderr), real_node=False)
        cluster.up()
        try:
            install_api(ensure_toolchain(), ROOT / "crds", ROOT / "charts" / "modelops")
            dyn = api()
            versions = []
            for ns in namespaces:
                namespace(dyn, ns)
                versions.append(approved_version(dyn, ns))
            yield dyn, versions[0]
        finally:
            cluster.down()


@dataclass
class Run:
    direct_s: float
    operator: OperatorSide
    direct_calls: dict[str, float]
    operator_calls: dict[str, float]

    @property
    def ratio(self) -> float:
        return self.operator.written_s / self.direct_s


def one_run(count: int, ready_too: bool) -> Run:
    with fresh_cluster("bench") as (dyn, version):
        start = requests_served()
        direct_s = direct(dyn, "bench", count, version)
        direct_calls = per_deployment(start, requests_served(), count)
    with fresh_cluster("bench", OTHER) as (dyn, _):
        start = requests_served()
        side = with_operator(dyn, "bench", count, ready_too)
        end = requests_served()
        end["watch modeldeployments"] -= side.watches
        operator_calls = per_deployment(start, end, count)
    return Run(direct_s, side, direct_calls, operator_calls)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--crs", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=1, help="runs of both sides; the JSON line gives their medians")
    parser.add_argument(
        "--no-ready", action="store_true", help="stop at every status written, without waiting for every pod"
    )
    args = parser.parse_args()
    runs: list[Run] = []
    print(f"{args.crs} ModelDeployments, {WORKERS} workers each side, each side on a fresh local cluster")
    print(
        f"{'run':<4} {'plain s':>8} {'operator s':>11} {'ratio':>6} {'Ready s':>8} {'RSS MB':>7} {'CPU s':>6} "
        f"{'tenant alone s':>15} {'in burst s':>11}"
    )
    for i in range(args.runs):
        run = one_run(args.crs, not args.no_ready)
        runs.append(run)
        side = run.operator
        ready = f"{side.ready_s:.1f}" if side.ready_s is not None else "-"
        print(
            f"{i + 1:<4} {run.direct_s:>8.1f} {side.written_s:>11.1f} {run.ratio:>6.2f} {ready:>8} "
            f"{side.rss_mb:>7.0f} {side.cpu_s:>6.1f} {side.tenant_idle_s:>15.2f} {side.tenant_burst_s:>11.2f}",
            flush=True,
        )
    print("(operator s: until every status names its serving version; Ready s: until every one is Ready, pods by kwok)")
    print(
        "(tenant: a second namespace's one deployment, seconds until its status is written, on the idle operator and "
        "when created halfway through the burst)"
    )
    print("API requests per ModelDeployment in the last run (the API server's count):")
    print(f"  plain client: {sum(runs[-1].direct_calls.values()):.1f}  {runs[-1].direct_calls}")
    print(f"  operator:     {sum(runs[-1].operator_calls.values()):.1f}  {runs[-1].operator_calls}")
    print(
        json.dumps(
            {
                "crs": args.crs,
                "runs": len(runs),
                "operator_s": round(median(r.operator.written_s for r in runs), 2),
                "direct_s": round(median(r.direct_s for r in runs), 2),
                "ratio": round(median(r.ratio for r in runs), 2),
                "operator_peak_rss_mb": round(median(r.operator.rss_mb for r in runs), 1),
                "operator_cpu_s": round(median(r.operator.cpu_s for r in runs), 1),
                "tenant_alone_s": round(median(r.operator.tenant_idle_s for r in runs), 2),
                "tenant_in_burst_s": round(median(r.operator.tenant_burst_s for r in runs), 2),
            }
        )
    )


if __name__ == "__main__":
    main()
