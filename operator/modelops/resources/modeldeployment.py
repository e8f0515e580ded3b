"""A ModelDeployment's children and decisions: which version, the server Deployments (stable and canary)
behind one Service, the shadow (a canary that only answers mirrored requests, behind a Service of its own), the
autoscaler, and the status."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from modelops.api.v1alpha1 import ModelDeployment, ModelDeploymentStatus, ModelVersion
from modelops.api.v1alpha1.common import duration_seconds
from modelops.api.v1alpha1.modeldeployment import FeedbackSpec, HistoryEntry, RolloutStatus, RuntimeSpec
from modelops.contract import serving as wire

from . import meta, security, trust
from .conditions import kstatus
from .policy import Policy

SERVER = "server"
#: The component of shadow pods: the deployment's Service does not select them, callers never reach them.
SHADOW = "shadow"
TRACK_LABEL = "modelops.io/track"
HTTP_PORT = 80
#: How long a server that is told to stop keeps answering first, so that every node's kube-proxy drops it from the
#: Service's rules before it stops (5 s once proved too short on a busy 2-core node: 2 callers of 345 failed).
DRAIN_SECONDS = 10
GATEWAY_GROUP = "gateway.networking.k8s.io"
HTTPROUTE = (f"{GATEWAY_GROUP}/v1", "HTTPRoute")
#: The server Deployments of a ModelDeployment: a shadow step runs the canary version as `shadow`.
ServerTrack = Literal["stable", "canary", "shadow"]


# -- which version ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Selection:
    """The version to serve, or why there is none."""

    version: ModelVersion | None
    reason: str
    message: str


def selection_facts(version: ModelVersion) -> tuple[str | None, bool]:
    """What of a ModelVersion `select_version` reads (besides its immutable record): its stage, and whether an
    approver approved it. A change to anything else cannot change what serves."""
    stage = version.status.stage if version.status else None
    approval, policy = version.spec.approval, version.spec.validation
    by_approver = (approval is not None and approval.state == "Approved") or bool(policy and policy.auto_approve)
    return stage, by_approver


def approved(version: ModelVersion) -> bool:
    """Approved by the operator's checks (its status) and by an approver (its spec, which only approvers may set:
    the approval policy), both: a status written by anyone else is not enough."""
    stage, by_approver = selection_facts(version)
    return stage == "Approved" and by_approver


def select_version(deployment: ModelDeployment, versions: list[ModelVersion], policy: Policy) -> Selection:
    """The pinned version, which must be Approved, or the latest Approved version of the model: only an approver
    makes a version servable. A version whose artifact lies outside the places the administrator allows this
    namespace never serves."""
    spec = deployment.spec
    namespace = deployment.metadata.namespace or ""

    def outside(version: ModelVersion) -> Selection:
        return Selection(
            None,
            "ArtifactNotAllowed",
            f"{version.metadata.name}: spec.artifact.uri {version.spec.artifact.uri} is outside the artifact "
            f"locations of namespace {namespace} ({policy.artifact_locations(namespace)})",
        )

    if spec.version is not None:
        pinned = next((v for v in versions if v.spec.version == spec.version), None)
        if pinned is None:
            return Selection(None, "VersionNotFound", f"spec.version: {spec.model} has no version {spec.version}")
        if not approved(pinned):
            current = pinned.status.stage if pinned.status and pinned.status.stage else "not validated yet"
            return Selection(
                None,
                "VersionNotApproved",
                f"spec.version: {pinned.metadata.name} is {current}, not Approved; "
                "an approver must approve it before it serves",
            )
        if not policy.artifact_allowed(pinned.spec.artifact.uri, namespace):
            return outside(pinned)
        if untrusted := trust.problem(pinned, policy):
            return Selection(None, "SignatureNotTrusted", f"spec.version: {untrusted}: it never serves")
        return Selection(pinned, "VersionPinned", f"serving {pinned.metadata.name} (spec.version)")
    servable = sorted((v for v in versions if approved(v)), key=lambda v: v.spec.version)
    if not servable:
        return Selection(None, "NoApprovedVersion", f"spec.model: {spec.model} has no Approved version yet")
    allowed = [v for v in servable if policy.artifact_allowed(v.spec.artifact.uri, namespace)]
    if not allowed:
        return outside(servable[-1])
    trusted = [v for v in allowed if trust.problem(v, policy) is None]
    if not trusted:
        return Selection(None, "SignatureNotTrusted", f"{trust.problem(allowed[-1], policy)}: it never serves")
    latest = trusted[-1]
    return Selection(latest, "LatestApproved", f"serving {latest.metadata.name}, the latest Approved version")


PROMETHEUS_NOT_ALLOWED = (
    "{field}: this Prometheus server is not one the operator's administrator allows (the chart's "
    "prometheus.allowedUrls), so it is never queried"
)


def spec_problem(deployment: ModelDeployment, policy: Policy) -> tuple[str, str] | None:
    """A setting the operator refuses to act on, as (reason, message naming the field)."""
    source = deployment.spec.metrics.prometheus if deployment.spec.metrics else None
    if source is not None and not policy.prometheus_allowed(source.url):
        return "PrometheusNotAllowed", PROMETHEUS_NOT_ALLOWED.format(field="spec.metrics.prometheus.url")
    return gateway_problem(deployment, policy)


def gateway_problem(deployment: ModelDeployment, policy: Policy) -> tuple[str, str] | None:
    """Why the deployment's route may not attach to the Gateway it names (then no route is written)."""
    gateway, namespace = deployment.spec.gateway, deployment.metadata.namespace or ""
    if gateway is None or policy.gateway_allowed(namespace, gateway.namespace or namespace, gateway.name):
        return None
    return (
        "GatewayNotAllowed",
        f"spec.gateway.namespace: Gateway {gateway.namespace}/{gateway.name} is in another namespace and not one "
        "the operator's administrator allows (the chart's gatewayApi.allowedParents), so no route attaches to it; "
        "the replicas share the traffic",
    )


# -- children --------------------------------------------------------------------------------------------


def deployment_name(deployment: ModelDeployment, track: ServerTrack) -> str:
    """The server Deployment of a track; the shadow's Service has the same name."""
    name = deployment.metadata.name
    return name if track == "stable" else meta.child_name(name, track)


def server_labels(deployment: ModelDeployment, track: ServerTrack = "stable") -> dict[str, str]:
    """What the Service selects: every server pod of this ModelDeployment, stable or canary; for the shadow
    track, its pods, which only its own Service selects."""
    component = SHADOW if track == "shadow" else SERVER
    return {"app.kubernetes.io/instance": deployment.metadata.name, "app.kubernetes.io/component": component}


def track_labels(deployment: ModelDeployment, track: ServerTrack) -> dict[str, str]:
    """The pods of one track."""
    return {**server_labels(deployment, track), TRACK_LABEL: track}


def selector_string(deployment: ModelDeployment) -> str:
    return ",".join(f"{k}={v}" for k, v in server_labels(deployment).items())


def desired_replicas(deployment: ModelDeployment) -> int:
    spec = deployment.spec
    if spec.autoscaling:
        return max(spec.autoscaling.min_replicas, spec.replicas or 0)
    return 1 if spec.replicas is None else spec.replicas


def split(total: int, weight: int) -> tuple[int, int]:
    """(stable, canary) replicas for a canary weight in percent; each side keeps at least one pod."""
    canary = max(1, round(total * weight / 100))
    return max(1, total - canary), canary


@dataclass(frozen=True)
class Mirroring:
    """What the stable servers are told in a shadow step: where the shadow listens, its version, the share."""

    url: str
    version: int
    share: int

    def env(self) -> list[dict[str, str]]:
        return [
            {"name": wire.SHADOW_URL_ENV, "value": self.url},
            {"name": wire.SHADOW_VERSION_ENV, "value": str(self.version)},
            {"name": wire.SHADOW_SHARE_ENV, "value": str(self.share)},
        ]


def mirroring(deployment: ModelDeployment, shadow: ModelVersion, share: int) -> Mirroring:
    name = deployment_name(deployment, "shadow")
    return Mirroring(
        f"http://{name}.{deployment.metadata.namespace}.svc:{HTTP_PORT}/predict", shadow.spec.version, share
    )


def feedback_taken(deployment: ModelDeployment) -> bool:
    feedback = deployment.spec.feedback
    return feedback is None or feedback.enabled


def peers_name(deployment: ModelDeployment) -> str:
    """The headless Service whose addresses are the deployment's serving pods: where a label finds its answer."""
    return meta.child_name(deployment.metadata.name, "peers")


def feedback_env(deployment: ModelDeployment, port: int) -> list[dict[str, Any]]:
    """What a stable or canary server is told to keep answers for labels (nothing when labels are not taken)."""
    if not feedback_taken(deployment):
        return []
    feedback = deployment.spec.feedback or FeedbackSpec()
    peers = f"{peers_name(deployment)}.{deployment.metadata.namespace}.svc:{port}"
    return [
        {"name": wire.FEEDBACK_RETENTION_ENV, "value": f"{duration_seconds(feedback.retention):g}"},
        {"name": wire.FEEDBACK_CAPACITY_ENV, "value": str(feedback.max_records)},
        {"name": wire.PEERS_ENV, "value": peers},
        {"name": wire.POD_IP_ENV, "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
    ]


def serving_env(runtime: RuntimeSpec) -> list[dict[str, Any]]:
    """How the server batches, and its workers when the spec names them (unset, the server runs one per CPU it
    finds in its pod: its CPU limit, else the CPUs its node gives it)."""
    workers = [] if runtime.workers is None else [{"name": wire.WORKERS_ENV, "value": str(runtime.workers)}]
    return [
        *workers,
        {"name": wire.MAX_BATCH_SIZE_ENV, "value": str(runtime.max_batch_size)},
        {"name": wire.MAX_LATENCY_MS_ENV, "value": str(runtime.max_latency_ms)},
    ]


@dataclass(frozen=True)
class ServerSettings:
    """What the operator's administrator sets for every server: the image unless a deployment names another, and
    the keys the server checks a signed version's files against."""

    image: str
    trusted_keys: tuple[tuple[str, bytes], ...] = ()

    def signature_env(self, version: ModelVersion) -> list[dict[str, Any]]:
        if version.spec.signature is None or not self.trusted_keys:
            return []
        keys = json.dumps({name: pem.decode() for name, pem in self.trusted_keys}, sort_keys=True)
        return [
            {"name": wire.SIGNATURE_BUNDLE_ENV, "value": version.spec.signature.bundle},
            {"name": wire.TRUSTED_KEYS_ENV, "value": keys},
        ]


def server_deployment(
    deployment: ModelDeployment,
    version: ModelVersion,
    track: ServerTrack,
    replicas: int | None,
    settings: ServerSettings,
    mirror: Mirroring | None = None,
) -> dict[str, Any]:
    """A Deployment of server pods for one version; `replicas` None leaves them to the autoscaler; with `mirror`,
    the servers mirror a share of their requests to a shadow."""
    spec = deployment.spec
    runtime = spec.runtime
    port = runtime.port if runtime else wire.SERVER_PORT
    number = version.spec.version
    selector = track_labels(deployment, track)
    component = selector["app.kubernetes.io/component"]
    labels = meta.labels(model=spec.model, instance=deployment.metadata.name, component=component, version=number)
    probe = {"httpGet": {"path": "/readyz", "port": "http"}, "periodSeconds": 5, "timeoutSeconds": 2}
    container: dict[str, Any] = {
        "name": SERVER,
        "image": (runtime.image if runtime and runtime.image else None) or settings.image,
        "command": ["modelops", "serve", "--port", str(port)],
        "ports": [{"name": "http", "containerPort": port}],
        "env": [
            {"name": wire.MODEL_URI_ENV, "value": version.spec.artifact.uri},
            {"name": wire.MODEL_DIGEST_ENV, "value": version.spec.artifact.digest},
            *settings.signature_env(version),
            {"name": wire.MODEL_NAME_ENV, "value": spec.model},
            {"name": wire.MODEL_VERSION_ENV, "value": str(number)},
            *serving_env(runtime or RuntimeSpec()),
            *(mirror.env() if mirror else []),
            *(feedback_env(deployment, port) if track != "shadow" else []),
            *meta.container_env(),
        ],
        "startupProbe": {**probe, "failureThreshold": 60, "periodSeconds": 2},
        "readinessProbe": probe,
        # A pod going away (a roll, a scale-down, a canary's end) keeps answering while its endpoint leaves every
        # node's Service rules, and only then stops: no caller's request meets a closed port.
        "lifecycle": {"preStop": {"sleep": {"seconds": DRAIN_SECONDS}}},
        "livenessProbe": {"httpGet": {"path": "/livez", "port": "http"}, "periodSeconds": 10, "failureThreshold": 3},
        "securityContext": security.container_security_context(),
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }
    if runtime and runtime.resources:
        container["resources"] = runtime.resources.to_api()
    if runtime and runtime.credentials_secret:
        container["envFrom"] = meta.env_from_secrets(runtime.credentials_secret)
    manifest: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": deployment_name(deployment, track),
            "namespace": deployment.metadata.namespace,
            "labels": {**labels, TRACK_LABEL: track},
            "ownerReferences": [_owner(deployment)],
        },
        "spec": {
            "selector": {"matchLabels": selector},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {
                "metadata": {"labels": {**labels, **selector, meta.RUNTIME_LABEL: SERVER}},
                "spec": {
                    "automountServiceAccountToken": False,
                    "securityContext": security.pod_security_context(),
                    "containers": [container],
                    "volumes": [{"name": "tmp", "emptyDir": {}}],
                },
            },
        },
    }
    if replicas is not None:
        manifest["spec"]["replicas"] = replicas
    return manifest


def _metadata(deployment: ModelDeployment, track: ServerTrack = "stable") -> dict[str, Any]:
    """Metadata of the children named after the ModelDeployment itself (Service, autoscaler), or the shadow's."""
    component = server_labels(deployment, track)["app.kubernetes.io/component"]
    return {
        "name": deployment_name(deployment, track),
        "namespace": deployment.metadata.namespace,
        "labels": meta.labels(model=deployment.spec.model, instance=deployment.metadata.name, component=component),
        "ownerReferences": [_owner(deployment)],
    }


def rollout_pending(server: dict[str, Any]) -> str | None:
    """Why a server Deployment has not finished rolling out, or None once every replica runs its current template
    and is ready (kstatus' rule for Deployments: while old pods still serve, the deployment is not Ready yet)."""
    wanted = (server.get("spec") or {}).get("replicas", 1)
    status = server.get("status") or {}
    if (status.get("observedGeneration") or 0) < (server["metadata"].get("generation") or 0):
        return "waiting for the Deployment controller to see the new template"
    updated, ready = status.get("updatedReplicas") or 0, status.get("readyReplicas") or 0
    if updated < wanted:
        return f"{updated} of {wanted} replicas updated"
    if (status.get("replicas") or 0) > wanted:
        return f"{status['replicas'] - wanted} old replicas still terminating"
    if ready < wanted:
        return f"{ready} of {wanted} replicas ready"
    return None


def failure_said(status: ModelDeploymentStatus | None) -> str | None:
    """The server pods' failure this status reports (Stalled: ServerFailing), if it reports one."""
    for condition in (status.conditions if status else None) or []:
        if condition.type == "Stalled" and condition.status == "True" and condition.reason == "ServerFailing":
            return condition.message
    return None


def server_facts(server: dict[str, Any]) -> tuple[str | None, int, int]:
    """What a deployment's status reads of one of its server Deployments: whether its rollout is pending, and its
    replicas and ready replicas."""
    status = server.get("status") or {}
    return rollout_pending(server), status.get("replicas") or 0, status.get("readyReplicas") or 0


def service(deployment: ModelDeployment, track: ServerTrack = "stable", *, both_tracks: bool = False) -> dict[str, Any]:
    """The Service of one track's pods, named after its Deployment; with `both_tracks`, the deployment's Service in
    front of stable and canary pods alike, so that their replicas are the weights."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(deployment, track),
        "spec": {
            "selector": server_labels(deployment) if both_tracks else track_labels(deployment, track),
            "ports": [{"name": "http", "port": HTTP_PORT, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def peers_service(deployment: ModelDeployment) -> dict[str, Any]:
    """A headless Service of every stable and canary server pod, for a pod to find the others by DNS; draining
    pods stay in it while they still hold answers."""
    port = deployment.spec.runtime.port if deployment.spec.runtime else wire.SERVER_PORT
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {**_metadata(deployment), "name": peers_name(deployment)},
        "spec": {
            "clusterIP": "None",
            "publishNotReadyAddresses": True,
            "selector": server_labels(deployment),
            "ports": [{"name": "http", "port": port, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def httproute(deployment: ModelDeployment, canary_weight: int) -> dict[str, Any]:
    """The route from the deployment's Gateway to its stable and canary Services, weighted exactly."""
    gateway = deployment.spec.gateway
    assert gateway is not None, "only a deployment that names a Gateway has a route"
    parent = {
        "group": GATEWAY_GROUP,
        "kind": "Gateway",
        "name": gateway.name,
        "namespace": gateway.namespace or deployment.metadata.namespace,
        **({"sectionName": gateway.section_name} if gateway.section_name else {}),
    }
    tracks: tuple[tuple[ServerTrack, int], ...] = (("stable", 100 - canary_weight), ("canary", canary_weight))
    backends = [
        {"group": "", "kind": "Service", "name": deployment_name(deployment, track), "port": HTTP_PORT, "weight": w}
        for track, w in tracks
    ]
    return {
        "apiVersion": HTTPROUTE[0],
        "kind": HTTPROUTE[1],
        "metadata": _metadata(deployment),
        "spec": {
            "parentRefs": [parent],
            **({"hostnames": list(gateway.hostnames)} if gateway.hostnames else {}),
            "rules": [{"backendRefs": backends}],
        },
    }


def autoscaler(deployment: ModelDeployment) -> dict[str, Any] | None:
    scaling = deployment.spec.autoscaling
    if scaling is None:
        return None
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": _metadata(deployment),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": deployment.metadata.name},
            "minReplicas": scaling.min_replicas,
            "maxReplicas": scaling.max_replicas,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": scaling.target_cpu_utilization},
                    },
                }
            ],
        },
    }


def endpoint(deployment: ModelDeployment) -> str:
    return f"http://{deployment.metadata.name}.{deployment.metadata.namespace}.svc:{HTTP_PORT}"


def _owner(deployment: ModelDeployment) -> dict[str, Any]:
    return meta.owner_reference("ModelDeployment", deployment.metadata.name, deployment.metadata.uid or "")


# -- the status ----------------------------------------------------------------------------------------------


def rolled_back_message(md: ModelDeployment, selection: Selection, stable: ModelVersion, rollout: RolloutStatus) -> str:
    """What a rollback leaves: the spec (often in Git) still asks for the version that failed, and it will not be
    tried again by itself; say what serves, why, and the ways out."""
    last = rollout.last_decision
    decided = last.reason if last and last.action == "RollBack" else "its last canary was rolled back"
    head = f"rolled back to {stable.metadata.name} (canary {rollout.canary_version}: {decided})"
    target = selection.version.metadata.name if selection.version else None
    if target is None or target == stable.metadata.name:
        return head
    retry = f"modelops rollout retry md/{md.metadata.name} tries it again"
    if md.spec.version is not None:
        return (
            f"{head}; the spec still selects {target} (spec.version {md.spec.version}): revert it in Git or approve "
            f"a newer version and select it ({retry})"
        )
    return (
        f"{head}; the spec still selects {target}, the latest Approved version: reject it (modelops reject "
        f"mv/{target}) or approve a newer version ({retry})"
    )


def status(
    md: ModelDeployment,
    selection: Selection,
    stable: ModelVersion | None,
    rollout: RolloutStatus,
    history: list[HistoryEntry],
    servers: list[dict[str, Any]],
    problem: tuple[str, str] | None,
) -> ModelDeploymentStatus:
    """The status after a reconcile: what serves, the rollout as applied, its history, the servers' replicas,
    and the one condition that says most (a problem, a rollback, a canary, a rollout, or serving)."""
    replicas = sum((s.get("status") or {}).get("replicas") or 0 for s in servers)
    ready = sum((s.get("status") or {}).get("readyReplicas") or 0 for s in servers)
    generation = md.metadata.generation
    conditions = md.status.conditions if md.status else None
    decided = rollout.last_decision.reason if rollout.last_decision else None
    if stable is None:
        conditions = kstatus(conditions, "Stalled", selection.reason, selection.message, generation)
    elif problem is not None:
        conditions = kstatus(conditions, "Stalled", *problem, generation)
    elif rollout.phase == "RolledBack":
        message = rolled_back_message(md, selection, stable, rollout)
        conditions = kstatus(conditions, "Stalled", "RolledBack", message, generation)
    elif rollout.phase == "Paused":
        conditions = kstatus(conditions, "Stalled", "RolloutPaused", decided or "paused", generation)
    elif selection.version is None:
        message = f"{selection.message}; still serving {stable.metadata.name}"
        conditions = kstatus(conditions, "Stalled", selection.reason, message, generation)
    elif rollout.phase == "Progressing":
        conditions = kstatus(
            conditions, "Reconciling", "CanaryProgressing", decided or "canary in progress", generation
        )
    elif pending := next(filter(None, map(rollout_pending, servers)), None):
        conditions = kstatus(conditions, "Reconciling", "Scaling", pending, generation)
    else:
        conditions = kstatus(conditions, "Ready", "Serving", f"serving {stable.metadata.name}", generation)
    return ModelDeploymentStatus(
        observed_generation=generation,
        replicas=replicas,
        ready_replicas=ready,
        selector=selector_string(md),
        endpoint=endpoint(md),
        rollout=rollout,
        history=history,
        conditions=conditions,
        serving_version=stable.metadata.name if stable else None,
        serving_version_number=stable.spec.version if stable else None,
    )
