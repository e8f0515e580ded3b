"""Pinned Kubernetes, etcd, CoreDNS, kwok and helm, built from Go modules into a cache outside the repo.

The first build takes a few minutes on 2 cores (most of it compiling kube-apiserver and the kubelet); later calls
find the binaries in `~/.cache/modelops/<component>-<version>/bin` and return at once.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

KUBERNETES_VERSION = "1.34.4"
KWOK_VERSION = "0.7.0"
HELM_VERSION = "3.19.0"
#: The dev cluster's S3 server (Apache-2.0; MinIO's AGPL is not for us).
VERSITYGW_VERSION = "1.8.0"
#: The CoreDNS release that requires the same client-go minor as Kubernetes: it builds inside the same wrapper
#: module, so it shares the compiled client-go instead of bringing a dependency set of its own.
COREDNS_VERSION = "1.13.2"
#: The Gateway API whose HTTPRoute CRD the tests install (the operator needs no Gateway API to run).
GATEWAY_API_VERSION = "1.6.3"

KUBERNETES_COMMANDS = (
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubectl",
    "kubelet",
    "kube-proxy",
)


class ToolchainError(RuntimeError):
    """The binaries cannot be built; the message says what to do."""


def cache_root() -> Path:
    return Path(os.environ.get("MODELOPS_CACHE", Path.home() / ".cache" / "modelops"))


@dataclass(frozen=True)
class Toolchain:
    """Paths of the built binaries."""

    kube_apiserver: Path
    kube_controller_manager: Path
    kube_scheduler: Path
    kubectl: Path
    kubelet: Path
    kube_proxy: Path
    etcd: Path
    coredns: Path
    kwok: Path
    versitygw: Path
    kwok_pod_stages: Path
    helm: Path


def _go_env() -> dict[str, str]:
    if shutil.which("go") is None:
        raise ToolchainError(
            "`go` was not found on PATH. The local control plane is built from Go modules: "
            "install Go 1.24 or newer and run the command again."
        )
    return {**os.environ, "CGO_ENABLED": "0", "GOTOOLCHAIN": "local", "GOFLAGS": "-mod=mod"}


def _run(args: list[str], cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise ToolchainError(f"`{' '.join(args)}` failed:\n{done.stderr[-4000:]}")
    return done.stdout


@contextmanager
def build_lock(name: str) -> Iterator[None]:
    """One build at a time per component, across processes (tests may start in parallel)."""
    cache_root().mkdir(parents=True, exist_ok=True)
    with open(cache_root() / f".{name}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def staging_modules(kubernetes_go_mod: str) -> list[str]:
    """The `k8s.io/*` modules that k8s.io/kubernetes replaces with its own staging directory."""
    return re.findall(r"^\s*(k8s\.io/[\w.-]+)\s*=>\s*\./staging/", kubernetes_go_mod, re.M)


def wrapper_go_mod(kubernetes_version: str, staging: list[str], coredns_version: str = COREDNS_VERSION) -> str:
    """A module that requires k8s.io/kubernetes (and CoreDNS) and points each staging module at its published
    v0 twin."""
    staging_version = "v0." + kubernetes_version.split(".", 1)[1]
    replaces = "\n".join(f"\t{m} => {m} {staging_version}" for m in staging)
    return (
        "module modelops.dev/k8sbuild\n\ngo 1.24.0\n\n"
        f"require (\n\tk8s.io/kubernetes v{kubernetes_version}\n\tgithub.com/coredns/coredns v{coredns_version}\n)\n\n"
        f"replace (\n{replaces}\n)\n"
    )


ETCD_MAIN = """package main

import (
\t"os"

\t"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
"""

# CoreDNS with only the plugins the cluster's Corefile uses: upstream's main imports every plugin (and the cloud
# SDKs they need); this one compiles in a minute on top of the Kubernetes build.
COREDNS_MAIN = """package main

import (
\t_ "github.com/coredns/coredns/core/dnsserver"
\t"github.com/coredns/coredns/coremain"
\t_ "github.com/coredns/coredns/plugin/bind"
\t_ "github.com/coredns/coredns/plugin/cache"
\t_ "github.com/coredns/coredns/plugin/errors"
\t_ "github.com/coredns/coredns/plugin/forward"
\t_ "github.com/coredns/coredns/plugin/health"
\t_ "github.com/coredns/coredns/plugin/kubernetes"
\t_ "github.com/coredns/coredns/plugin/loop"
\t_ "github.com/coredns/coredns/plugin/ready"
)

func main() { coremain.Run() }
"""

# Keeps k8s.io/kubernetes in go.mod through `go mod tidy`: its commands are main packages and cannot be imported.
TOOLS_GO = """//go:build tools

package tools

import (
\t_ "github.com/coredns/coredns/coremain"
\t_ "k8s.io/kubernetes/cmd/kube-apiserver/app"
)
"""


def version_ldflags(kubernetes_version: str) -> str:
    """Stamp the version, as the Kubernetes release build does, so clients and helm see v1.34.x, not v0.0.0."""
    major, minor, _ = kubernetes_version.split(".")
    flags = ["-s", "-w"]
    for package in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        for name, value in (
            ("gitVersion", f"v{kubernetes_version}"),
            ("gitMajor", major),
            ("gitMinor", minor),
            ("gitTreeState", "clean"),
            ("buildDate", "1970-01-01T00:00:00Z"),
        ):
            flags.append(f"-X {package}.{name}={value}")
    return " ".join(flags)


def _build_kubernetes(bin_dirs: dict[str, Path], log: Callable[[str], None]) -> None:
    """One build of every command in one wrapper module; each binary then moves to the folder `bin_dirs` names."""
    env = _go_env()
    with tempfile.TemporaryDirectory(prefix="k8sbuild-", dir=cache_root()) as tmp:
        work = Path(tmp)
        log(f"building Kubernetes v{KUBERNETES_VERSION}, etcd and CoreDNS from Go modules (a few minutes, once)")
        info = json.loads(
            _run(["go", "mod", "download", "-json", f"k8s.io/kubernetes@v{KUBERNETES_VERSION}"], work, env)
        )
        staging = staging_modules(Path(info["GoMod"]).read_text())
        (work / "go.mod").write_text(wrapper_go_mod(KUBERNETES_VERSION, staging))
        (work / "tools.go").write_text(TOOLS_GO)
        for command, main in (("etcd", ETCD_MAIN), ("coredns", COREDNS_MAIN)):
            (work / "cmd" / command).mkdir(parents=True)
            (work / "cmd" / command / "main.go").write_text(main)
        _run(["go", "mod", "tidy"], work, env)
        out = work / "bin"
        packages = [f"k8s.io/kubernetes/cmd/{c}" for c in KUBERNETES_COMMANDS] + ["./cmd/etcd", "./cmd/coredns"]
        _run(
            [
                "go",
                "build",
                "-trimpath",
                "-tags",
                "selinux,notest",
                "-ldflags",
                version_ldflags(KUBERNETES_VERSION),
                "-o",
                str(out) + "/",
                *packages,
            ],
            work,
            env,
        )
        for folder in set(bin_dirs.values()):
            shutil.rmtree(folder, ignore_errors=True)
            folder.parent.mkdir(parents=True, exist_ok=True)
            staged = folder.with_name(folder.name + ".tmp")
            shutil.rmtree(staged, ignore_errors=True)
            staged.mkdir()
            for command, target in bin_dirs.items():
                if target == folder:
                    shutil.move(out / command, staged / command)
            staged.rename(folder)


def _go_install(package: str, bin_dir: Path, log: Callable[[str], None]) -> None:
    log(f"building {package}")
    env = {**_go_env(), "GOBIN": str(bin_dir)}
    env.pop("GOFLAGS")
    with tempfile.TemporaryDirectory(dir=cache_root()) as tmp:
        _run(["go", "install", "-trimpath", "-ldflags", "-s -w", package], Path(tmp), env)


def _copy_kwok_pod_stages(target: Path) -> None:
    """kwok's own "fast" pod stages, from its module source: the cluster narrows them to pods it may fake."""
    env = _go_env()
    module_cache = Path(_run(["go", "env", "GOMODCACHE"], Path.cwd(), env).strip())
    source = module_cache / f"sigs.k8s.io/kwok@v{KWOK_VERSION}" / "kustomize" / "stage" / "pod" / "fast"
    staging = target.with_suffix(".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for stage in sorted(source.glob("pod-*.yaml")):
        shutil.copyfile(stage, staging / stage.name)
    staging.rename(target)


def gateway_api_crds(kinds: tuple[str, ...] = ("httproutes", "gateways")) -> list[Path]:
    """The Gateway API's standard CRDs of these kinds, from its Go module (no gateway implementation comes with
    them: the routes are objects the API server validates, which no proxy acts on)."""
    folder = cache_root() / f"gateway-api-v{GATEWAY_API_VERSION}"
    files = [folder / f"gateway.networking.k8s.io_{kind}.yaml" for kind in kinds]
    with build_lock("gateway-api"):
        if not all(f.exists() for f in files):
            env = _go_env()
            module = f"sigs.k8s.io/gateway-api@v{GATEWAY_API_VERSION}"
            source = Path(json.loads(_run(["go", "mod", "download", "-json", module], Path.cwd(), env))["Dir"])
            folder.mkdir(parents=True, exist_ok=True)
            for file in files:
                shutil.copyfile(source / "config" / "crd" / "standard" / file.name, file)
    return files


def ensure_toolchain(log: Callable[[str], None] = print) -> Toolchain:
    """Build whatever is missing, then return the paths of all binaries."""
    root = cache_root()
    k8s_bin = root / f"kubernetes-v{KUBERNETES_VERSION}" / "bin"
    # Keyed by its plugin set too: a plugin added to the main builds CoreDNS again on every machine.
    coredns_key = hashlib.sha256(COREDNS_MAIN.encode()).hexdigest()[:8]
    coredns_bin = root / f"coredns-v{COREDNS_VERSION}-{coredns_key}" / "bin"
    kwok_bin = root / f"kwok-v{KWOK_VERSION}" / "bin"
    helm_bin = root / f"helm-v{HELM_VERSION}" / "bin"
    with build_lock("kubernetes"):
        bin_dirs = {**dict.fromkeys((*KUBERNETES_COMMANDS, "etcd"), k8s_bin), "coredns": coredns_bin}
        if not all((folder / command).exists() for command, folder in bin_dirs.items()):
            _build_kubernetes(bin_dirs, log)
    kwok_stages = kwok_bin.parent / "pod-stages"
    with build_lock("kwok"):
        if not (kwok_bin / "kwok").exists():
            _go_install(f"sigs.k8s.io/kwok/cmd/kwok@v{KWOK_VERSION}", kwok_bin, log)
        if not kwok_stages.exists():
            _copy_kwok_pod_stages(kwok_stages)
    versitygw_bin = root / f"versitygw-v{VERSITYGW_VERSION}" / "bin"
    with build_lock("versitygw"):
        if not (versitygw_bin / "versitygw").exists():
            _go_install(f"github.com/versity/versitygw/cmd/versitygw@v{VERSITYGW_VERSION}", versitygw_bin, log)
    with build_lock("helm"):
        if not (helm_bin / "helm").exists():
            _go_install(f"helm.sh/helm/v3/cmd/helm@v{HELM_VERSION}", helm_bin, log)
    return Toolchain(
        kube_apiserver=k8s_bin / "kube-apiserver",
        kube_controller_manager=k8s_bin / "kube-controller-manager",
        kube_scheduler=k8s_bin / "kube-scheduler",
        kubectl=k8s_bin / "kubectl",
        kubelet=k8s_bin / "kubelet",
        kube_proxy=k8s_bin / "kube-proxy",
        etcd=k8s_bin / "etcd",
        coredns=coredns_bin / "coredns",
        kwok=kwok_bin / "kwok",
        versitygw=versitygw_bin / "versitygw",
        kwok_pod_stages=kwok_stages,
        helm=helm_bin / "helm",
    )
