"""How fast the operator brings 1,000 ModelDeployments to a written status, against a plain client doing the
minimum an operator must (create the same Deployment and Service, write each status once) with the same
concurrency, side by side on one API server.

Run: .venv/bin/python bench/operator_scale.py [--crs 1000]
It starts its own local control plane (kwok fakes every pod here, so 1,000 servers need no CPU), and stops it.
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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
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


def settled(dyn: dynamic.DynamicClient, ns: str, count: int) -> tuple[float, int]:
    """(seconds until every server Deployment of the namespace has its pod ready, how many lists that took): the
    cluster's own work for one side (ReplicaSets, pods, endpoints) is over before the other side starts, and is
    counted with the side it serves."""
    deployments = dyn.resources.get(api_version="apps/v1", kind="Deployment")
    started, polls = time.perf_counter(), 0
    while True:
        items = deployments.get(namespace=ns).to_dict()["items"]
        polls += 1
        if sum(1 for d in items if (d.get("status") or {}).get("readyReplicas") == d["spec"]["replicas"]) == count:
            return time.perf_counter() - started, polls
        time.sleep(max(0.5, count / 2000))


def until_ready(dyn: dynamic.DynamicClient, ns: str, count: int, started: float) -> tuple[float, float, int]:
    """(seconds from `started` until every status names the serving version, until every one is Ready, how many
    watch requests that took), told by a watch of the deployments: each status change comes once. (A list of every
    deployment each half second, as this script did before, was at 1,000 deployments 40 s of this script's CPU and
    much of the API server's, on the same two cores, all counted against the operator.)"""
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


def with_operator(dyn: dynamic.DynamicClient, ns: str, count: int) -> tuple[float, float, float, int]:
    """(seconds until every status names the serving version, seconds until every one is Ready, peak RSS MB, how
    many watches this script made: the API server counts them with the operator's)."""
    operator = Operator(Path(tempfile.gettempdir()) / "modelops-bench-operator.log", namespaces=[ns], metrics=False)
    operator.start()
    try:
        mds = dyn.resources.get(api_version="modelops.io/v1alpha1", kind="ModelDeployment")
        started = time.perf_counter()
        with ThreadPoolExecutor(WORKERS) as pool:
            list(pool.map(lambda i: mds.create(body=deployment(f"md-{i}", ns), namespace=ns), range(count)))
        written, ready, watches = until_ready(dyn, ns, count, started)
        pid = operator.process.pid  # type: ignore[union-attr]
        print(f"operator CPU: {cpu_seconds(pid):.1f} s until every one was Ready")
        return written, ready, peak_rss_mb(pid), watches
    finally:
        operator.stop(timeout=60)


def per_deployment(before: Counter[str], after: Counter[str], count: int) -> dict[str, float]:
    """Requests per ModelDeployment between two counts, by verb and resource, the most frequent first."""
    spent = after - before
    return {what: round(n / count, 2) for what, n in spent.most_common() if n / count >= 0.01}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--crs", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as state:
        os.environ["MODELOPS_CLUSTER_DIR"] = state
        cluster = Cluster(log=lambda m: print(f"# {m}", file=sys.stderr), real_node=False)
        cluster.up()
        try:
            install_api(ensure_toolchain(), ROOT / "crds", ROOT / "charts" / "modelops")
            dyn = api()
            for ns in ("bench-direct", "bench-operator"):
                namespace(dyn, ns)
            version = approved_version(dyn, "bench-direct")
            approved_version(dyn, "bench-operator")
            start = requests_served()
            direct_s = direct(dyn, "bench-direct", args.crs, version)
            settle_s, settle_polls = settled(dyn, "bench-direct", args.crs)
            middle = requests_served()
            operator_s, ready_s, rss, watches = with_operator(dyn, "bench-operator", args.crs)
            end = requests_served()
            end["watch modeldeployments"] -= watches
        finally:
            cluster.down()
    rows = [
        ("plain client: create children, write status once", direct_s, 1.0),
        ("operator: every status written (serving version)", operator_s, operator_s / direct_s),
        ("operator: every one Ready (pods ready, by kwok)", ready_s, ready_s / direct_s),
    ]
    print(f"{args.crs} ModelDeployments, {WORKERS} workers each side, one API server")
    print(f"{'':<52} {'seconds':>9} {'ratio':>7}")
    for label, seconds, ratio in rows:
        print(f"{label:<52} {seconds:>9.1f} {ratio:>7.2f}")
    print(f"(the plain client's servers were all ready {settle_s:.1f} s after it finished; the operator started then)")
    print(f"operator peak RSS: {rss:.0f} MB")
    direct_calls = per_deployment(start, middle - Counter({"list deployments": settle_polls}), args.crs)
    operator_calls = per_deployment(middle, end, args.crs)
    print("API requests per ModelDeployment (the API server's count):")
    print(f"  plain client: {sum(direct_calls.values()):.1f}  {direct_calls}")
    print(f"  operator:     {sum(operator_calls.values()):.1f}  {operator_calls}")
    print(
        json.dumps(
            {
                "crs": args.crs,
                "operator_s": round(operator_s, 2),
                "direct_s": round(direct_s, 2),
                "ratio": round(operator_s / direct_s, 2),
                "operator_peak_rss_mb": round(rss, 1),
                "operator_ready_s": round(ready_s, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
