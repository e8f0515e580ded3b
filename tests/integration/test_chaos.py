"""Chaos: two operator candidates behind a Lease, the leader SIGKILLed at random moments while objects of all four
kinds are created, updated, approved and deleted; in the long form (`MODELOPS_CHAOS=long`, `make chaos`) also the
API server and etcd restarted mid-reconcile and the webhook receiver down for minutes. Afterwards everything must
converge with no duplicate Job, server Deployment or ModelVersion, no orphaned child, every alert transition
delivered exactly once, and no candidate exiting on its own except a leader stepping down by design.

The short form runs in `make test`; `make chaos` runs the long one and ends with one JSON line of counts."""

from __future__ import annotations

import contextlib
import copy
import json
import os
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sklearn.datasets import load_breast_cancer

from modelops.api.v1alpha1.common import ALERTS_SECRET
from modelops.devcluster.alerts import AlertReceiver
from modelops.devcluster.cluster import Cluster
from tests.support.builds import BUILD, phase
from tests.support.chaos import AlertTally, Candidates, Census, bring_up, census, take_down, tally
from tests.support.deployments import condition, deployment, traffic, version
from tests.support.kube import APPROVERS, Kubectl
from tests.support.manifests import MODEL_VERSION
from tests.support.operator import allowed_by_administrator
from tests.support.prometheus import Prometheus
from tests.support.waiting import eventually

LEASE = "modelops-chaos"
#: The model the churn's builds train and its serving deployments serve.
CHURN = "churn"
ALERT = "ErrorRateHigh"
FRAME = load_breast_cancer(as_frame=True).frame.drop(columns=["target"])
NORMAL = FRAME.head(100).to_dict(orient="records")
BROKEN = [{"mean radius": 1.0}]  # refused with 400: errors the alerting monitor counts
APPROVAL = {"spec": {"approval": {"state": "Approved", "by": "alice", "reason": "chaos"}}}


@dataclass(frozen=True)
class Plan:
    """How much chaos: kills of the leader, objects of each kind, alert episodes, and outages."""

    kills: int
    builds: int
    serving: int  # deployments of the churn model, which serve once a build's version is approved
    idle: int  # deployments of models that have no version: they must say so
    monitors: int
    records: int  # ModelVersions created by hand, as a registry import would
    episodes: int  # the alerting monitor's ErrorRateHigh raised and cleared
    restarts: tuple[str, ...] = ()  # control-plane components restarted mid-reconcile
    receiver_down_s: float = 0  # the webhook receiver refusing connections over an episode's raise
    prometheus_down_s: float = 0  # with it, a monitor reads through Prometheus, which is stopped this long
    gap_s: tuple[float, float] = (0.0, 6.0)  # a kill comes this long (uniformly) after the last takeover

    @property
    def objects(self) -> int:
        """What the churn creates: builds and their versions, records, deployments, monitors (each + the alert's)."""
        through_prometheus = 1 if self.prometheus_down_s else 0
        return (
            2 * self.builds + self.records + 1 + self.serving + self.idle + 1 + self.monitors + 1 + through_prometheus
        )


SHORT = Plan(kills=4, builds=3, serving=1, idle=8, monitors=8, records=8, episodes=2)
LONG = Plan(
    kills=50,
    builds=10,
    serving=2,
    idle=60,
    monitors=60,
    records=50,
    episodes=4,
    restarts=("kube-apiserver", "etcd"),
    receiver_down_s=150,
    prometheus_down_s=120,
    gap_s=(2.0, 14.0),  # the leader works a while between kills, or 200 objects would never settle
)


def plan() -> Plan:
    return LONG if os.environ.get("MODELOPS_CHAOS") == "long" else SHORT


#: The long form outlasts the suite's usual 10-minute limit by design.
pytestmark = [pytest.mark.chaos, pytest.mark.timeout(3600 if plan() is LONG else 600)]


# -- the objects ------------------------------------------------------------------------------------------------


def build(index: int) -> dict[str, Any]:
    """Build `churn-<index>`: BUILD's logistic regression, for the churn model."""
    document = copy.deepcopy(BUILD)
    document["metadata"]["name"] = f"{CHURN}-{index}"
    document["spec"]["model"] = CHURN
    return document


def record(index: int) -> dict[str, Any]:
    """A hand-made ModelVersion record of model `ledger` (no build made it)."""
    document = copy.deepcopy(MODEL_VERSION)
    document["metadata"] = {"name": f"ledger-v{index}"}
    document["spec"].update(model="ledger", version=index)
    document["spec"]["lineage"] = {"build": f"imported-{index}", "datasetUri": "sklearn://breast_cancer"}
    document["spec"]["validation"] = {"primaryMetric": "accuracy", "allowedRegression": 1.0}
    return document


def model_deployment(name: str, model: str) -> dict[str, Any]:
    document = deployment(replicas=1)
    document["metadata"]["name"] = name
    document["spec"]["model"] = model
    return document


def monitor(name: str, target: str, webhook: bool = False) -> dict[str, Any]:
    spec: dict[str, Any] = {"deployment": target, "interval": "2s", "window": "8s"}
    if webhook:
        spec.update(errorRate={"max": 0.2, "minRequests": 20}, alerts={"webhook": {"urlSecretKey": "team-hook"}})
    return {"apiVersion": "modelops.io/v1alpha1", "kind": "ModelMonitor", "metadata": {"name": name}, "spec": spec}


def patch(kubectl: Kubectl, kind: str, name: str, change: dict[str, Any]) -> None:
    kubectl.run("patch", kind, name, "--type=merge", "-p", json.dumps(change))


# -- waiting and judging ------------------------------------------------------------------------------------------


def unsettled(item: dict[str, Any]) -> str | None:
    """Why an object has not settled on its latest spec (Ready, or Stalled saying why), or None once it has."""
    generation = item["metadata"].get("generation")
    for found in item.get("status", {}).get("conditions", []):
        current = found.get("observedGeneration") == generation and found.get("reason")
        if found["type"] in ("Ready", "Stalled") and found["status"] == "True" and current:
            return None
    return f"{item['kind']}/{item['metadata']['name']}: {item.get('status', {}).get('conditions')}"


def build_unfinished(item: dict[str, Any]) -> str | None:
    got = item.get("status", {}).get("phase")
    return None if got in ("Succeeded", "Failed") else f"ModelBuild/{item['metadata']['name']} is {got}"


def serving_wrong(kubectl: Kubectl, names: list[str]) -> str | None:
    """Why the churn deployments do not serve the churn model's latest approved version."""
    versions = kubectl.get("mv", "-l", f"modelops.io/model={CHURN}")["items"]
    approved = [v for v in versions if v.get("status", {}).get("stage") == "Approved"]
    latest = max(approved, key=lambda v: v["spec"]["version"], default=None)
    for name in names:
        status = kubectl.get("md", name).get("status", {})
        ready = next((c for c in status.get("conditions", []) if c["type"] == "Ready"), {})
        if (
            latest is None
            or status.get("servingVersion") != latest["metadata"]["name"]
            or ready.get("status") != "True"
        ):
            return f"{name} serves {status.get('servingVersion')}, not {latest and latest['metadata']['name']}"
    return None


def converged(kubectl: Kubectl, serving: list[str]) -> list[str]:
    """Everything a user would still be waiting for; empty once the namespace has converged."""
    waiting = [why for b in kubectl.get("mb")["items"] if (why := build_unfinished(b))]
    for kind in ("mv", "md", "mm"):
        waiting += [why for item in kubectl.get(kind)["items"] if (why := unsettled(item))]
    if (why := serving_wrong(kubectl, serving)) is not None:
        waiting.append(why)
    found = census(kubectl)
    if found.duplicates or found.orphans:
        waiting.append(f"duplicates {found.duplicates}, orphans {found.orphans}")
    return waiting


def alert_state(kubectl: Kubectl) -> str | None:
    return next(
        (
            c["status"]
            for c in kubectl.get("mm", "alerting").get("status", {}).get("conditions", [])
            if c["type"] == ALERT
        ),
        None,
    )


# -- the chaos ----------------------------------------------------------------------------------------------------


class Killer:
    """A thread that SIGKILLs the leader `plan.kills` times at random moments (seeded), each after the last
    takeover; paused while the control plane restarts, so takeovers measure the operator, not the API server."""

    def __init__(self, candidates: Candidates, plan: Plan, rng: random.Random) -> None:
        self.candidates, self.plan, self.rng = candidates, plan, rng
        self.quiet = threading.Event()
        #: Held while a kill and its takeover are under way: a restart waits for it, so they never overlap.
        self.busy = threading.Lock()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="chaos-killer", daemon=True)

    def _run(self) -> None:
        try:
            for _ in range(self.plan.kills):
                time.sleep(self.rng.uniform(*self.plan.gap_s))
                while self.quiet.is_set():
                    time.sleep(0.5)
                with self.busy:
                    taken = self.candidates.kill_leader()
                print(f"# kill {self.candidates.kills}: taken over in {taken:.1f} s")
        except BaseException as error:  # reported by `join` in the test's thread
            self.error = error

    def start(self) -> Killer:
        self.thread.start()
        return self

    def join(self, timeout: float) -> None:
        self.thread.join(timeout)
        if self.error is not None:
            raise self.error
        assert not self.thread.is_alive(), f"the kills did not finish in {timeout:.0f} s"


def restart(component: str, killer: Killer, candidates: Candidates) -> None:
    """Restart a control-plane component (kills wait meanwhile); leaders that step down are replaced."""
    killer.quiet.set()
    try:
        with killer.busy:
            took = Cluster(log=lambda m: print(f"# {m}")).restart_component(component)
            print(f"# restarted {component}: the API answered again after {took:.1f} s")
            candidates.wait_for_leader(timeout=120)
    finally:
        killer.quiet.clear()


def episode(kubectl: Kubectl, sink: AlertReceiver, down_s: float = 0) -> None:
    """ErrorRateHigh raised by failing requests, then cleared by good ones; with `down_s`, the receiver refuses
    connections from before the raise until `down_s` seconds later."""
    if down_s:
        take_down(sink)
    went_down = time.monotonic()
    with traffic(kubectl, BROKEN):
        eventually(lambda: alert_state(kubectl) == "True", timeout=180, what=f"{ALERT} raised")
        if down_s:
            time.sleep(max(0.0, down_s - (time.monotonic() - went_down)))
            bring_up(sink)
    with traffic(kubectl, NORMAL):
        try:
            eventually(lambda: alert_state(kubectl) == "False", timeout=180, what=f"{ALERT} cleared")
        except AssertionError as error:
            status = kubectl.get("mm", "alerting").get("status", {})
            raise AssertionError(f"{error}: {status.get('conditions')}; received {sink.statuses(ALERT)}") from None


@pytest.fixture
def sink() -> Iterator[AlertReceiver]:
    receiver = AlertReceiver()
    yield receiver
    receiver.close()


@pytest.fixture
def candidates(
    namespace: str, operator_env: dict[str, str], sink: AlertReceiver, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Candidates]:
    """Two operator candidates for the Lease, with what the administrator allows this test (the webhook sink, and
    in the long form Prometheus)."""
    if plan().prometheus_down_s:
        request.getfixturevalue("prometheus")
    running = Candidates(tmp_path, namespace, LEASE, {**operator_env, **allowed_by_administrator(request)})
    yield running
    running.stop()
    if request.node.rep_call.failed if hasattr(request.node, "rep_call") else False:
        print(running.logs()[-20000:])


def summary(
    chaos: Plan, restarted: int, candidates: Candidates, found: Census, alerts: AlertTally
) -> dict[str, object]:
    """The counts `make chaos` ends with (printed as they stand when a step fails, too)."""
    return {
        "kills": candidates.kills,
        "api_restarts": restarted,
        "objects": chaos.objects,
        "duplicates": found.duplicates,
        "orphans": len(found.orphans),
        "lost_alerts": alerts.lost,
        "duplicate_alerts": alerts.duplicates,
        "max_takeover_s": round(max(candidates.takeovers, default=0.0), 1),
    }


def in_turn(steps: list[Callable[[], object]], rng: random.Random) -> None:
    """Do the steps in a seeded random order: creates, updates and deletes interleave as users' would."""
    for step in rng.sample(steps, len(steps)):
        step()


THROUGH_PROMETHEUS = "through-prometheus"


def prometheus_outage(kubectl: Kubectl, request: pytest.FixtureRequest, down_s: float) -> threading.Thread:
    """A monitor of `cancer` reading through Prometheus, judged once; then, in a thread, Prometheus stopped for
    `down_s` seconds and started again (same address, same data)."""
    prometheus: Prometheus = request.getfixturevalue("prometheus")
    pods = kubectl.get("pods", "-l", "app.kubernetes.io/instance=cancer")["items"]
    prometheus.set_targets([f"{p['status']['podIP']}:3000" for p in pods], kubectl.namespace)
    through = monitor(THROUGH_PROMETHEUS, "cancer")
    through["spec"].update(source={"type": "Prometheus", "prometheusUrl": prometheus.url}, window="10s")
    kubectl.apply(through)
    eventually(lambda: checked(kubectl, THROUGH_PROMETHEUS), timeout=120, what="judged through Prometheus")

    def down_and_up() -> None:
        prometheus.stop()
        print(f"# Prometheus stopped for {down_s:.0f} s")
        time.sleep(down_s)
        prometheus.start()
        print("# Prometheus started again")

    thread = threading.Thread(target=down_and_up, name="prometheus-outage", daemon=True)
    thread.start()
    return thread


def checked(kubectl: Kubectl, name: str) -> bool:
    """The monitor is Ready, having judged a window at its current generation."""
    item = kubectl.get("mm", name)
    ready = next((c for c in item.get("status", {}).get("conditions", []) if c["type"] == "Ready"), {})
    current = ready.get("observedGeneration") == item["metadata"]["generation"]
    return ready.get("status") == "True" and ready.get("reason") == "Checked" and current


def test_everything_converges_after_kills_and_outages(
    kubectl: Kubectl, candidates: Candidates, sink: AlertReceiver, forest: dict, request: pytest.FixtureRequest
) -> None:
    chaos = plan()
    seed = int(os.environ.get("MODELOPS_CHAOS_SEED") or random.SystemRandom().randrange(10**6))
    print(f"# chaos seed {seed} (MODELOPS_CHAOS_SEED={seed} repeats it): {chaos}")
    rng = random.Random(seed)
    began = time.monotonic()
    approver = kubectl.as_user("alice", APPROVERS)
    kubectl.run("create", "secret", "generic", ALERTS_SECRET, f"--from-literal=team-hook={sink.url}")
    kubectl.apply(version(1, forest))  # model `cancer`, served by deployment `cancer`, which `alerting` watches
    serving = [f"serve-{i}" for i in range(chaos.serving)]
    idle = [f"idle-{i}" for i in range(chaos.idle)]

    candidates.start()
    killer = Killer(candidates, chaos, rng).start()
    restarts = list(chaos.restarts)

    # Create everything, interleaved.
    creates: list[Callable[[], object]] = [
        lambda: kubectl.apply(deployment(replicas=1)),
        lambda: kubectl.apply(monitor("alerting", "cancer", webhook=True)),
    ]
    creates += [lambda i=i: kubectl.apply(build(i)) for i in range(chaos.builds)]
    creates += [lambda i=i: kubectl.apply(record(i + 1)) for i in range(chaos.records)]
    creates += [lambda n=n: kubectl.apply(model_deployment(n, CHURN)) for n in serving]
    creates += [lambda i=i, n=n: kubectl.apply(model_deployment(n, f"ghost-{i}")) for i, n in enumerate(idle)]
    targets = [*serving, *idle]
    creates += [
        lambda i=i: kubectl.apply(monitor(f"watch-{i}", targets[i % len(targets)])) for i in range(chaos.monitors)
    ]
    in_turn(creates, rng)
    patch(approver, "mv", "cancer-v1", APPROVAL)  # seen Approved by the end, like everything else
    if restarts:
        restart(restarts.pop(0), killer, candidates)  # builds are training, versions being validated

    # Update and approve, then delete about a fifth of what has no children worth keeping.
    updates: list[Callable[[], object]] = [
        lambda n=n: patch(kubectl, "md", n, {"spec": {"replicas": 2}}) for n in rng.sample(idle, len(idle) // 2)
    ]
    updates += [
        lambda i=i: patch(kubectl, "mm", f"watch-{i}", {"spec": {"window": "12s"}}) for i in range(chaos.monitors)
    ]
    updates += [lambda i=i: kubectl.run("label", "mb", f"{CHURN}-{i}", "team=chaos") for i in range(chaos.builds)]
    ledger = rng.sample(range(1, chaos.records + 1), chaos.records // 3)
    updates += [lambda i=i: patch(approver, "mv", f"ledger-v{i}", APPROVAL) for i in ledger]
    in_turn(updates, rng)
    gone_md = rng.sample(idle, len(idle) // 5)
    gone_mm = rng.sample(range(chaos.monitors), chaos.monitors // 5)
    gone_mv = rng.sample([i for i in range(1, chaos.records + 1) if i not in ledger], chaos.records // 5)
    deletes: list[Callable[[], object]] = [lambda n=n: kubectl.run("delete", "md", n, "--wait=false") for n in gone_md]
    deletes += [lambda i=i: kubectl.run("delete", "mm", f"watch-{i}", "--wait=false") for i in gone_mm]
    deletes += [lambda i=i: kubectl.run("delete", "mv", f"ledger-v{i}", "--wait=false") for i in gone_mv]
    in_turn(deletes, rng)

    # The builds finish; an approver approves what they recorded; one build is deleted (its Job goes with it).
    finished = [phase(kubectl, f"{CHURN}-{i}", timeout=600) for i in range(chaos.builds)]
    for done in finished:
        if done["status"]["phase"] == "Succeeded":
            patch(approver, "mv", done["status"]["modelVersion"], APPROVAL)
    kubectl.run("delete", "mb", f"{CHURN}-0", "--wait=false")
    if restarts:
        restart(restarts.pop(0), killer, candidates)  # the serving deployments are rolling out

    # The alert raised and cleared around the kills, once with the receiver down for minutes; Prometheus down too.
    try:
        eventually(lambda: condition(kubectl, "Ready").get("status") == "True", timeout=300, what="cancer serving")
        outage = prometheus_outage(kubectl, request, chaos.prometheus_down_s) if chaos.prometheus_down_s else None
        for number in range(chaos.episodes):
            episode(kubectl, sink, chaos.receiver_down_s if number == 1 else 0)
        killer.join(timeout=60 * max(5, chaos.kills))
        if outage is not None:
            outage.join(timeout=chaos.prometheus_down_s + 60)
    except BaseException:
        print(
            json.dumps(
                summary(
                    chaos,
                    len(chaos.restarts) - len(restarts),
                    candidates,
                    census(kubectl),
                    tally(sink.received, ALERT, chaos.episodes),
                )
            )
        )
        raise
    waiting: list[str] = []

    def settled() -> bool:
        candidates.replace_exited()
        waiting[:] = converged(kubectl, serving)
        return not waiting

    try:
        eventually(settled, timeout=300, what="convergence")
        if outage is not None:  # Stalled (MetricsUnavailable) counts as settled: judging again is what tells
            eventually(lambda: checked(kubectl, THROUGH_PROMETHEUS), timeout=120, what="judged through Prometheus")
    except AssertionError as error:
        raise AssertionError(f"{error}; still waiting for: {waiting}") from None
    with contextlib.suppress(AssertionError):  # what never arrives is counted as lost below
        eventually(lambda: tally(sink.received, ALERT, chaos.episodes).lost == 0, timeout=60, what="deliveries")
    found: Census = census(kubectl)
    alerts: AlertTally = tally(sink.received, ALERT, chaos.episodes)
    crashes = candidates.crashes()
    print(f"# {time.monotonic() - began:.0f} s; census {found}; alerts {alerts}; exits {len(candidates.exits)}")
    print(json.dumps(summary(chaos, len(chaos.restarts) - len(restarts), candidates, found, alerts)))

    assert candidates.kills == chaos.kills
    assert found.duplicates == 0 and found.orphans == [], found
    assert alerts.lost == 0 and alerts.duplicates == 0, [
        (b["status"], b["alerts"][0]["startsAt"]) for b in sink.received
    ]
    assert crashes == [], "a candidate exited on its own:\n" + "\n".join(e.tail for e in crashes)
    assert max(candidates.takeovers) <= 30, candidates.takeovers
    # With the API server up throughout, a kill ends a handler but never fails one: a failure is the operator's own
    # (as the discovery cache's race across threads once was). With it restarted, handlers fail and retry.
    failed = [line for line in candidates.logs().splitlines() if "failed with an exception" in line]
    assert chaos.restarts or failed == [], failed[:20]
