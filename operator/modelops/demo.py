"""`make demo`: the whole loop on a local cluster, from nothing.

A control plane and a real node, the API, the image built from the Dockerfile, and the operator installed by
`helm install` from it; then examples/, every pod a container: a build, its validated version, an approval (a
non-approver is refused), serving through the Service, monitoring; drift on shifted traffic raises an alert (condition,
Events, a webhook) and starts a retraining; the model's accuracy is estimated without labels, then realized from labels
posted later; its version is approved and rolled out as a canary under traffic until promoted. Every build signs
with the namespace's key; the end answers an auditor: the served model's files verified by the model-signing library,
its model card, the audit trail. A summary of what happened, with times, ends it.
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
from typing import Any

import httpx
from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from sklearn.datasets import load_breast_cancer

from modelops.api.v1alpha1.common import ALERTS_SECRET
from modelops.devcluster import node
from modelops.devcluster.alerts import AlertReceiver
from modelops.devcluster.cluster import Cluster, kubeconfig_path, state_dir
from modelops.devcluster.images import project_image
from modelops.devcluster.install import install_api
from modelops.devcluster.polling import poll
from modelops.devcluster.toolchain import Toolchain, ToolchainError, ensure_toolchain
from modelops.devcluster.traffic import Traffic, service_url
from modelops.evidence.signature import new_private_key, public_key_of

ROOT = Path(__file__).resolve().parents[2]
NAMESPACE = "modelops-demo"
OPERATOR_NAMESPACE = "modelops-system"
MODEL = "breast-cancer"
APPROVER = ("--as=dana", "--as-group=modelops-approvers")
#: The team's signing key: its private half in this Secret of the demo namespace, its public half trusted by the chart.
SIGNING_SECRET = "model-signing"
TEAM = "team-a"
PUBLIC_KEY = state_dir() / "demo" / f"{TEAM}.pem"
#: The operator's keys to the audit trail's store, in its own namespace.
AUDIT_SECRET = "modelops-audit"
FEATURES = load_breast_cancer(as_frame=True).frame.drop(columns=["target"])
NORMAL = FEATURES.sample(frac=1, random_state=1).to_dict(orient="records")
SHIFTED = (FEATURES.sample(frac=1, random_state=2) * 3).to_dict(orient="records")  # every feature three times larger
#: The same shift, with the labels the original tumours had (for the labels posted later).
SHIFTED_LABELLED = (
    load_breast_cancer(as_frame=True)
    .frame.sample(frac=1, random_state=5)
    .pipe(lambda f: f.assign(**{c: f[c] * 3 for c in FEATURES.columns}))
)
console = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 120)


def step(message: str) -> None:
    console.print(f"\n[bold cyan]▶[/] [bold]{message}[/]")


def audit_uri(demo: Demo) -> str:
    return demo.cluster.object_store().uri("audit")


def store_files(demo: Demo) -> Any:
    """The local store as an S3 client sees it, with its keys."""
    import fsspec

    store = demo.cluster.object_store()
    return fsspec.filesystem("s3", key=store.access_key, secret=store.secret_key, endpoint_url=store.endpoint)


def show(output: str) -> None:
    """A command's own output, unwrapped and uncoloured."""
    console.print(output.rstrip(), soft_wrap=True, markup=False, highlight=False)


class Demo:
    """The local cluster as the demo uses it: kubectl and `modelops` in the demo namespace, waiting, and a timeline."""

    def __init__(self, cluster: Cluster, tools: Toolchain) -> None:
        self.cluster = cluster
        self.tools = tools
        self.started = time.monotonic()
        self.timeline: list[tuple[float, str, str]] = []

    def mark(self, milestone: str, detail: str) -> None:
        """A milestone for the summary, said now as well."""
        self.timeline.append((time.monotonic() - self.started, milestone, detail))
        console.print(f"  [green]✔[/] {escape(milestone)}: {escape(detail)}")

    def kubectl(self, *args: str, stdin: str | None = None) -> str:
        done = self.cluster.kubectl(self.tools, *args, stdin=stdin)
        if done.returncode != 0:
            raise SystemExit(f"kubectl {' '.join(args)} failed: {done.stderr}")
        return done.stdout

    def field(self, kind: str, name: str, path: str) -> str:
        done = self.cluster.kubectl(self.tools, "get", kind, name, "-n", NAMESPACE, "-o", f"jsonpath={path}")
        return done.stdout.strip() if done.returncode == 0 else ""

    def condition(self, kind: str, name: str, type_: str) -> str:
        return self.field(kind, name, f'{{.status.conditions[?(@.type=="{type_}")].status}}')

    def modelops(
        self, *args: str, check: bool = True, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """The `modelops` command as a person types it, shown first, in the demo namespace (with `env` exported)."""
        command = ["modelops", *args, "-n", NAMESPACE]
        exported = "".join(f"{name}=… " for name in env or {})
        console.print(f"  [dim]$ {escape(exported + shlex.join(command))}[/]", highlight=False)
        done = subprocess.run(
            [sys.executable, "-m", "modelops.cli", *command[1:]],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "KUBECONFIG": str(kubeconfig_path()), **(env or {})},
        )
        if check and done.returncode != 0:
            raise SystemExit(f"{shlex.join(command)} failed: {done.stderr}")
        return done

    def wait_for(self, check: Callable[[], str], what: str, done: Callable[[str], bool], timeout: float = 300) -> str:
        """Poll until `done(check())`, printing each new value along the way."""
        seen = [""]

        def finished() -> str | None:
            value = check()
            if value and value != seen[-1]:
                console.print(f"  {escape(what)}: [yellow]{escape(value)}[/]")
                seen.append(value)
            return value if value and done(value) else None

        found = poll(finished, timeout, 1)
        if found is None:
            raise SystemExit(f"{what}: not done in {timeout:.0f}s (last seen: {seen[-1] or 'nothing'})")
        return found

    def judged(self) -> bool:
        """The monitor's last window had enough records to judge every feature."""
        verdicts = self.field("mm", MODEL, "{.status.features[*].verdict}").split()
        return bool(verdicts) and "NotEnoughData" not in verdicts

    def service(self) -> str:
        """The deployment's Service, as callers in the cluster reach it (its ClusterIP, through kube-proxy)."""
        return service_url(json.loads(self.kubectl("get", "service", MODEL, "-n", NAMESPACE, "-o", "json")))

    def shadow_agreement(self) -> str:
        """What the last shadow step found: the candidate's agreement with stable on the same mirrored records."""
        rollout = json.loads(self.kubectl("get", "md", MODEL, "-n", NAMESPACE, "-o", "json"))["status"]["rollout"]
        advanced = [d for d in rollout.get("decisions", []) if d["action"] == "Advance" and d.get("step") == 0]
        agreement = (
            next((g for g in (advanced[-1].get("gates") or []) if g["gate"] == "agreement"), None) if advanced else None
        )
        if agreement is None or agreement.get("value") is None:
            return "no agreement measured"
        return (
            f"agreement with the stable version {agreement['value']:.1%} on {agreement['samples']} mirrored records "
            f"(minAgreement {agreement['limit']:.0%}); callers got only the stable answers"
        )

    def ready_servers(self) -> int:
        return int(self.field("md", MODEL, "{.status.readyReplicas}") or 0)

    def build(self, name: str) -> str:
        """Follow a build to its end; the version it recorded, validated (or the demo stops)."""
        phase = self.wait_for(
            lambda: " ".join(
                filter(
                    None, (self.field("mb", name, "{.status.phase}"), self.field("mb", name, "{.status.failureReason}"))
                )
            ),
            f"ModelBuild {name}",
            lambda v: v.split()[0] in ("Succeeded", "Failed"),
        )
        if phase != "Succeeded":
            show(self.kubectl("get", "mb", name, "-n", NAMESPACE, "-o", "jsonpath={.status.conditions}"))
            raise SystemExit(f"the build {name} failed")
        version = self.field("mb", name, "{.status.modelVersion}")
        accuracy = self.field("mv", version, "{.spec.metrics.accuracy}")
        self.mark(f"built {version}", f"ModelBuild {name}, accuracy {float(accuracy):.3f}")
        stage = self.wait_for(
            lambda: self.field("mv", version, "{.status.stage}"), f"ModelVersion {version}", lambda v: v != "Candidate"
        )
        for check in json.loads(self.field("mv", version, "{.status.checks}") or "[]"):
            console.print(f"  {'✔' if check['passed'] else '✘'} {escape(check['message'])}")
        if stage != "Validated":
            raise SystemExit(f"{version} is {stage}")
        self.mark(f"validated {version}", "thresholds met, no worse than the champion")
        return version

    def approve(self, version: str, reason: str) -> None:
        said = self.modelops("approve", version, "--reason", reason, *APPROVER)
        show(said.stdout + said.stderr)
        self.wait_for(
            lambda: self.field("mv", version, "{.status.stage}"), f"ModelVersion {version}", lambda v: v == "Approved"
        )
        self.mark(f"approved {version}", f"by dana: {reason}")


def main() -> int:
    say = lambda m: console.print(f"  {m}")  # noqa: E731
    cluster = Cluster(log=say)
    step("1. local Kubernetes, no Docker: a control plane, and a real node (containerd, kubelet, kube-proxy, DNS, S3)")
    cluster.up()
    tools = ensure_toolchain(say)
    demo = Demo(cluster, tools)

    step("2. the ModelOps API: CRDs, admission policies, approver and user roles")
    show(install_api(tools, ROOT / "crds", ROOT / "charts" / "modelops"))

    step("3. the image: the Dockerfile, built here by buildah on a base of Debian's packages, loaded into the node")
    try:
        image = project_image(ROOT, say)
    except ToolchainError as error:
        raise SystemExit(str(error)) from None
    cluster.import_image(image)
    demo.mark("image", f"{image.reference}, {image.archive.stat().st_size / 2**20:.0f} MiB compressed")

    receiver = AlertReceiver(host=node.NODE_ADDRESS)  # where the operator's pod can reach it, still on this machine
    try:
        prepare_the_namespace(demo, receiver)
        step("5. the operator: `helm install` of the chart, from that image, allowed this one webhook receiver")
        install_the_operator(demo, image.reference, receiver.prefix)
        run_the_loop(demo, receiver)
    finally:
        receiver.close()

    summary = Table(title="What happened", title_justify="left", show_lines=False)
    for column in ("time", "milestone", "detail"):
        summary.add_column(column, overflow="fold")
    for seconds, milestone, detail in demo.timeline:
        summary.add_row(f"{int(seconds) // 60}:{int(seconds) % 60:02d}", milestone, detail)
    console.print()
    console.print(summary)
    console.print(
        Panel.fit(
            "The local cluster is still running, so you can look around:\n"
            f"  export KUBECONFIG={kubeconfig_path()}\n"
            f"  export PATH={tools.kubectl.parent}:$PATH\n"
            f"  kubectl get modelops,pods -n {NAMESPACE} -o wide\n"
            f"  kubectl logs deploy/modelops -n {OPERATOR_NAMESPACE}\n"
            f"  .venv/bin/modelops lineage md/{MODEL} -n {NAMESPACE}\n"
            "Stop it with: .venv/bin/modelops cluster down",
            title="ModelOps demo",
        )
    )
    return 0


def prepare_the_namespace(demo: Demo, receiver: AlertReceiver) -> None:
    step(f"4. a fresh namespace {NAMESPACE} enforcing Pod Security restricted; its store's keys; a webhook")
    demo.cluster.kubectl(demo.tools, "delete", "namespace", NAMESPACE, "--wait=true", "--timeout=120s")
    demo.kubectl("create", "namespace", NAMESPACE)
    trail = f"{audit_uri(demo)}/{NAMESPACE}"
    if store_files(demo).exists(trail):  # a fresh namespace, a fresh audit trail: the last demo's is gone too
        store_files(demo).rm(trail, recursive=True)
    demo.kubectl("label", "namespace", NAMESPACE, "pod-security.kubernetes.io/enforce=restricted")
    demo.kubectl("apply", "-f", "-", stdin=json.dumps(demo.cluster.object_store().secret_manifest(NAMESPACE)))
    console.print(f"  [dim]$ modelops cluster storage-secret -n {NAMESPACE} | kubectl apply -f -[/]")
    demo.kubectl(
        "create", "secret", "generic", ALERTS_SECRET, "-n", NAMESPACE, f"--from-literal=demo-hook={receiver.url}"
    )
    console.print(
        f"  [dim]$ kubectl create secret generic {ALERTS_SECRET} --from-literal=demo-hook=<the receiver's URL>[/]"
    )
    # the team's signing key: the private half in the namespace for its builds, the public half for the chart
    private = new_private_key()
    demo.kubectl(
        "create", "secret", "generic", SIGNING_SECRET, "-n", NAMESPACE, "--from-literal=key.pem=" + private.decode()
    )
    PUBLIC_KEY.parent.mkdir(parents=True, exist_ok=True)
    PUBLIC_KEY.write_bytes(public_key_of(private))
    console.print(f"  [dim]$ kubectl create secret generic {SIGNING_SECRET} --from-file=key.pem  # a new P-256 key[/]")


def install_the_operator(demo: Demo, image: str, webhook_prefix: str) -> None:
    repository, tag = image.rsplit(":", 1)
    values = {
        "image.repository": repository,
        "image.tag": tag,
        "image.pullPolicy": "Never",
        "watchNamespaces": f"{{{NAMESPACE}}}",
        "alerts.webhookUrlPrefixes": f"{{{webhook_prefix}}}",
    }
    # the audit trail goes to a folder of the store with keys only the operator holds (here: the store's own)
    demo.cluster.kubectl(demo.tools, "create", "namespace", OPERATOR_NAMESPACE)
    store = demo.cluster.object_store()
    audit_secret = {**store.secret_manifest(OPERATOR_NAMESPACE), "metadata": {"name": AUDIT_SECRET}}
    demo.kubectl("apply", "-n", OPERATOR_NAMESPACE, "-f", "-", stdin=json.dumps(audit_secret))
    values.update({"audit.uri": audit_uri(demo), "audit.credentialsSecret": AUDIT_SECRET})
    command = ["upgrade", "--install", "modelops", "charts/modelops", "-n", OPERATOR_NAMESPACE, "--create-namespace"]
    command += [arg for key, value in values.items() for arg in ("--set", f"{key}={value}")]
    command += ["--set-file", f"signing.trustedKeys.{TEAM}={PUBLIC_KEY}"]
    console.print(f"  [dim]$ helm {escape(shlex.join(command))}[/]", highlight=False)
    done = subprocess.run(
        [str(demo.tools.helm), f"--kubeconfig={kubeconfig_path()}", *command, "--wait", "--timeout=3m"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise SystemExit(f"helm install failed: {done.stderr}")
    show(demo.kubectl("get", "pods", "-n", OPERATOR_NAMESPACE, "-o", "wide"))
    demo.mark("operator running", f"deploy/modelops in {OPERATOR_NAMESPACE}, a pod from {image}")


def run_the_loop(demo: Demo, receiver: AlertReceiver) -> None:
    step("6. the examples, as a newcomer applies them; the monitor's alerts also go to the webhook")
    show(demo.kubectl("apply", "-n", NAMESPACE, "-f", str(ROOT / "examples")))
    webhook = {"spec": {"alerts": {"webhook": {"urlSecretKey": "demo-hook"}}}}
    demo.kubectl("patch", "mm", MODEL, "-n", NAMESPACE, "--type=merge", "-p", json.dumps(webhook))

    step("7. the build: a real training run in a Job's container; artifacts to S3; then validation")
    first = demo.build(f"{MODEL}-1")

    step("8. approval: mallory may edit ModelVersions (RBAC), but only the approvers group may approve (the policy)")
    demo.kubectl(
        "create", "role", "version-editor", "-n", NAMESPACE, "--verb=get,patch", "--resource=modelversions.modelops.io"
    )
    demo.kubectl(
        "create", "rolebinding", "mallory-edits-versions", "-n", NAMESPACE, "--role=version-editor", "--user=mallory"
    )
    refused = demo.modelops("approve", first, "--reason", "looks fine to me", "--as=mallory", check=False)
    console.print(f"  mallory: [red]{escape(refused.stderr.strip().splitlines()[-1].removeprefix('error '))}[/]")
    demo.approve(first, "metrics reviewed")

    step("9. serving: the ModelDeployment follows the latest Approved version; callers use its Service")
    demo.wait_for(
        lambda: demo.field("md", MODEL, "{.status.servingVersion}") + " " + demo.condition("md", MODEL, "Ready"),
        f"ModelDeployment {MODEL} (version, Ready)",
        lambda v: v == f"{first} True",
    )
    url = demo.service()
    answer = httpx.post(f"{url}/predict", json={"records": NORMAL[:3]}, timeout=30).json()
    console.print(f"  POST {url}/predict (3 records) → {escape(json.dumps(answer))}")
    demo.mark(f"serving {first}", f"{demo.ready_servers()} pods behind {url}, POST /predict → {answer['predictions']}")

    step("10. monitoring: normal traffic first, then traffic whose features moved (every value x3)")
    with Traffic(url, NORMAL):
        demo.wait_for(
            lambda: demo.condition("mm", MODEL, "DriftDetected") if demo.judged() else "",
            "DriftDetected on normal traffic, every feature judged",
            lambda v: v == "False",
            timeout=120,
        )
    demo.mark(
        "normal traffic judged",
        f"no drift ({demo.field('mm', MODEL, '{.status.samples}')} requests in the last window)",
    )
    with Traffic(url, SHIFTED):
        demo.wait_for(
            lambda: demo.condition("mm", MODEL, "DriftDetected"), "DriftDetected", lambda v: v == "True", timeout=180
        )
    drifted = demo.field("mm", MODEL, '{.status.activeAlerts[?(@.name=="DriftDetected")].message}')
    demo.mark("drift detected", drifted[:100] + ("…" if len(drifted) > 100 else ""))
    show(demo.kubectl("get", "mm", "-n", NAMESPACE))
    demo.wait_for(
        lambda: ",".join(receiver.statuses("DriftDetected")), "webhook received", lambda v: "firing" in v, timeout=60
    )
    demo.mark("alert delivered", "DriftDetected firing → the webhook (and Warning Events on monitor and deployment)")

    step("10b. what the model is worth: estimated without labels, then realized from labels posted later")
    worth_it(demo, url)

    step("11. retraining: the monitor started a ModelBuild from its template")
    retrain = demo.wait_for(lambda: demo.field("mm", MODEL, "{.status.lastRetrain.build}"), "retraining", bool)
    demo.mark("retraining started", f"ModelBuild {retrain}")
    second = demo.build(retrain)

    step(f"12. {second} approved, and rolled out as a canary while traffic flows")
    with Traffic(url, NORMAL, pause=0.1):
        demo.approve(second, "retrained on fresh data")
        demo.wait_for(
            lambda: " ".join(
                filter(
                    None,
                    (
                        demo.field("md", MODEL, "{.status.rollout.phase}"),
                        (weight := demo.field("md", MODEL, "{.status.rollout.canaryWeight}")) and f"{weight}%",
                        demo.field("md", MODEL, "{.status.rollout.lastDecision.reason}"),
                    ),
                )
            ),
            "canary",
            lambda v: demo.field("md", MODEL, "{.status.servingVersion}") == second or v.startswith("RolledBack"),
            timeout=400,
        )
        decision = demo.field("md", MODEL, "{.status.rollout.lastDecision.reason}")
        if demo.field("md", MODEL, "{.status.servingVersion}") != second:
            raise SystemExit(f"the canary was rolled back: {decision}")
        demo.mark("shadow step judged", demo.shadow_agreement())
        demo.mark(f"canary {second} promoted", decision)
        demo.wait_for(
            lambda: demo.condition("md", MODEL, "Ready"), f"ModelDeployment {MODEL} Ready", lambda v: v == "True"
        )
        demo.wait_for(
            lambda: demo.condition("mm", MODEL, "DriftDetected"), "DriftDetected", lambda v: v == "False", timeout=180
        )
        demo.wait_for(
            lambda: ",".join(receiver.statuses("DriftDetected")),
            "webhook received",
            lambda v: "resolved" in v,
            timeout=60,
        )
    demo.mark("drift cleared", "normal traffic again; the webhook got DriftDetected resolved")

    step("13. what is deployed, from what, approved by whom")
    show(demo.modelops("lineage", f"md/{MODEL}").stdout)

    step("14. what the operator reported (Events on ModelOps objects)")
    for event in sorted(
        json.loads(demo.kubectl("get", "events", "-n", NAMESPACE, "-o", "json"))["items"],
        key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or "",
    ):
        involved = event["involvedObject"]
        if involved.get("apiVersion", "").startswith("modelops.io/"):
            subject = f"{involved['kind']}/{involved['name']}"
            console.print(
                f"  {subject:<50} {event['type']:<8} {event['reason']:<20} {event['message'][:100]}",
                markup=False,
                highlight=False,
            )

    step("15. the operator's own log, as any pod's: kubectl logs deploy/modelops")
    log = demo.kubectl("logs", "deploy/modelops", "-n", OPERATOR_NAMESPACE, "--tail=4")
    show("\n".join(line[:160] for line in log.splitlines()))

    what_an_auditor_asks(demo)


def what_an_auditor_asks(demo: Demo) -> None:
    """Is this the approved file, how was it made, what is it for, and what happened: from the store and cluster."""
    served = demo.field("md", MODEL, "{.status.servingVersion}")
    step(f"16. trust: {served}'s files in the store, verified by the model-signing library against {TEAM}'s key")
    record = json.loads(demo.kubectl("get", "mv", served, "-n", NAMESPACE, "-o", "json"))["spec"]
    folder = record["signature"]["uri"].rsplit("/", 1)[0]
    local = state_dir() / "demo" / served
    local.mkdir(parents=True, exist_ok=True)
    files = store_files(demo)
    for path in files.ls(folder):
        files.get(path, str(local / Path(path).name))
    command = ["model_signing", "verify", "key", "--signature", str(local / "model.sig")]
    command += ["--public_key", str(PUBLIC_KEY), str(local)]
    console.print(f"  [dim]$ {escape(shlex.join(command))}[/]", highlight=False)
    done = subprocess.run([sys.executable, "-m", *command], capture_output=True, text=True)
    show(done.stdout + done.stderr)
    if done.returncode != 0:
        raise SystemExit(f"the served model's signature does not verify: {done.stdout}{done.stderr}")
    demo.mark("signature verified", f"{served}: {', '.join(sorted(p.name for p in local.iterdir()))}")

    step(f"17. the model card of {served}: what its build signed, then its approval (modelops card)")
    show(demo.modelops("card", f"mv/{served}", "--key", str(PUBLIC_KEY)).stdout)

    step("18. the audit trail: every decision of the loop, kept in the store (modelops audit)")
    keys = demo.cluster.object_store().env()  # an auditor's read access to the store
    trail = demo.modelops("audit", f"md/{MODEL}", "--since", "180d", "--log", audit_uri(demo), env=keys).stdout
    show("\n".join(line[:160] for line in trail.splitlines()))
    demo.mark("audit trail", f"{len(trail.splitlines())} decisions, from the first build to the canary's promotion")


def worth_it(demo: Demo, url: str) -> None:
    """Shifted records answered with their request ids; the monitor's estimate of the serving version's accuracy;
    then their true labels posted to /feedback (to whichever pod), and the realized accuracy beside it."""
    labelled = SHIFTED_LABELLED.head(200)
    parts = [labelled.iloc[i : i + 20] for i in range(0, len(labelled), 20)]
    answers = [
        httpx.post(f"{url}/predict", json={"records": part.drop(columns=["target"]).to_dict(orient="records")}).json()
        for part in parts
    ]
    estimate = demo.wait_for(
        lambda: demo.field("mm", MODEL, "{.status.performance[0].estimated}"), "estimated accuracy", bool, timeout=60
    )
    holdout = float(demo.field("mm", MODEL, "{.status.performance[0].holdout}"))
    demo.mark("accuracy estimated", f"{float(estimate):.3f} without a label (held-out {holdout:.3f})")
    labels = [
        {"requestId": answer["requestId"], "index": i, "label": int(label)}
        for answer, part in zip(answers, parts, strict=True)
        for i, label in enumerate(part["target"])
    ]
    console.print(f"  POST {url}/feedback ({len(labels)} labels, each {{requestId, index, label}})")
    joined = httpx.post(f"{url}/feedback", json={"labels": labels}, timeout=60).json()["joined"]
    realized = demo.wait_for(
        lambda: demo.field("mm", MODEL, "{.status.performance[0].realized}"), "realized accuracy", bool, timeout=60
    )
    show(demo.kubectl("get", "mm", "-n", NAMESPACE))
    demo.mark(
        "accuracy realized",
        f"{float(realized):.3f} from {joined} labels joined on any pod: the shift keeps the forest confident, so the "
        "estimate cannot see what the labels show",
    )


if __name__ == "__main__":
    sys.exit(main())
