"""The `modelops` command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

app = typer.Typer(help="ModelOps: build, version, deploy and monitor models on Kubernetes.", no_args_is_help=True)
cluster_app = typer.Typer(help="The local Kubernetes control plane (no Docker needed).", no_args_is_help=True)
app.add_typer(cluster_app, name="cluster")
console = Console(stderr=True)


def _say(message: str) -> None:
    console.print(f"[bold cyan]modelops[/] {message}")


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


@cluster_app.command("tools")
def cluster_tools() -> None:
    """Print the folder of the built kubectl and helm, for PATH."""
    from modelops.devcluster.toolchain import ensure_toolchain

    print(ensure_toolchain(_say).kubectl.parent)


@app.command()
def run(
    namespace: Annotated[
        list[str] | None, typer.Option("--namespace", "-n", help="Watch only these namespaces (repeatable).")
    ] = None,
    liveness: Annotated[str, typer.Option(help="Liveness endpoint.")] = "http://0.0.0.0:8080/healthz",
    metrics_port: Annotated[int, typer.Option(help="Port of the Prometheus metrics endpoint; 0 disables.")] = 9090,
    standalone: Annotated[bool, typer.Option(help="Run without peering (no standby replicas).")] = True,
) -> None:
    """Run the operator."""
    from modelops.controllers.main import run_operator

    run_operator(namespaces=namespace or [], liveness=liveness, metrics_port=metrics_port, standalone=standalone)


@app.command()
def train() -> None:
    """Train a model (the command a ModelBuild's Job runs; its configuration comes from the environment)."""
    from modelops.runtime.train import main

    raise typer.Exit(main())


@app.command()
def serve(port: Annotated[int, typer.Option(help="Port to listen on.")] = 3000) -> None:
    """Serve a model version over HTTP (the command a ModelDeployment's pods run)."""
    import os
    import shutil
    import sys

    host = os.environ.get("MODELOPS_BIND_HOST", "0.0.0.0")
    bentoml = shutil.which("bentoml") or str(Path(sys.executable).parent / "bentoml")
    os.execv(bentoml, [bentoml, "serve", "modelops.runtime.serve:ModelServer", "--host", host, "--port", str(port)])


if __name__ == "__main__":
    app()
