"""The dev cluster's real node: containerd, runc and the CNI plugins from Debian's packages, the kubelet and
kube-proxy from the pinned Kubernetes module, and CoreDNS, with every path under the cluster's state directory.

These are pure functions: what each component is told (its configuration file and its arguments). Starting them
is `cluster.py`'s, and what they change on the host is `host.py`'s to undo. Every setting here was measured on
a machine like CI's (kernel 6.x, cgroup v1, root without CAP_SYS_RESOURCE); the why is beside each one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .toolchain import Toolchain

NODE_NAME = "modelops-node"
#: The node's address, on `lo`: pods cannot be DNAT'ed to 127/8, and an address on loopback never leaves the
#: machine. The API server, the kubelet, kube-proxy's node ports and CoreDNS all listen here.
NODE_ADDRESS = "10.255.0.1"
POD_CIDR = "10.244.0.0/24"
GATEWAY = "10.244.0.1"
SERVICE_CIDR = "10.96.0.0/16"
BRIDGE = "modelops0"
CGROUP_ROOT = "/modelops"
CLUSTER_DOMAIN = "cluster.local"
#: Plugins where Debian installs them.
CNI_BIN_DIR = Path("/usr/lib/cni")


@dataclass(frozen=True)
class NodeLayout:
    """Where the node's components keep their state, all under the cluster's state directory."""

    root: Path

    @property
    def containerd_root(self) -> Path:
        return self.root / "containerd"

    @property
    def containerd_state(self) -> Path:
        return self.root / "containerd-state"

    @property
    def containerd_socket(self) -> Path:
        return self.root / "containerd-state" / "containerd.sock"

    @property
    def cni_conf_dir(self) -> Path:
        return self.root / "cni" / "net.d"

    @property
    def cni_data_dir(self) -> Path:
        return self.root / "cni" / "ipam"

    @property
    def kubelet_dir(self) -> Path:
        return self.root / "kubelet"

    @property
    def pod_logs(self) -> Path:
        return self.root / "pod-logs"

    def config(self, name: str) -> Path:
        return self.root / "config" / name


def containerd_config(layout: NodeLayout, pause_reference: str) -> str:
    """containerd 1.6's TOML. `restrict_oom_score_adj`: root here lacks CAP_SYS_RESOURCE, so the -998 the CRI asks
    for a sandbox fails every pod with a bare `EOF` from runc; a runc root of its own keeps the host's untouched."""
    return f"""version = 2
root = "{layout.containerd_root}"
state = "{layout.containerd_state}"
oom_score = 0

[grpc]
  address = "{layout.containerd_socket}"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{pause_reference}"
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "{layout.root / "runc"}"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{CNI_BIN_DIR}"
    conf_dir = "{layout.cni_conf_dir}"
"""


def cni_config(layout: NodeLayout) -> dict[str, Any]:
    """A bridge with the node as gateway; hairpin so a pod reaches its own Service; no masquerade: nothing leaves."""
    return {
        "cniVersion": "1.0.0",
        "name": "modelops",
        "plugins": [
            {
                "type": "bridge",
                "bridge": BRIDGE,
                "isGateway": True,
                "hairpinMode": True,
                "ipMasq": False,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": POD_CIDR}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": str(layout.cni_data_dir),
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }


def kubelet_config(layout: NodeLayout, pki: Path) -> dict[str, Any]:
    """Everything beside the flags. cgroupfs on cgroup v1, under a root of its own; images are never collected
    (they came from archives and cannot be pulled back); eviction thresholds low enough for a busy dev disk."""
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": NODE_ADDRESS,
        "port": 10250,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": 0,
        "cgroupDriver": "cgroupfs",
        "cgroupRoot": CGROUP_ROOT,
        "cgroupsPerQOS": True,
        "failSwapOn": False,
        "containerRuntimeEndpoint": f"unix://{layout.containerd_socket}",
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(pki / "ca.crt")},
        },
        "authorization": {"mode": "Webhook"},
        "tlsCertFile": str(pki / "kubelet-serving.crt"),
        "tlsPrivateKeyFile": str(pki / "kubelet-serving.key"),
        "clusterDNS": [NODE_ADDRESS],
        "clusterDomain": CLUSTER_DOMAIN,
        "podLogsDir": str(layout.pod_logs),
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "evictionHard": {"memory.available": "100Mi", "nodefs.available": "1%", "imagefs.available": "1%"},
        "maxPods": 110,
        "serializeImagePulls": False,
        "resolvConf": "/etc/resolv.conf",
        "staticPodPath": "",
        "registerNode": True,
        "nodeStatusReportFrequency": "10s",
        "shutdownGracePeriod": "0s",
    }


def kubelet_args(tools: Toolchain, layout: NodeLayout, kubeconfig: Path) -> list[str]:
    """`--oom-score-adj=0`: the kubelet may not lower its own oom score here either (no CAP_SYS_RESOURCE)."""
    return [
        str(tools.kubelet),
        f"--config={layout.config('kubelet.json')}",
        f"--kubeconfig={kubeconfig}",
        f"--hostname-override={NODE_NAME}",
        f"--node-ip={NODE_ADDRESS}",
        f"--root-dir={layout.kubelet_dir}",
        "--oom-score-adj=0",
        "--node-labels=modelops.io/node=real",
        "--v=1",
    ]


def kube_proxy_config(kubeconfig: Path, health_port: int, metrics_port: int) -> dict[str, Any]:
    """iptables mode, told to change no sysctl: no localhost node ports (route_localnet) and no conntrack sizing."""
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "mode": "iptables",
        "clientConnection": {"kubeconfig": str(kubeconfig)},
        "clusterCIDR": POD_CIDR,
        "bindAddress": NODE_ADDRESS,
        "nodePortAddresses": [f"{NODE_ADDRESS}/32"],
        "healthzBindAddress": f"127.0.0.1:{health_port}",
        "metricsBindAddress": f"127.0.0.1:{metrics_port}",
        "iptables": {"localhostNodePorts": False, "masqueradeAll": False},
        "conntrack": {"maxPerCore": 0, "min": 0, "tcpEstablishedTimeout": "0s", "tcpCloseWaitTimeout": "0s"},
    }


def kube_proxy_args(tools: Toolchain, layout: NodeLayout) -> list[str]:
    return [
        str(tools.kube_proxy),
        f"--config={layout.config('kube-proxy.json')}",
        f"--hostname-override={NODE_NAME}",
        "--v=1",
    ]


def corefile(kubeconfig: Path) -> str:
    """Cluster names from the API (a read-only identity); everything else goes to the host's resolver."""
    return f"""{CLUSTER_DOMAIN}:53 in-addr.arpa:53 ip6.arpa:53 {{
    bind {NODE_ADDRESS}
    errors
    kubernetes {CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {{
        kubeconfig {kubeconfig}
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }}
    cache 30
    loop
}}
.:53 {{
    bind {NODE_ADDRESS}
    errors
    forward . /etc/resolv.conf
    cache 30
    loop
}}
"""


def coredns_args(tools: Toolchain, layout: NodeLayout) -> list[str]:
    return [str(tools.coredns), "-conf", str(layout.config("Corefile")), "-dns.port", "53"]


#: What the DNS identity may read: the `system:coredns` role upstream's manifests bind.
COREDNS_ROLE: dict[str, Any] = {
    "apiVersion": "rbac.authorization.k8s.io/v1",
    "kind": "ClusterRole",
    "metadata": {"name": "modelops-dev:coredns"},
    "rules": [
        {"apiGroups": [""], "resources": ["endpoints", "services", "pods", "namespaces"], "verbs": ["list", "watch"]},
        {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["list", "watch"]},
    ],
}
COREDNS_USER = "modelops-dev:coredns"


def coredns_binding() -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": COREDNS_ROLE["metadata"]["name"]},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": COREDNS_ROLE["metadata"]["name"],
        },
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": COREDNS_USER}],
    }


def write_configs(
    layout: NodeLayout, pki: Path, kubeconfigs: dict[str, Path], pause: str, proxy_ports: tuple[int, int]
) -> None:
    for folder in (layout.root / "config", layout.cni_conf_dir, layout.cni_data_dir, layout.pod_logs):
        folder.mkdir(parents=True, exist_ok=True)
    layout.config("containerd.toml").write_text(containerd_config(layout, pause))
    (layout.cni_conf_dir / "10-modelops.conflist").write_text(json.dumps(cni_config(layout), indent=2))
    layout.config("kubelet.json").write_text(json.dumps(kubelet_config(layout, pki), indent=2))
    layout.config("kube-proxy.json").write_text(
        json.dumps(kube_proxy_config(kubeconfigs["kube-proxy"], *proxy_ports), indent=2)
    )
    layout.config("Corefile").write_text(corefile(kubeconfigs["coredns"]))
