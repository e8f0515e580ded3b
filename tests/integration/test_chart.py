"""The Helm chart: lints and renders clean, refuses bad values by name, and installs an operator that can do its job
and nothing more (it runs here as the chart's ServiceAccount, with that account's own token)."""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest
import yaml

from modelops.controllers.leadership import LEADING
from modelops.devcluster.cluster import kubeconfig_path
from modelops.devcluster.toolchain import KUBERNETES_VERSION, Toolchain
from modelops.evidence.signature import public_key_of
from tests.support.kube import APPROVERS, RESTRICTED, Kubectl
from tests.support.paths import ROOT
from tests.support.signing import private_key
from tests.support.storage import Store
from tests.support.waiting import eventually

CHART = ROOT / "charts" / "modelops"
EVERYTHING = (
    "metrics.serviceMonitor.enabled=true",
    "metrics.prometheusRule.enabled=true",
    "grafana.dashboard.enabled=true",
    "argocd.healthChecks=true",
    "audit.uri=s3://audit/trail",
    "audit.credentialsSecret=audit-keys",
    "signing.allowUnsigned=false",
)


def helm(tools: Toolchain, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [str(tools.helm), f"--kubeconfig={kubeconfig_path()}", *args], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0 or not check, done.stderr
    return done


def set_flags(values: Iterable[str]) -> list[str]:
    """helm's --set for each `key=value`."""
    return [arg for value in values for arg in ("--set", value)]


def render(tools: Toolchain, *values: str, namespace: str = "modelops", show: str = "") -> list[dict]:
    sets = set_flags(values)
    only = ["--show-only", show] if show else []
    text = helm(
        tools, "template", "mo", str(CHART), "-n", namespace, "--kube-version", KUBERNETES_VERSION, *sets, *only
    )
    return [d for d in yaml.safe_load_all(text.stdout) if d]


def named(documents: list[dict], kind: str) -> dict[str, dict]:
    return {
        (d["metadata"].get("namespace", "") + "/" + d["metadata"]["name"]): d for d in documents if d["kind"] == kind
    }


def test_chart_lints_clean_with_every_option(cluster: Toolchain) -> None:
    for values in ((), EVERYTHING, (*EVERYTHING, "watchNamespaces={a,b}", "replicas=2")):
        sets = set_flags(values)
        done = helm(cluster, "lint", "--strict", str(CHART), "--kube-version", KUBERNETES_VERSION, *sets)
        assert "0 chart(s) failed" in done.stdout and "WARNING" not in done.stdout + done.stderr, done.stdout


def test_plain_helm_template_renders_as_ci_pipelines_run_it(cluster: Toolchain) -> None:
    """No --kube-version: Helm then assumes an old Kubernetes, which must not stop a render or a lint."""
    rendered = helm(cluster, "template", "mo", str(CHART))
    assert any(d and d["kind"] == "Deployment" for d in yaml.safe_load_all(rendered.stdout))
    linted = helm(cluster, "lint", "--strict", str(CHART))
    assert "0 chart(s) failed" in linted.stdout, linted.stdout


def test_cluster_wide_install_renders_everything(cluster: Toolchain) -> None:
    sets = set_flags(EVERYTHING)
    text = helm(cluster, "template", "mo", str(CHART), "--include-crds", "--kube-version", KUBERNETES_VERSION, *sets)
    assert not text.stderr, text.stderr  # no warnings (e.g. about links in the chart)
    documents = [d for d in yaml.safe_load_all(text.stdout) if d]
    crds = named(documents, "CustomResourceDefinition")
    assert {name.split(".")[0].strip("/") for name in crds} >= {
        "modelbuilds", "modelversions", "modeldeployments", "modelmonitors"
    }  # fmt: skip
    for kind in ("ServiceMonitor", "PrometheusRule", "ValidatingAdmissionPolicy", "Service"):
        assert named(documents, kind), kind
    dashboards = [c for c in named(documents, "ConfigMap").values() if c["metadata"]["name"].endswith("-dashboard")]
    assert json.loads(dashboards[0]["data"]["modelops.json"])["uid"] == "modelops"
    binding = named(documents, "ClusterRoleBinding")["/mo-modelops"]
    assert binding["roleRef"]["name"] == "mo-modelops"  # cluster-wide: the operator's rules bound everywhere
    (operator,) = named(documents, "Deployment").values()
    args = operator["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--leader-elect=mo-modelops" in args and not any(a.startswith("--namespace") for a in args)
    assert named(documents, "RoleBinding")["default/mo-modelops-leader"]["roleRef"]["name"] == "mo-modelops-leader"


def test_trusted_keys_are_files_the_operator_reads_and_the_audit_keys_its_environment(
    cluster: Toolchain, tmp_path: Path
) -> None:
    public = tmp_path / "team-a.pem"
    public.write_bytes(public_key_of(private_key()))
    sets = ["--set-file", f"signing.trustedKeys.team-a={public}", *set_flags(EVERYTHING)]
    text = helm(cluster, "template", "mo", str(CHART), "-n", "modelops", "--kube-version", KUBERNETES_VERSION, *sets)
    documents = [d for d in yaml.safe_load_all(text.stdout) if d]
    keys = named(documents, "ConfigMap")["modelops/mo-modelops-trusted-keys"]
    assert keys["data"] == {"team-a.pem": public.read_text()}
    (operator,) = named(documents, "Deployment").values()
    pod = operator["spec"]["template"]["spec"]
    container = pod["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["MODELOPS_TRUSTED_KEYS_DIR"] == "/etc/modelops/trusted-keys"
    assert env["MODELOPS_ALLOW_UNSIGNED"] == "false" and env["MODELOPS_AUDIT_URI"] == "s3://audit/trail"
    assert container["envFrom"] == [{"secretRef": {"name": "audit-keys"}}]
    mounted = {m["name"]: m for m in container["volumeMounts"]}["trusted-keys"]
    assert (
        mounted["readOnly"]
        and {"name": "trusted-keys", "configMap": {"name": "mo-modelops-trusted-keys"}} in (pod["volumes"])
    )


def test_listed_namespaces_get_roles_there_only(cluster: Toolchain) -> None:
    documents = render(cluster, "watchNamespaces={team-a,team-b}")
    bindings = named(documents, "RoleBinding")
    assert set(bindings) == {
        f"{namespace}/mo-modelops{role}" for namespace in ("team-a", "team-b") for role in ("", "-approver")
    } | {"modelops/mo-modelops-leader"}, "the operator and the approvers in the listed namespaces, its Lease in its own"
    assert set(named(documents, "ClusterRole")) == {
        f"/mo-modelops{role}" for role in ("", "-approver", "-edit", "-view")
    }  # rules, not grants (the user roles aggregate into Kubernetes' own edit and view)
    assert set(named(documents, "ClusterRoleBinding")) == set(), "nothing is granted cluster-wide"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("replicas=0", "at '/replicas': minimum: got 0, want 1"),
        ("watchNamespaces={Prod}", "at '/watchNamespaces/0': 'Prod' does not match pattern"),
        ("image.pullPolicy=Sometimes", "at '/image/pullPolicy': value must be one of"),
        ("metrics.serviceMonitor.enabeld=true", "at '/metrics/serviceMonitor': additional properties 'enabeld'"),
        ("metrics.port=8080", "at '/metrics/port'"),
        ("approvals.groups={}", "at '/approvals/groups/0': minLength"),
        ("argocd.namespace=Argo_CD", "at '/argocd/namespace'"),
        ("audit.uri=https://audit.example.com", "at '/audit/uri'"),
        ("signing.trustedKeys.team-a=nope", "at '/signing/trustedKeys/team-a'"),
        ("signing.allowUnsigned=maybe", "at '/signing/allowUnsigned'"),
    ],
)
def test_bad_values_fail_naming_the_field(cluster: Toolchain, value: str, message: str) -> None:
    done = helm(
        cluster, "template", "mo", str(CHART), "--kube-version", KUBERNETES_VERSION, "--set", value, check=False
    )
    assert done.returncode != 0
    assert message in done.stderr, done.stderr


def test_operator_alert_rules_pass_promtool(cluster: Toolchain, tmp_path: Path) -> None:
    (rule,) = named(render(cluster, *EVERYTHING, show="templates/metrics.yaml"), "PrometheusRule").values()
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(yaml.safe_dump(rule["spec"]))
    checked = subprocess.run(
        [shutil.which("promtool") or "promtool", "check", "rules", str(rules_file)], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_operator_pod_passes_restricted_pod_security(cluster: Toolchain, kubectl: Kubectl) -> None:
    kubectl.run("label", "namespace", kubectl.namespace, "pod-security.kubernetes.io/enforce=restricted")
    sets = set_flags(EVERYTHING)
    text = helm(
        cluster, "template", "mo", str(CHART), "-n", kubectl.namespace, "--kube-version", KUBERNETES_VERSION, *sets
    )
    deployment = [d for d in yaml.safe_load_all(text.stdout) if d and d["kind"] == "Deployment"]
    done = kubectl.apply(deployment[0], "--dry-run=server", check=False)
    assert done.returncode == 0, done.stderr
    assert "violate" not in done.stderr, done.stderr


# ---- helm install, then the operator as the chart's ServiceAccount ----


@pytest.fixture
def extra_namespaces(kubectl: Kubectl) -> Iterator[tuple[str, str]]:
    """The namespace the operator watches, and a stand-in for Argo CD's (with an argocd-cm already in use)."""
    apps, argocd = (f"{kubectl.namespace[:50]}-{suffix}" for suffix in ("apps", "argo"))
    admin = Kubectl(kubectl.tools)
    for name in (apps, argocd):
        admin.run("create", "namespace", name)
    admin.run("create", "configmap", "argocd-cm", "-n", argocd, "--from-literal=url=https://argocd.example.com")
    yield apps, argocd
    for name in (apps, argocd):
        admin.run("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture
def release(
    cluster: Toolchain, kubectl: Kubectl, extra_namespaces: tuple[str, str], image: str, store: Store
) -> Iterator[str]:
    """The chart installed as a user would, from the image built here: two operator pods (one works, one waits)
    in a namespace enforcing `restricted`, watching the apps namespace (which holds the store's Secret)."""
    apps, argocd = extra_namespaces
    admin = Kubectl(cluster)
    for namespace in (kubectl.namespace, apps):
        admin.run("label", "namespace", namespace, RESTRICTED, "--overwrite")
    admin.apply(store.objects.secret_manifest(apps))
    name = f"mo-{uuid.uuid4().hex[:6]}"
    repository, tag = image.split(":")
    values = (
        "argocd.healthChecks=true",
        f"argocd.namespace={argocd}",
        f"watchNamespaces={{{apps}}}",
        f"image.repository={repository}",
        f"image.tag={tag}",
        "image.pullPolicy=Never",  # built here, loaded into the node: there is nowhere to pull it from
        "replicas=2",
    )
    helm(cluster, "install", name, str(CHART), "-n", kubectl.namespace, *set_flags(values), "--wait", "--timeout=3m")
    yield name
    helm(cluster, "uninstall", name, "-n", kubectl.namespace, "--wait", check=False)


def leads(log: str) -> bool:
    """Whether a replica has taken the Lease, by its log."""
    return LEADING in log


def can(kubectl: Kubectl, user: str, *request: str) -> bool:
    done = kubectl.run("auth", "can-i", *request, f"--as={user}", check=False)
    return done.stdout.strip() == "yes"


def can_in_group(kubectl: Kubectl, user: str, verb: str, resource: str, group: str, namespace: str) -> bool:
    """The authorizer's answer for a kind the cluster may not serve (`kubectl auth can-i` resolves a group through
    discovery, and without the CRD asks about another resource), as a SubjectAccessReview."""
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {
            "user": user,
            "groups": ["system:serviceaccounts", "system:authenticated"],
            "resourceAttributes": {"verb": verb, "resource": resource, "group": group, "namespace": namespace},
        },
    }
    done = kubectl.run("create", "-o", "json", "-f", "-", stdin=json.dumps(review))
    return bool(json.loads(done.stdout)["status"].get("allowed"))


def test_helm_install_runs_a_least_privilege_operator_through_the_examples(
    cluster: Toolchain, kubectl: Kubectl, release: str, extra_namespaces: tuple[str, str], image: str
) -> None:
    apps, argocd = extra_namespaces
    account = f"{release}-modelops"
    installed = kubectl.get("deployment,serviceaccount,service", "-l", f"app.kubernetes.io/instance={release}")
    assert sorted(i["kind"] for i in installed["items"]) == ["Deployment", "Service", "ServiceAccount"]

    # What it may and may not do, as the API server's authorizer answers for the chart's ServiceAccount.
    user = f"system:serviceaccount:{kubectl.namespace}:{account}"
    admin = Kubectl(cluster)
    # One request allowed for every rule of the operator's role, and the closest ones it does not grant refused.
    here, status = ("-n", apps), "--subresource=status"
    allowed = [
        ("watch", "modelversions.modelops.io", *here),  # the four kinds: get, list, watch
        ("patch", "modelmonitors.modelops.io", *here),  # to remove the finalizer earlier versions put
        ("create", "modelversions.modelops.io", *here),  # builds record versions, monitors start builds
        ("patch", "modeldeployments.modelops.io", status, *here),
        ("create", "jobs.batch", *here),
        ("delete", "deployments.apps", *here),
        ("delete", "services", *here),  # the shadow's Service goes when its step ends
        ("watch", "services", *here),  # an unchanged Service is not written again; a removed one is put back
        ("delete", "horizontalpodautoscalers.autoscaling", *here),
        ("list", "pods", *here),
        ("get", "secrets/modelops-alerts", *here),
        ("create", "events", *here),
        ("update", "leases.coordination.k8s.io/" + account, "-n", kubectl.namespace),
        ("patch", "configmaps/argocd-cm", "-n", argocd),
    ]
    refused = [
        ("delete", "modelversions.modelops.io", *here),  # a version is a record
        ("patch", "modelversions.modelops.io", *here),  # the operator writes no spec or metadata of a version
        ("update", "modelversions.modelops.io", "--subresource=approval", *here),  # it approves nothing
        ("get", "modelversions.modelops.io", status, *here),
        ("create", "modeldeployments.modelops.io", *here),
        ("delete", "jobs.batch", *here),  # a build's Job goes with its build
        ("update", "deployments.apps", *here),
        ("list", "services", "-n", "default"),  # only in the namespaces it watches
        ("list", "horizontalpodautoscalers.autoscaling", *here),
        ("create", "pods", *here),
        ("get", "pods", "--subresource=log", *here),
        ("get", "secrets/salt", *here),  # one Secret per namespace, by name: no other
        ("list", "secrets", *here),
        ("get", "secrets/modelops-alerts", "-n", kubectl.namespace),  # its own namespace is not one it watches
        ("get", "secrets/modelops-alerts", "-n", "default"),
        ("create", "jobs.batch", "-n", "default"),
        ("delete", "events", *here),
        ("update", "leases.coordination.k8s.io/" + account, *here),  # its Lease lives in its own namespace only
        ("update", "leases.coordination.k8s.io/kube-controller-manager", "-n", kubectl.namespace),
        ("patch", "configmaps/other", "-n", argocd),
        ("delete", "nodes"),
        ("create", "clusterrolebindings"),
        ("list", "namespaces"),
        ("list", "customresourcedefinitions.apiextensions.k8s.io"),
    ]
    assert [r for r in allowed if not can(admin, user, *r)] == []
    assert [r for r in refused if can(admin, user, *r)] == []
    # HTTPRoutes it writes for deployments that name a Gateway; a Gateway itself it never changes
    assert can_in_group(admin, user, "patch", "httproutes", "gateway.networking.k8s.io", apps)
    assert not can_in_group(admin, user, "patch", "gateways", "gateway.networking.k8s.io", apps)

    # The chart's operator pods, as that ServiceAccount, one holding the Lease, take the examples from a build to a
    # monitor; then the working one goes, and the standby takes over.
    pods = kubectl.get("pods", "-l", f"app.kubernetes.io/instance={release}")["items"]
    assert len(pods) == 2 and all(p["status"]["phase"] == "Running" for p in pods)
    assert {p["spec"]["containers"][0]["image"] for p in pods} == {image}
    run_the_examples(Kubectl(cluster, apps))
    logs = {p["metadata"]["name"]: kubectl.run("logs", p["metadata"]["name"]).stdout for p in pods}
    working = [name for name, log in logs.items() if leads(log)]
    assert len(working) == 1, "exactly one replica works"
    (standby,) = set(logs) - set(working)
    assert "Initial authentication has finished" in logs[working[0]]
    assert kubectl.get("lease", account)["spec"]["holderIdentity"].startswith(working[0] + "_")
    kubectl.run("delete", "pod", working[0], "--wait=false")
    # at once: the working one releases the Lease on its way out
    eventually(lambda: leads(kubectl.run("logs", standby).stdout), timeout=60, what="a takeover")
    standby_lines = kubectl.run("logs", standby).stdout.splitlines()
    for log in (*logs.values(), "\n".join(standby_lines)):
        assert "Forbidden" not in log, log[-3000:]
    took_over = next(i for i, line in enumerate(standby_lines) if LEADING in line)
    acted = [line for line in standby_lines[:took_over] if "kopf" in line]
    assert acted == [], "the standby ran Kopf while the active replica ran"

    argocd_cm = admin.get("configmap", "argocd-cm", "-n", argocd)["data"]
    assert argocd_cm["url"] == "https://argocd.example.com"  # what was there stays
    assert {k for k in argocd_cm if k.startswith("resource.customizations.health.modelops.io_")} == {
        f"resource.customizations.health.modelops.io_{kind}"
        for kind in ("ModelBuild", "ModelVersion", "ModelDeployment", "ModelMonitor")
    }


def test_cluster_wide_install_grants_what_it_uses_everywhere_and_nothing_else(
    cluster: Toolchain, kubectl: Kubectl
) -> None:
    name = f"mo-{uuid.uuid4().hex[:6]}"
    helm(cluster, "install", name, str(CHART), "-n", kubectl.namespace)
    try:
        user = f"system:serviceaccount:{kubectl.namespace}:{name}-modelops"
        admin = Kubectl(cluster)
        allowed = [
            ("watch", "modeldeployments.modelops.io", "--all-namespaces"),
            ("create", "modelversions.modelops.io", "-n", "default"),
            ("patch", "deployments.apps", "-n", "default"),
            ("get", "secrets/modelops-alerts", "-n", "default"),
            ("watch", "customresourcedefinitions.apiextensions.k8s.io"),
        ]
        refused = [
            ("list", "secrets", "-n", "default"),
            ("get", "secrets", "-n", "kube-system"),  # no Secret but one by name, modelops-alerts
            ("get", "secrets/bootstrap-token-abc", "-n", "kube-system"),
            ("delete", "nodes"),
            ("create", "pods", "-n", "default"),
            ("delete", "modelversions.modelops.io", "-n", "default"),
            ("patch", "customresourcedefinitions.apiextensions.k8s.io"),
            ("create", "clusterrolebindings"),
            ("patch", "configmaps", "-n", "default"),
        ]
        assert [r for r in allowed if not can(admin, user, *r)] == []
        assert [r for r in refused if can(admin, user, *r)] == []
    finally:
        helm(cluster, "uninstall", name, "-n", kubectl.namespace, "--wait", check=False)


def run_the_examples(apps: Kubectl) -> None:
    """examples/ as a newcomer applies them: build, approve, serve, monitor."""
    examples = ROOT / "examples"
    apps.run("create", "secret", "generic", "model-signing", "--from-literal=key.pem=" + private_key().decode())
    apps.run("apply", "-f", str(examples / "01-modelbuild.yaml"))
    eventually(
        lambda: apps.get("mb", "breast-cancer-1").get("status", {}).get("phase") == "Succeeded",
        timeout=240,
        what="the build to succeed",
    )
    eventually(
        lambda: apps.get("mv", "breast-cancer-v1").get("status", {}).get("stage") == "Validated", what="Validated"
    )
    patch = {"spec": {"approval": {"state": "Approved", "by": "dana", "reason": "chart test"}}}
    apps.as_user("dana", APPROVERS).run("patch", "mv", "breast-cancer-v1", "--type=merge", "-p", json.dumps(patch))
    apps.run("apply", "-f", str(examples / "02-modeldeployment.yaml"), "-f", str(examples / "03-modelmonitor.yaml"))

    def ready(kind: str, name: str) -> bool:
        conditions = apps.get(kind, name).get("status", {}).get("conditions", [])
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

    eventually(lambda: ready("md", "breast-cancer"), timeout=240, what="the deployment to be Ready")
    eventually(
        lambda: apps.get("mm", "breast-cancer").get("status", {}).get("lastCheckTime"), timeout=60, what="a check"
    )


# ---- the example Argo CD Applications ----

APPLICATIONS = {path.name: yaml.safe_load(path.read_text()) for path in (ROOT / "examples" / "argocd").glob("*.yaml")}


def test_example_application_values_install(cluster: Toolchain, tmp_path: Path) -> None:
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump(APPLICATIONS["operator.yaml"]["spec"]["source"]["helm"]["valuesObject"]))
    documents = helm(cluster, "template", "mo", str(CHART), "--kube-version", KUBERNETES_VERSION, "-f", str(values))
    assert "kind: ServiceMonitor" in documents.stdout and "--leader-elect=" in documents.stdout


def test_ignored_differences_name_fields_of_our_kinds() -> None:
    """A pointer that names no field of the CRD would silently ignore nothing."""
    crds = {
        doc["spec"]["names"]["kind"]: doc
        for doc in (yaml.safe_load(p.read_text()) for p in (ROOT / "crds").glob("model*.yaml"))
    }
    for ignored in APPLICATIONS["models.yaml"]["spec"]["ignoreDifferences"]:
        schema = crds[ignored["kind"]]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        for pointer in ignored["jsonPointers"]:
            node = schema
            for part in pointer.strip("/").split("/"):
                node = node["properties"][part]
            assert node["description"], pointer
