"""Start, check and stop the local cluster: etcd, kube-apiserver, kube-controller-manager, kube-scheduler with
TLS and Node+RBAC authorization, and a real node (containerd, kubelet, kube-proxy, CoreDNS and an S3 server: see
`node.py`) on which every pod runs as a container. A kwok-only cluster (`real_node=False`) fakes every pod on a
fake node instead, for benchmarks whose point is thousands of pods; it needs no root.

The processes outlive the command that started them (tests and the demo reuse one cluster); their PIDs,
ports and logs live in the state directory, so `down` can stop exactly what `up` started.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from . import images, node, pki
from .host import Host, check_can_run_node
from .objectstore import ObjectStore
from .polling import poll
from .toolchain import Toolchain, cache_root, ensure_toolchain

#: The fake node of a kwok-only cluster.
FAKE_NODE_NAME = "kwok-node-0"
SERVICE_CIDR = node.SERVICE_CIDR
#: kwok's fake pod addresses: apart from the real node's bridge subnet.
KWOK_CIDR = "10.245.0.0/16"
NODE_COMPONENTS = ("versitygw", "containerd", "kubelet", "kube-proxy", "coredns")
COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok", *NODE_COMPONENTS)


class ClusterError(RuntimeError):
    """The control plane did not come up; the message says which part and where its log is."""


def state_dir() -> Path:
    return Path(os.environ.get("MODELOPS_CLUSTER_DIR", cache_root() / "cluster"))


#: Every port `free_ports` handed out in this process: one chosen but not yet bound is still free to the kernel, and
#: would be chosen again (an operator's metrics server then took its liveness port, and the operator exited).
_HANDED_OUT: set[int] = set()
_HANDING_OUT = threading.Lock()


def free_ports(count: int) -> list[int]:
    """Distinct free ports on loopback, none handed out before by this process: each is held open until all are
    chosen, so none repeats within a call, and `_HANDED_OUT` keeps them apart across calls."""
    sockets: list[socket.socket] = []
    ports: list[int] = []
    try:
        with _HANDING_OUT:
            while len(ports) < count:
                sock = socket.socket()
                sockets.append(sock)
                sock.bind(("127.0.0.1", 0))
                if (port := sock.getsockname()[1]) not in _HANDED_OUT:
                    _HANDED_OUT.add(port)
                    ports.append(port)
        return ports
    finally:
        for sock in sockets:
            sock.close()


def free_port() -> int:
    return free_ports(1)[0]


@dataclass
class State:
    """What `up` started, saved as JSON in the state directory."""

    api_port: int
    etcd_port: int
    etcd_peer_port: int
    pids: dict[str, int] = field(default_factory=dict)
    #: The API server's address: the real node's (pods reach it there), or loopback for a kwok-only cluster.
    address: str = "127.0.0.1"

    @property
    def server(self) -> str:
        return f"https://{self.address}:{self.api_port}"

    @classmethod
    def load(cls) -> State | None:
        path = state_dir() / "state.json"
        return cls(**json.loads(path.read_text())) if path.exists() else None

    def save(self) -> None:
        (state_dir() / "state.json").write_text(json.dumps(asdict(self), indent=2))


def _alive(pid: int, binary: str, folder: Path) -> bool:
    """True when the PID still runs our binary for this cluster: a recycled PID (even another cluster's
    process of the same binary) never matches, because every component names the state directory."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False
    return binary in command and str(folder) in command


def kubeconfig_path() -> Path:
    return state_dir() / "admin.kubeconfig"


def _kubeconfig(server: str, ca: Path, client: pki.KeyPair, user: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "modelops-dev", "cluster": {"server": server, "certificate-authority": str(ca)}}],
        "users": [{"name": user, "user": {"client-certificate": str(client.cert), "client-key": str(client.key)}}],
        "contexts": [{"name": "modelops-dev", "context": {"cluster": "modelops-dev", "user": user}}],
        "current-context": "modelops-dev",
    }


class Cluster:
    """The local control plane."""

    def __init__(self, log: Callable[[str], None] = print, *, real_node: bool = True) -> None:
        """`real_node=False` lets kwok fake every pod on a fake node (no root needed): for scale benchmarks."""
        self.log = log
        self.real_node = real_node
        self.dir = state_dir()
        self.pki_dir = self.dir / "pki"
        self.log_dir = self.dir / "logs"
        self.layout = node.NodeLayout(self.dir / "node")

    # -- queries -------------------------------------------------------------------------------------------

    def _client(self) -> httpx.Client:
        tls = ssl.create_default_context(cafile=str(self.pki_dir / "ca.crt"))
        tls.load_cert_chain(str(self.pki_dir / "admin.crt"), str(self.pki_dir / "admin.key"))
        return httpx.Client(base_url=State.load().server, verify=tls, timeout=5)  # type: ignore[union-attr]

    def api_ready(self) -> bool:
        if State.load() is None:
            return False
        try:
            with self._client() as client:
                return client.get("/readyz").status_code == 200
        except (httpx.HTTPError, OSError):
            return False

    @staticmethod
    def _etcd_healthy(state: State) -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{state.etcd_port}/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def component_status(self) -> dict[str, bool]:
        """Which components run, by PID."""
        state = State.load()
        if state is None:
            return dict.fromkeys(COMPONENTS, False)
        return {name: _alive(pid, name, self.dir) for name, pid in state.pids.items()}

    def running(self) -> bool:
        return all(self.component_status().values()) and self.api_ready()

    # -- up ------------------------------------------------------------------------------------------------

    def up(self, timeout: float = 120, attempts: int = 2) -> Path:
        """Start the control plane unless it already runs; returns the admin kubeconfig.

        A component that dies while starting gets a second try from scratch, on fresh ports."""
        if self.running():
            self.log(f"the local cluster is already running: {State.load().server}")  # type: ignore[union-attr]
            return kubeconfig_path()
        for attempt in range(1, attempts + 1):
            try:
                return self._start_all(timeout)
            except ClusterError as error:
                if attempt == attempts:
                    raise
                self.log(f"starting again: {error}")
        raise AssertionError("unreachable")

    def _start_all(self, timeout: float) -> Path:
        self.down(quiet=True)
        if self.real_node:
            check_can_run_node()
        tools = ensure_toolchain(self.log)
        pause = images.pause_image(self.log) if self.real_node else None
        self._forget_all_but_logs()
        for d in (self.pki_dir, self.log_dir, self.dir / "etcd"):
            d.mkdir(parents=True, exist_ok=True)
        api_port, etcd_port, etcd_peer_port = free_ports(3)
        state = State(api_port=api_port, etcd_port=etcd_port, etcd_peer_port=etcd_peer_port)
        if self.real_node:
            host = Host.record()
            host.save(self.dir / "host.json")
            host.prepare()
            host.save(self.dir / "host.json")
            state.address = node.NODE_ADDRESS
        certs = self._certificates(state)
        deadline = time.monotonic() + timeout
        try:
            self._start(state, "etcd", self._etcd_args(tools, state))
            self._wait(deadline, lambda: self._etcd_healthy(state), "etcd")
            self._start(state, "kube-apiserver", self._apiserver_args(tools, state))
            self._wait(deadline, self.api_ready, "kube-apiserver")
            self._start(state, "kube-controller-manager", self._controller_manager_args(tools, certs))
            self._start(state, "kube-scheduler", self._scheduler_args(tools, certs))
            if pause is not None:
                self._start_node(tools, state, certs, pause, deadline)
            else:
                self._start(state, "kwok", self._kwok_args(tools))
                self._register_fake_node(tools)
                self._wait(deadline, lambda: self._node_ready(tools, FAKE_NODE_NAME), f"node {FAKE_NODE_NAME} (kwok)")
            self._wait(deadline, lambda: self._default_service_account(tools), "kube-controller-manager")
        except Exception:
            self.down(quiet=True)
            raise
        self.log(f"the local cluster is up: {state.server}, kubeconfig {kubeconfig_path()}")
        return kubeconfig_path()

    def _forget_all_but_logs(self) -> None:
        """A fresh state directory; the last attempt's logs stay in `logs.previous` (they say why it failed)."""
        previous = self.dir / "logs.previous"
        shutil.rmtree(previous, ignore_errors=True)
        if self.log_dir.exists():
            self.log_dir.rename(previous)
        for entry in self.dir.iterdir() if self.dir.exists() else ():
            if entry != previous:
                shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()

    def _start_node(
        self, tools: Toolchain, state: State, kubeconfigs: dict[str, Path], pause: images.Image, deadline: float
    ) -> None:
        """containerd with the pause image, then the kubelet, kube-proxy and CoreDNS; sysctls the kubelet set at
        start go back once the node is Ready."""
        layout = self.layout
        store = ObjectStore.create(node.NODE_ADDRESS, free_port())
        store.save(self.dir / "objectstore.json")
        (layout.root / "objects" / store.bucket).mkdir(parents=True)
        self._start(state, "versitygw", store.server_args(tools.versitygw, layout.root / "objects"), store.server_env())
        node.write_configs(layout, self.pki_dir, kubeconfigs, pause.reference, (free_port(), free_port()))
        self._start(state, "containerd", ["containerd", f"--config={layout.config('containerd.toml')}"])
        self._wait(deadline, layout.containerd_socket.exists, "containerd")
        self.import_image(pause)
        self._start(state, "kubelet", node.kubelet_args(tools, layout, kubeconfigs["kubelet"]))
        self._start(state, "kube-proxy", node.kube_proxy_args(tools, layout))
        for manifest in (node.COREDNS_ROLE, node.coredns_binding()):
            done = self.kubectl(tools, "apply", "-f", "-", stdin=json.dumps(manifest))
            if done.returncode != 0:
                raise ClusterError(f"could not apply {manifest['kind']}: {done.stderr}")
        self._start(state, "coredns", node.coredns_args(tools, layout))
        self._wait(deadline, lambda: self._node_ready(tools, node.NODE_NAME), f"node {node.NODE_NAME}")
        Host.load(self.dir / "host.json").settle()  # type: ignore[union-attr]

    def object_store(self) -> ObjectStore:
        """The S3 server the node's pods and the host share (see `objectstore.py`)."""
        store = ObjectStore.load(self.dir / "objectstore.json")
        if store is None:
            raise ClusterError("the local cluster has no object store: start it with `modelops cluster up`")
        return store

    def import_image(self, image: images.Image) -> None:
        """Load an image archive into the node's containerd under the reference pods name (nothing is pulled)."""
        done = subprocess.run(
            [
                "ctr",
                f"--address={self.layout.containerd_socket}",
                "-n",
                "k8s.io",
                "images",
                "import",
                str(image.archive),
            ],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise ClusterError(f"could not load {image.reference} into the node: {done.stderr}")

    def restart_component(self, name: str, timeout: float = 90) -> float:
        """Stop etcd or kube-apiserver (SIGTERM, SIGKILL after 15 s) and start it again with the same arguments and
        data, as a crash or an upgrade of that process would; returns the seconds until the API answers again. For
        chaos tests of what runs against the cluster: everything else keeps running."""
        state = State.load()
        if state is None or name not in ("etcd", "kube-apiserver"):
            raise ClusterError(f"cannot restart {name!r}: only etcd and kube-apiserver of a running cluster")
        tools = ensure_toolchain(self.log)
        began = time.monotonic()
        pid = state.pids.get(name)
        if pid and _alive(pid, name, self.dir):
            _stop([pid])
        args = self._etcd_args(tools, state) if name == "etcd" else self._apiserver_args(tools, state)
        self._start(state, name, args)
        deadline = time.monotonic() + timeout
        if name == "etcd":
            self._wait(deadline, lambda: self._etcd_healthy(state), "etcd")
        self._wait(deadline, self.api_ready, "kube-apiserver")
        return time.monotonic() - began

    def _certificates(self, state: State) -> dict[str, Path]:
        ca = pki.make_ca(self.pki_dir)
        pki.issue(
            ca,
            self.pki_dir,
            "apiserver",
            "kube-apiserver",
            server_names=(
                "localhost",
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
                "kubernetes.default.svc.cluster.local",
            ),
            server_ips=("127.0.0.1", "10.96.0.1", node.NODE_ADDRESS),
        )
        pki.issue(ca, self.pki_dir, "kubelet-serving", f"system:node:{node.NODE_NAME}", server_ips=(node.NODE_ADDRESS,))
        pki.issue(
            ca, self.pki_dir, "apiserver-kubelet-client", "kube-apiserver-kubelet-client", organization="system:masters"
        )
        pki.make_service_account_keys(self.pki_dir)
        clients = {
            "admin": ("modelops-admin", "system:masters"),
            "controller-manager": ("system:kube-controller-manager", None),
            "scheduler": ("system:kube-scheduler", None),
            "kwok": ("kwok", "system:masters"),
            "kubelet": (f"system:node:{node.NODE_NAME}", "system:nodes"),
            "kube-proxy": ("system:kube-proxy", None),
            "coredns": (node.COREDNS_USER, None),
        }
        kubeconfigs = {}
        for stem, (cn, org) in clients.items():
            pair = pki.issue(ca, self.pki_dir, stem, cn, organization=org)
            path = kubeconfig_path() if stem == "admin" else self.dir / f"{stem}.kubeconfig"
            path.write_text(yaml.safe_dump(_kubeconfig(state.server, ca.cert, pair, cn)))
            path.chmod(0o600)
            kubeconfigs[stem] = path
        return kubeconfigs

    def _etcd_args(self, tools: Toolchain, state: State) -> list[str]:
        client = f"http://127.0.0.1:{state.etcd_port}"
        peer = f"http://127.0.0.1:{state.etcd_peer_port}"
        return [
            str(tools.etcd),
            "--name=modelops-dev",
            f"--data-dir={self.dir / 'etcd'}",
            f"--listen-client-urls={client}",
            f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=modelops-dev={peer}",
            "--log-level=info",
            "--quota-backend-bytes=4294967296",
            "--unsafe-no-fsync",  # a throwaway dev store: speed over durability
        ]

    def _apiserver_args(self, tools: Toolchain, state: State) -> list[str]:
        p = self.pki_dir
        return [
            str(tools.kube_apiserver),
            f"--etcd-servers=http://127.0.0.1:{state.etcd_port}",
            f"--bind-address={state.address}",
            f"--advertise-address={state.address}",
            f"--secure-port={state.api_port}",
            f"--tls-cert-file={p / 'apiserver.crt'}",
            f"--tls-private-key-file={p / 'apiserver.key'}",
            f"--client-ca-file={p / 'ca.crt'}",
            f"--kubelet-client-certificate={p / 'apiserver-kubelet-client.crt'}",
            f"--kubelet-client-key={p / 'apiserver-kubelet-client.key'}",
            f"--kubelet-certificate-authority={p / 'ca.crt'}",
            "--kubelet-preferred-address-types=InternalIP,Hostname",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={p / 'sa.pub'}",
            f"--service-account-signing-key-file={p / 'sa.key'}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--authorization-mode=Node,RBAC",
            "--enable-admission-plugins=NodeRestriction",
            "--allow-privileged=false",
            "--profiling=false",
            # A kwok-only cluster has no address pods could reach: the `kubernetes` Service keeps no endpoint.
            f"--endpoint-reconciler-type={'lease' if self.real_node else 'none'}",
            "--v=1",
        ]

    def _controller_manager_args(self, tools: Toolchain, kubeconfigs: dict[str, Path]) -> list[str]:
        return [
            str(tools.kube_controller_manager),
            f"--kubeconfig={kubeconfigs['controller-manager']}",
            "--bind-address=127.0.0.1",
            "--secure-port=0",
            "--leader-elect=false",
            f"--service-account-private-key-file={self.pki_dir / 'sa.key'}",
            f"--root-ca-file={self.pki_dir / 'ca.crt'}",
            "--use-service-account-credentials=true",
            "--controllers=*,-nodeipam,-cloud-node-lifecycle,-service-lb-controller,-route",
            "--concurrent-deployment-syncs=10",
            "--concurrent-replicaset-syncs=10",
            "--kube-api-qps=200",
            "--kube-api-burst=400",
            "--v=1",
        ]

    def _scheduler_args(self, tools: Toolchain, kubeconfigs: dict[str, Path]) -> list[str]:
        return [
            str(tools.kube_scheduler),
            f"--kubeconfig={kubeconfigs['scheduler']}",
            "--bind-address=127.0.0.1",
            "--secure-port=0",
            "--leader-elect=false",
            "--v=1",
        ]

    def _kwok_config(self, tools: Toolchain) -> Path:
        """kwok's own pod stages: every pod of a kwok-only cluster is faked."""
        stages = [yaml.safe_load(path.read_text()) for path in sorted(tools.kwok_pod_stages.glob("*.yaml"))]
        path = self.dir / "kwok.yaml"
        path.write_text(yaml.safe_dump_all(stages))
        return path

    def _kwok_args(self, tools: Toolchain) -> list[str]:
        return [
            str(tools.kwok),
            f"--kubeconfig={self.dir / 'kwok.kubeconfig'}",
            f"--config={self._kwok_config(tools)}",
            "--manage-all-nodes=false",
            "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
            "--node-ip=127.0.0.1",
            "--node-lease-duration-seconds=40",
            f"--cidr={KWOK_CIDR}",
        ]

    def _start(self, state: State, name: str, args: list[str], env: dict[str, str] | None = None) -> None:
        with open(self.log_dir / f"{name}.log", "ab") as out:
            process = subprocess.Popen(
                args,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                env={**os.environ, **(env or {})},
            )
        state.pids[name] = process.pid
        state.save()

    def _wait(self, deadline: float, check: Callable[[], bool], what: str) -> None:
        def none_died() -> None:
            dead = [name for name, alive in self.component_status().items() if not alive]
            if dead:
                raise ClusterError(f"{dead[0]} exited: see {self.log_dir / (dead[0] + '.log')}")

        if not poll(check, deadline - time.monotonic(), 0.3, between=none_died):
            raise ClusterError(f"{what} was not ready in time: see the logs in {self.log_dir}")

    def kubectl(self, tools: Toolchain, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(tools.kubectl), f"--kubeconfig={kubeconfig_path()}", *args],
            input=stdin,
            capture_output=True,
            text=True,
        )

    def _register_fake_node(self, tools: Toolchain) -> None:
        node = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": FAKE_NODE_NAME,
                "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
                "labels": {
                    "type": "kwok",
                    "kubernetes.io/hostname": FAKE_NODE_NAME,
                    "kubernetes.io/os": "linux",
                    "kubernetes.io/arch": "amd64",
                },
            },
            "status": {
                "allocatable": {"cpu": "64", "memory": "256Gi", "pods": "2000"},
                "capacity": {"cpu": "64", "memory": "256Gi", "pods": "2000"},
            },
        }
        done = self.kubectl(tools, "apply", "-f", "-", stdin=json.dumps(node))
        if done.returncode != 0:
            raise ClusterError(f"could not register the node: {done.stderr}")

    def _node_ready(self, tools: Toolchain, name: str) -> bool:
        done = self.kubectl(
            tools, "get", "node", name, "-o", "jsonpath={.status.conditions[?(@.type=='Ready')].status}"
        )
        return done.stdout.strip() == "True"

    def _default_service_account(self, tools: Toolchain) -> bool:
        return self.kubectl(tools, "get", "serviceaccount", "default", "-n", "default").returncode == 0

    # -- down ----------------------------------------------------------------------------------------------

    def down(self, quiet: bool = False) -> None:
        """Stop every process `up` started and forget the cluster's data."""
        state = State.load()
        if state is None:
            self._restore_host()
            if not quiet:
                self.log("no local cluster is running")
            return
        # Which PIDs are ours is decided once, before signalling: a signalled process keeps its PID until it is
        # reaped, but its command line empties while it exits, so `_alive` would let go of it too early.
        if state.pids.get("kubelet"):
            self._drain_real_node()
        ours = [pid for name in reversed(COMPONENTS) if (pid := state.pids.get(name)) and _alive(pid, name, self.dir)]
        _stop(ours)
        self._restore_host()
        (self.dir / "state.json").unlink(missing_ok=True)
        shutil.rmtree(self.dir / "etcd", ignore_errors=True)
        if not quiet:
            self.log("the local cluster is stopped")

    def _restore_host(self) -> None:
        """Undo what the real node changed on the host (also after a crash that left no running cluster)."""
        host = Host.load(self.dir / "host.json")
        if host is None:
            return
        left = host.restore(self.dir)
        if left:
            self.log("could not undo on the host: " + "; ".join(left))
        (self.dir / "host.json").unlink()
        shutil.rmtree(self.layout.root, ignore_errors=True)

    def _drain_real_node(self) -> None:
        """Delete the real node's pods while its kubelet runs, so it tears down their sandboxes and volumes itself;
        whatever is left when it stops is killed and unmounted by `Host.restore`."""
        kubectl = ensure_toolchain(self.log).kubectl
        subprocess.run(
            [
                str(kubectl),
                f"--kubeconfig={kubeconfig_path()}",
                "delete",
                "pods",
                "--all-namespaces",
                "--all",
                f"--field-selector=spec.nodeName={node.NODE_NAME}",
                "--grace-period=1",
                "--timeout=30s",
            ],
            capture_output=True,
            timeout=60,
        )


def _stop(pids: list[int], grace: float = 15) -> None:
    """SIGTERM each process group, then SIGKILL those still running after `grace` seconds; return once all are gone."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
    end = time.monotonic() + grace
    for pid in pids:
        _reap(pid)
        while process_running(pid):
            if time.monotonic() > end:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)
            time.sleep(0.1)
            _reap(pid)


def _reap(pid: int) -> None:
    """Collect a child we started in this process, so it does not linger as a zombie."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def process_running(pid: int) -> bool:
    """The PID is a process that has not finished exiting (a zombie has: it only waits to be reaped)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return False
