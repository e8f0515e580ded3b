"""The `modelops` command."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from modelops.contract.serving import SERVER_PORT

if TYPE_CHECKING:
    from modelops.api.v1alpha1 import CustomResource
    from modelops.client import Client

app = typer.Typer(help="ModelOps: build, version, deploy and monitor models on Kubernetes.", no_args_is_help=True)
cluster_app = typer.Typer(help="The local Kubernetes control plane (no Docker needed).", no_args_is_help=True)
app.add_typer(cluster_app, name="cluster")
console = Console(stderr=True)


def _say(message: str) -> None:
    console.print(f"[bold cyan]modelops[/] {message}")


def _fail(message: str) -> typer.Exit:
    """Print an error (the API server's words, unwrapped) and return the exit to raise."""
    console.print(f"[bold red]error[/] {escape(message)}", soft_wrap=True)
    return typer.Exit(1)


# How to reach the API server, as kubectl does.
Kubeconfig = Annotated[
    str | None,
    typer.Option(
        "--kubeconfig",
        metavar="PATH",
        help="Path of the kubeconfig; default $KUBECONFIG, else ~/.kube/config.",
        show_default=False,
    ),
]
Context = Annotated[
    str | None, typer.Option("--context", metavar="NAME", help="The kubeconfig context to use.", show_default=False)
]
Namespace = Annotated[
    str | None,
    typer.Option(
        "--namespace",
        "-n",
        metavar="NAME",
        help="Namespace; default the context's, else `default`.",
        show_default=False,
    ),
]
AsUser = Annotated[
    str | None, typer.Option("--as", metavar="USER", help="Act as this user (impersonation).", show_default=False)
]
AsGroups = Annotated[
    list[str] | None,
    typer.Option("--as-group", metavar="GROUP", help="Act as a member of this group (repeatable; needs --as)."),
]


def _connect(
    kubeconfig: str | None, context: str | None, namespace: str | None, as_user: str | None, as_groups: list[str] | None
) -> Client:
    from modelops.client import KubeError, connect

    try:
        return connect(kubeconfig, context, namespace, as_user, as_groups or ())
    except KubeError as error:
        raise _fail(str(error)) from None


@app.command()
def crds(
    directory: Annotated[Path, typer.Option(help="Where to write the CRD YAML files.")] = Path("crds"),
) -> None:
    """Write the CustomResourceDefinitions generated from the API models."""
    from modelops.api.crds import write_crds

    for path in write_crds(directory):
        _say(f"wrote {path}")


@cluster_app.command("up")
def cluster_up() -> None:
    """Build the pinned binaries if needed and start the local control plane (idempotent)."""
    from modelops.devcluster.cluster import Cluster, ClusterError
    from modelops.devcluster.toolchain import ToolchainError

    try:
        Cluster(log=_say).up()
    except (ClusterError, ToolchainError) as error:
        console.print(f"[bold red]error[/] {error}")
        raise typer.Exit(1) from None


@cluster_app.command("down")
def cluster_down() -> None:
    """Stop the local control plane; no process is left behind."""
    from modelops.devcluster.cluster import Cluster

    Cluster(log=_say).down()


@cluster_app.command("status")
def cluster_status() -> None:
    """Show which components run and whether the API server is ready."""
    from modelops.devcluster.cluster import Cluster, State, kubeconfig_path

    cluster = Cluster(log=_say)
    for name, alive in cluster.component_status().items():
        console.print(f"  {name:<24} {'[green]running[/]' if alive else '[red]stopped[/]'}")
    state = State.load()
    ready = cluster.api_ready()
    console.print(
        f"  {'api':<24} {state.server if state else '-'} {'[green]ready[/]' if ready else '[red]not ready[/]'}"
    )
    if ready:
        console.print(f"  {'kubeconfig':<24} {kubeconfig_path()}")
    raise typer.Exit(0 if cluster.running() else 1)


@cluster_app.command("kubeconfig")
def cluster_kubeconfig() -> None:
    """Print the path of the admin kubeconfig: `export KUBECONFIG=$(modelops cluster kubeconfig)`."""
    from modelops.devcluster.cluster import Cluster, kubeconfig_path

    if not Cluster(log=_say).api_ready():
        console.print("[bold red]error[/] the local cluster is not running: run `modelops cluster up`")
        raise typer.Exit(1)
    print(kubeconfig_path())


@cluster_app.command("image")
def cluster_image() -> None:
    """Build the image from this checkout's Dockerfile (buildah) and load it into the running node; prints its name."""
    from modelops.devcluster.cluster import Cluster
    from modelops.devcluster.images import project_image, source_root
    from modelops.devcluster.toolchain import ToolchainError

    cluster = Cluster(log=_say)
    try:
        image = project_image(source_root(), _say)
    except ToolchainError as error:
        raise _fail(str(error)) from None
    if cluster.running():
        cluster.import_image(image)
        _say(f"loaded {image.reference} into the node")
    print(image.reference)


@cluster_app.command("storage-secret")
def cluster_storage_secret(
    namespace: Annotated[str, typer.Option("--namespace", "-n", help="The namespace the Secret is for.")],
) -> None:
    """Print the Secret that gives a namespace the local store's keys: `... | kubectl apply -f -`."""
    import yaml

    from modelops.devcluster.cluster import Cluster, ClusterError

    try:
        store = Cluster(log=_say).object_store()
    except ClusterError as error:
        raise _fail(str(error)) from None
    print(yaml.safe_dump(store.secret_manifest(namespace), sort_keys=False), end="")


@cluster_app.command("tools")
def cluster_tools() -> None:
    """Print the folder of the built kubectl and helm, for PATH."""
    from modelops.devcluster.toolchain import ensure_toolchain

    print(ensure_toolchain(_say).kubectl.parent)


@app.command()
def run(
    namespace: Annotated[
        list[str] | None,
        typer.Option("--namespace", "-n", metavar="NAME", help="Watch only these namespaces (repeatable)."),
    ] = None,
    liveness: Annotated[str, typer.Option(help="Liveness endpoint.")] = "http://0.0.0.0:8080/healthz",
    metrics_port: Annotated[int, typer.Option(help="Port of the Prometheus metrics endpoint; 0 disables.")] = 9090,
    leader_elect: Annotated[
        str | None,
        typer.Option(
            metavar="LEASE",
            help="Work only while holding this Lease in the operator's namespace (POD_NAMESPACE); other replicas "
            "wait as standbys.",
        ),
    ] = None,
) -> None:
    """Run the operator."""
    from modelops.controllers.main import run_operator

    run_operator(namespaces=namespace or [], liveness=liveness, metrics_port=metrics_port, lease=leader_elect)


class Output(StrEnum):
    tree = "tree"
    json = "json"
    yaml = "yaml"


@app.command()
def lineage(
    ref: Annotated[
        str, typer.Argument(metavar="KIND/NAME", help="md/NAME, mv/NAME or mb/NAME (kubectl's kind names).")
    ],
    output: Annotated[Output, typer.Option("--output", "-o", help="tree for people; json or yaml for machines.")] = (
        Output.tree
    ),
    kubeconfig: Kubeconfig = None,
    context: Context = None,
    namespace: Namespace = None,
    as_user: AsUser = None,
    as_group: AsGroups = None,
) -> None:
    """What is deployed, from what, approved by whom: a deployment's versions, their data, trainer and approval."""
    import json

    import yaml

    from modelops import lineage_tree
    from modelops.client import KubeError
    from modelops.resources import lineage as lineages

    try:
        kind, name = lineages.parse_ref(ref)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="KIND/NAME") from None
    kube = _connect(kubeconfig, context, namespace, as_user, as_group)
    try:
        found = lineages.collect(kind, name, kube.get, lambda: _monitors(kube))
    except lineages.NotFound as error:
        raise _fail(f"{error} in namespace {kube.namespace}") from None
    except KubeError as error:
        raise _fail(str(error)) from None
    if output is Output.json:
        print(json.dumps(lineages.as_data(found), indent=2))
    elif output is Output.yaml:
        print(yaml.safe_dump(lineages.as_data(found), sort_keys=False, allow_unicode=True), end="")
    else:
        out = Console()
        if not out.is_terminal:
            out = Console(width=100_000)  # piped: whole lines, for grep
        out.print(lineage_tree.tree(found))


def _monitors(kube: Client) -> list[dict[str, Any]]:
    """The namespace's monitors, for the performance they found; none for a caller who may not read them."""
    from modelops.api.v1alpha1 import ModelMonitor
    from modelops.client import KubeError

    try:
        return kube.list(ModelMonitor)
    except KubeError:
        return []


class CardOutput(StrEnum):
    markdown = "markdown"
    json = "json"


@app.command()
def card(
    version: Annotated[str, typer.Argument(metavar="mv/NAME", help="The ModelVersion: NAME or mv/NAME.")],
    output: Annotated[
        CardOutput,
        typer.Option(
            "--output", "-o", help="markdown for people; json for the signed card's exact bytes (for sha256sum)."
        ),
    ] = CardOutput.markdown,
    key: Annotated[
        Path | None,
        typer.Option(
            "--key",
            metavar="PUBLIC_KEY.pem",
            help="Verify the signature with this public key; exit 1 unless it signed this very card.",
            exists=True,
            dir_okay=False,
            show_default=False,
        ),
    ] = None,
    kubeconfig: Kubeconfig = None,
    context: Context = None,
    namespace: Namespace = None,
    as_user: AsUser = None,
    as_group: AsGroups = None,
) -> None:
    """A version's model card: what its build signed (use, limits, data, metrics), then its approval and serving."""
    from modelops.api.v1alpha1 import ModelVersion
    from modelops.client import KubeError
    from modelops.resources import modelcard

    name = _name_of(version, ModelVersion, "mv/NAME", "only a ModelVersion has a model card")
    public_key = key.read_bytes() if key else None
    kube = _connect(kubeconfig, context, namespace, as_user, as_group)
    try:
        body = kube.get(ModelVersion, name)
    except KubeError as error:
        raise _fail(str(error)) from None
    if body is None:
        raise _fail(f"{ModelVersion.crd.singular_name} {name!r} not found in namespace {kube.namespace}")
    shown = modelcard.view(ModelVersion.model_validate(body), public_key)
    if output is CardOutput.json:
        print(shown.content.decode())
        _say(f"signature: {escape(shown.signature)}")  # on stderr: stdout is the signed bytes alone
    else:
        print(modelcard.markdown(shown), end="")
    if key is not None and not shown.verified:
        raise _fail(f"the card is not verified with {key}: {shown.signature}")


class AuditOutput(StrEnum):
    text = "text"
    json = "json"


@app.command()
def audit(
    ref: Annotated[
        str,
        typer.Argument(
            metavar="KIND/NAME",
            help="md/NAME, mv/NAME or mb/NAME: the trail of its model; model/NAME reads it when the objects are gone.",
        ),
    ],
    since: Annotated[str, typer.Option("--since", help="How far back: 180d, 12h, 30m, 1d12h.")] = "180d",
    output: Annotated[
        AuditOutput, typer.Option("--output", "-o", help="text for people; json for one JSON line per decision.")
    ] = AuditOutput.text,
    log: Annotated[
        str | None,
        typer.Option(
            "--log",
            envvar="MODELOPS_AUDIT_URI",
            metavar="URI",
            help="The audit store (the chart's audit.uri): file:///folder or s3://bucket/prefix, read with the AWS_* "
            "credentials of the environment.",
        ),
    ] = None,
    kubeconfig: Kubeconfig = None,
    context: Context = None,
    namespace: Namespace = None,
    as_user: AsUser = None,
    as_group: AsGroups = None,
) -> None:
    """What was decided about a model, in order: versions recorded, approved or rejected and by whom, rollouts,
    alerts, retrainings, kept in the audit store long after the Events are gone."""
    import datetime as dt

    from modelops.client import KubeError
    from modelops.controllers.audit import open_store
    from modelops.resources import audit as trail
    from modelops.resources.lineage import parse_ref

    if not log:
        raise typer.BadParameter("name the audit store with --log or $MODELOPS_AUDIT_URI", param_hint="--log")
    try:
        cutoff = trail.parse_since(since, dt.datetime.now(dt.UTC))
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--since") from None
    kube = _connect(kubeconfig, context, namespace, as_user, as_group)
    kind_name, _, name = ref.partition("/")
    if kind_name == "model" and name:
        model = name
    else:
        try:
            kind, name = parse_ref(ref)
        except ValueError as error:
            raise typer.BadParameter(f"{error}, or model/NAME", param_hint="KIND/NAME") from None
        try:
            body = kube.get(kind, name)
        except KubeError as error:
            raise _fail(str(error)) from None
        if body is None:
            raise _fail(f"{kind.crd.singular_name} {name!r} not found in namespace {kube.namespace}: try model/NAME")
        model = body["spec"]["model"]
    try:
        store = open_store(log)
        keys = store.keys(trail.model_prefix(kube.namespace, model), trail.since_key(kube.namespace, model, cutoff))
        records = [trail.AuditRecord.model_validate_json(store.get(key)) for key in keys]
    except Exception as error:  # the store's own words: unreachable, refused, not found
        raise _fail(f"cannot read the audit store {log}: {type(error).__name__}: {error}") from None
    print(trail.shown(records, output.value), end="")


@app.command()
def approve(
    version: Annotated[str, typer.Argument(help="The ModelVersion: NAME or mv/NAME.")],
    reason: Annotated[str | None, typer.Option(help="Why, for the record.", show_default=False)] = None,
    kubeconfig: Kubeconfig = None,
    context: Context = None,
    namespace: Namespace = None,
    as_user: AsUser = None,
    as_group: AsGroups = None,
) -> None:
    """Approve a model version as yourself; only approvers may (the approval policy asks RBAC)."""
    _decide(_version_name(version), "Approved", reason, _connect(kubeconfig, context, namespace, as_user, as_group))


@app.command()
def reject(
    version: Annotated[str, typer.Argument(help="The ModelVersion: NAME or mv/NAME.")],
    reason: Annotated[str | None, typer.Option(help="Why (required).", show_default=False)] = None,
    kubeconfig: Kubeconfig = None,
    context: Context = None,
    namespace: Namespace = None,
    as_user: AsUser = None,
    as_group: AsGroups = None,
) -> None:
    """Reject a model version as yourself, saying why; only approvers may (the approval policy asks RBAC)."""
    if not (reason or "").strip():
        raise typer.BadParameter(
            "a rejection needs a reason: --reason TEXT says why, for the record", param_hint="--reason"
        )
    _decide(_version_name(version), "Rejected", reason, _connect(kubeconfig, context, namespace, as_user, as_group))


def _version_name(version: str) -> str:
    """`breast-cancer-v2` or `mv/breast-cancer-v2` → `breast-cancer-v2`; only a ModelVersion carries an approval."""
    from modelops.api.v1alpha1 import ModelVersion

    return _name_of(version, ModelVersion, "VERSION", "only a ModelVersion is approved or rejected")


def _name_of(ref: str, kind: type[CustomResource], hint: str, only: str) -> str:
    """The name in `NAME` or `KIND/NAME` (kubectl's kind names), which must be of this kind."""
    from modelops.resources.lineage import parse_ref

    if "/" not in ref:
        return ref
    try:
        found, name = parse_ref(ref)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint=hint) from None
    if found is not kind:
        raise typer.BadParameter(f"{ref!r}: {only}", param_hint=hint)
    return name


def _decide(name: str, state: str, reason: str | None, kube: Client) -> None:
    """Set spec.approval with `by` as the API server knows the caller; the approval policy judges the rest."""
    from modelops.client import KubeError

    try:
        by = kube.username()
        kube.set_approval(name, state, by, reason)
    except KubeError as error:
        raise _fail(str(error)) from None
    _say(f"{escape(name)} {state.lower()} by {escape(by)}" + (f": {escape(reason)}" if reason else ""))


class RolloutAction(StrEnum):
    promote = "promote"
    abort = "abort"
    retry = "retry"


@app.command()
def rollout(
    action: Annotated[
        RolloutAction,
        typer.Argument(
            help="promote: pass the canary's current step (after the last one, promote it); abort: roll the canary "
            "back; retry: measure the current step again from now, or after a rollback start that version's canary "
            "again."
        ),
    ],
    deployment: Annotated[str, typer.Argument(metavar="md/NAME", help="The ModelDeployment: NAME or md/NAME.")],
    reason: Annotated[str | None, typer.Option(help="Why, for the record.", show_default=False)] = None,
    kubeconfig: Kubeconfig = None,
    context: Context = None,
    namespace: Namespace = None,
    as_user: AsUser = None,
    as_group: AsGroups = None,
) -> None:
    """Answer a deployment's rollout as an approver (a paused one waits for it): who, when and why are recorded."""
    _command_rollout(deployment, action.value, reason, _connect(kubeconfig, context, namespace, as_user, as_group))


def _command_rollout(deployment: str, action: str, reason: str | None, kube: Client) -> None:
    """Write the command in the caller's name; the rollout-commands policy refuses anyone but an approver."""
    import datetime as dt

    from modelops.api.v1alpha1 import ModelDeployment
    from modelops.client import KubeError

    name = _name_of(deployment, ModelDeployment, "md/NAME", "only a ModelDeployment has a rollout")
    at = dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")
    try:
        by = kube.username()
        kube.command_rollout(name, action, by, reason, at)
    except KubeError as error:
        raise _fail(str(error)) from None
    words = f": {escape(reason)}" if reason else ""
    _say(f"{action} of md/{escape(name)} asked by {escape(by)}{words}; the operator acts on it at once")


@app.command()
def train() -> None:
    """Train a model (the command a ModelBuild's Job runs; its configuration comes from the environment)."""
    from modelops.runtime.train import main

    raise typer.Exit(main())


@app.command()
def serve(port: Annotated[int, typer.Option(help="Port to listen on.")] = SERVER_PORT) -> None:
    """Serve a model version over HTTP (the command a ModelDeployment's pods run)."""
    import os
    import shutil
    import sys

    from modelops.contract.serving import MODEL_TAG_ENV
    from modelops.runtime.serve import prepare

    tag = prepare()
    if tag is None:
        raise typer.Exit(1)
    os.environ[MODEL_TAG_ENV] = tag
    host = os.environ.get("MODELOPS_BIND_HOST", "0.0.0.0")
    bentoml = shutil.which("bentoml") or str(Path(sys.executable).parent / "bentoml")
    os.execv(bentoml, [bentoml, "serve", "modelops.runtime.serve:ModelServer", "--host", host, "--port", str(port)])


if __name__ == "__main__":
    app()
