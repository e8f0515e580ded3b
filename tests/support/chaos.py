"""What the chaos suite needs besides the ordinary fixtures: operator candidates that a supervisor kills and restarts
(as a kubelet restarts a container), a census of what a user sees in the namespace afterwards, a webhook receiver
that can go down and come back on the same address, and a tally of the alerts it received."""

from __future__ import annotations

import collections
import threading
import time
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

from modelops.controllers.leadership import LEADING
from modelops.devcluster.alerts import AlertReceiver
from modelops.resources.modeldeployment import TRACK_LABEL
from tests.support.kube import Kubectl
from tests.support.operator import Operator

#: What a leader logs when it exits because it could not renew its Lease (by design, e.g. while the API server is
#: down): the kubelet restarts it as a standby. Any other exit we did not cause is a crash.
LOST_LEASE = "no longer leading"
#: The kinds the operator creates with a controller owner reference to one of ours.
CHILD_KINDS = "jobs,deployments.apps,services,horizontalpodautoscalers"


@dataclass
class Exit:
    """A candidate that exited without being killed: its exit code, whether it lost its Lease, its last lines."""

    code: int | None
    lost_lease: bool
    tail: str


class Candidates:
    """`count` operator processes contending for one Lease, always `count` of them running: a killed or exited one is
    replaced at once by a fresh process (with a log of its own), as the chart's Deployment would be by the kubelet."""

    def __init__(self, folder: Path, namespace: str, lease: str, env: dict[str, str], count: int = 2) -> None:
        self.folder, self.namespace, self.lease, self.count = folder, namespace, lease, count
        self.env = {**env, "POD_NAMESPACE": namespace}
        self.running: list[Operator] = []
        self.started = 0
        self.kills = 0
        self.takeovers: list[float] = []
        self.exits: list[Exit] = []
        self._lock = threading.Lock()

    def _start_one(self) -> Operator:
        self.started += 1
        candidate = Operator(
            self.folder / f"candidate-{self.started}.log",
            namespaces=[self.namespace],
            args=["--leader-elect", self.lease],
            env=self.env,
        )
        candidate.start()
        return candidate

    def start(self) -> Candidates:
        with self._lock:
            while len(self.running) < self.count:
                self.running.append(self._start_one())
        return self

    def leader(self) -> Operator | None:
        """The running candidate that took the Lease (one at a time, by the Lease's design)."""
        with self._lock:
            return next(
                (c for c in self.running if c.process and c.process.poll() is None and LEADING in c.log()), None
            )

    def replace_exited(self) -> list[Exit]:
        """Record and replace every candidate that exited on its own since the last look."""
        found = []
        with self._lock:
            for candidate in list(self.running):
                if candidate.process is None or candidate.process.poll() is None:
                    continue
                log = candidate.log()
                found.append(Exit(candidate.process.returncode, LOST_LEASE in log, log[-3000:]))
                self.running.remove(candidate)
            self.exits.extend(found)
        if found:
            self.start()
        return found

    def crashes(self) -> list[Exit]:
        """Exits that are not a leader stepping down because it could not renew: what a crash loop is made of."""
        return [e for e in self.exits if not e.lost_lease]

    def kill_leader(self, timeout: float = 90) -> float:
        """SIGKILL the leader, start its replacement at once, and return the seconds until another candidate leads."""
        leader = self.wait_for_leader(timeout)
        with self._lock:
            leader.kill()
            self.running.remove(leader)
            self.kills += 1
        killed = time.monotonic()
        self.start()
        while time.monotonic() - killed < timeout:
            self.replace_exited()
            if self.leader() is not None:
                taken = time.monotonic() - killed
                self.takeovers.append(taken)
                return taken
            time.sleep(0.2)
        raise AssertionError(f"no candidate took over within {timeout:.0f} s of the kill")

    def wait_for_leader(self, timeout: float = 90) -> Operator:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            self.replace_exited()
            if (leader := self.leader()) is not None:
                return leader
            time.sleep(0.2)
        raise AssertionError(f"no leader within {timeout:.0f} s:\n" + "\n".join(c.log()[-2000:] for c in self.running))

    def stop(self) -> None:
        with self._lock:
            for candidate in self.running:
                candidate.stop()

    def logs(self) -> str:
        """Every candidate's log, oldest first (the killed ones' too), for a failed test."""
        return "\n".join(f"== {p.name}\n{p.read_text()}" for p in sorted(self.folder.glob("candidate-*.log")))


# -- what a user sees afterwards ---------------------------------------------------------------------------------


def controller_uid(child: dict[str, Any]) -> tuple[str, str] | None:
    """(kind, uid) of the child's controller owner when that is one of ours."""
    owner = next((o for o in child["metadata"].get("ownerReferences", []) if o.get("controller")), None)
    if owner is None or not owner["apiVersion"].startswith("modelops.io/"):
        return None
    return owner["kind"], owner["uid"]


def extra(counts: collections.Counter[Any]) -> int:
    """How many more there are than one of each."""
    return sum(n - 1 for n in counts.values() if n > 1)


@dataclass
class Census:
    """Duplicates and orphans in a namespace, counted from what `kubectl get` shows."""

    objects: dict[str, int]
    duplicate_jobs: int
    duplicate_deployments: int
    duplicate_versions: int
    orphans: list[str] = field(default_factory=list)

    @property
    def duplicates(self) -> int:
        return self.duplicate_jobs + self.duplicate_deployments + self.duplicate_versions


def census(kubectl: Kubectl) -> Census:
    """More than one training Job per ModelBuild, more than one server Deployment per ModelDeployment and track,
    more than one ModelVersion per build (by the uid its lineage names), and children whose controller is gone."""
    ours = {
        kind: kubectl.get(kind)["items"] for kind in ("ModelBuild", "ModelVersion", "ModelDeployment", "ModelMonitor")
    }
    uids = {(kind, o["metadata"]["uid"]) for kind, items in ours.items() for o in items}
    children = kubectl.get(CHILD_KINDS)["items"]
    owned = [(child, owner) for child in children if (owner := controller_uid(child)) is not None]
    jobs = collections.Counter(owner for child, owner in owned if child["kind"] == "Job")
    servers = collections.Counter(
        (owner, child["metadata"].get("labels", {}).get(TRACK_LABEL))
        for child, owner in owned
        if child["kind"] == "Deployment"
    )
    versions = collections.Counter(
        v["spec"]["lineage"].get("buildUid") or v["spec"]["lineage"]["build"]
        for v in ours["ModelVersion"]
        if v["spec"].get("lineage", {}).get("build")
    )
    orphans = [f"{child['kind']}/{child['metadata']['name']}" for child, owner in owned if owner not in uids]
    return Census({k: len(v) for k, v in ours.items()}, extra(jobs), extra(servers), extra(versions), orphans)


# -- alerts ------------------------------------------------------------------------------------------------------


def take_down(receiver: AlertReceiver) -> None:
    """Stop answering at all (connections are refused), keeping the address for `bring_up`."""
    receiver.server.shutdown()
    receiver.server.server_close()


def bring_up(receiver: AlertReceiver) -> None:
    """Listen again on the same address, keeping what was received before."""
    handler = receiver.server.RequestHandlerClass
    receiver.server = ThreadingHTTPServer(receiver.server.server_address[:2], handler)
    threading.Thread(target=receiver.server.serve_forever, daemon=True).start()


@dataclass(frozen=True)
class AlertTally:
    """Transitions of one alert the monitor's status went through (as the test saw them) against deliveries."""

    expected: int
    delivered: int
    lost: int
    duplicates: int


def common(a: list[str], b: list[str]) -> int:
    """The length of the longest common subsequence of two short sequences."""
    lengths = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i, x in enumerate(a):
        for j, y in enumerate(b):
            lengths[i + 1][j + 1] = lengths[i][j] + 1 if x == y else max(lengths[i][j + 1], lengths[i + 1][j])
    return lengths[len(a)][len(b)]


def tally(received: list[dict[str, Any]], alert: str, episodes: int, still_firing: bool = False) -> AlertTally:
    """`episodes` times raised and cleared (the last one left firing when `still_firing`), as the test saw the
    monitor's status go, should arrive as exactly firing, resolved, firing, ...: a transition missing from what
    arrived is lost; anything more (a repeat, or a transition that never happened) was sent twice."""
    statuses = [b["status"] for b in received if b["commonLabels"]["alertname"] == alert]
    expected = 2 * episodes - (1 if still_firing else 0)
    wanted = ["firing" if i % 2 == 0 else "resolved" for i in range(expected)]
    matched = common(statuses, wanted)
    return AlertTally(expected, len(statuses), expected - matched, len(statuses) - matched)
