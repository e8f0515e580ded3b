"""What the real node changes on the host, recorded before it starts and undone by `cluster down`.

The kubelet sets kernel sysctls at start, the bridge plugin turns on IP forwarding, the kubelet and kube-proxy add
iptables chains, containerd and the CNI plugins leave network namespaces, links, mounts and cgroups. `Host.record`
notes what was there before; `Host.restore` removes what was not, and puts every sysctl back, so a machine after
`down` is the machine before `up`.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .node import BRIDGE, CGROUP_ROOT, GATEWAY, NODE_ADDRESS, POD_CIDR, SERVICE_CIDR

#: Set by the kubelet at start (`vm.overcommit_memory=1`, `kernel.panic=10`, `kernel.panic_on_oops=1`) and by the
#: bridge plugin (`ip_forward`); the bridge's netfilter switches by kube-proxy's need to see bridged traffic.
SYSCTLS = (
    "vm.overcommit_memory",
    "kernel.panic",
    "kernel.panic_on_oops",
    "net.ipv4.ip_forward",
    "net.bridge.bridge-nf-call-iptables",
    "net.bridge.bridge-nf-call-ip6tables",
)
#: Sysctls the node needs while it runs; the others go back as soon as the node is Ready.
NEEDED_WHILE_RUNNING = (
    "net.ipv4.ip_forward",
    "net.bridge.bridge-nf-call-iptables",
    "net.bridge.bridge-nf-call-ip6tables",
)
#: Paths the kubelet, containerd and the CNI plugins use whatever they are told.
HARD_CODED_PATHS = (
    "/var/lib/kubelet",
    "/var/lib/cni",
    "/var/log/containers",
    "/var/log/pods",
    "/run/containerd",
    "/run/mount",
    "/run/netns",
    "/var/run/netns",
    "/etc/cni",
    "/opt/cni",
)
OUR_CHAINS = re.compile(r"^(KUBE-|CNI-|MODELOPS-)")
#: Pods talk to each other, to Services and to the node; nothing they send is forwarded anywhere else.
ISOLATION_CHAIN = "MODELOPS-ISOLATE"
CGROUP_FS = Path("/sys/fs/cgroup")


class HostError(RuntimeError):
    """The host cannot run a node; the message says what is missing."""


def _sysctl_path(name: str) -> Path:
    return Path("/proc/sys") / name.replace(".", "/")


def read_sysctls() -> dict[str, str]:
    return {name: path.read_text().strip() for name in SYSCTLS if (path := _sysctl_path(name)).exists()}


def write_sysctls(values: dict[str, str]) -> None:
    for name, value in values.items():
        path = _sysctl_path(name)
        if path.exists() and path.read_text().strip() != value:
            path.write_text(value)


def cgroup_hierarchies() -> list[Path]:
    """The v1 hierarchies the kubelet's cgroupfs driver writes to (cgroup v2 has one, at the root)."""
    if (CGROUP_FS / "cgroup.controllers").exists():
        return [CGROUP_FS]
    return sorted(p for p in CGROUP_FS.iterdir() if p.is_dir() and not p.is_symlink() and (p / "cgroup.procs").exists())


def check_can_run_node() -> None:
    """Root, cgroups, the Debian packages: each missing one said by name, before anything starts."""
    missing = []
    if os.geteuid() != 0:
        missing.append("root (the kubelet, containerd and the CNI plugins need it; run as root or with sudo)")
    if not CGROUP_FS.exists() or not cgroup_hierarchies():
        missing.append("cgroups mounted at /sys/fs/cgroup")
    for command in ("containerd", "runc", "iptables", "ip", "conntrack"):
        if shutil.which(command) is None:
            missing.append(f"`{command}` (`make node-packages` installs Debian's packages)")
    if not Path("/usr/lib/cni/bridge").exists():
        missing.append("the CNI plugins in /usr/lib/cni (Debian's containernetworking-plugins)")
    if missing:
        raise HostError("the real node cannot start here; missing: " + "; ".join(missing))


def _iptables_save(command: str) -> str:
    if shutil.which(command) is None:
        return ""
    return subprocess.run([command], capture_output=True, text=True).stdout


def _chains(dump: str) -> set[tuple[str, str]]:
    table, chains = "", set()
    for line in dump.splitlines():
        if line.startswith("*"):
            table = line[1:]
        elif line.startswith(":"):
            chains.add((table, line[1:].split()[0]))
    return chains


@dataclass
class Host:
    """The host as it was before `up`, saved as JSON beside the cluster's state."""

    sysctls: dict[str, str] = field(default_factory=dict)
    paths: list[str] = field(default_factory=list)
    netns: list[str] = field(default_factory=list)
    chains: dict[str, list[list[str]]] = field(default_factory=dict)
    address_added: bool = False

    @classmethod
    def record(cls) -> Host:
        existing_netns = sorted(os.listdir("/run/netns")) if os.path.isdir("/run/netns") else []
        return cls(
            sysctls=read_sysctls(),
            paths=[p for p in HARD_CODED_PATHS if os.path.lexists(p)],
            netns=existing_netns,
            chains={
                command: sorted([list(c) for c in _chains(_iptables_save(f"{command}-save"))])
                for command in ("iptables", "ip6tables")
            },
        )

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, path: Path) -> Host | None:
        return cls(**json.loads(path.read_text())) if path.exists() else None

    # -- while the node runs ------------------------------------------------------------------------------

    def prepare(self) -> None:
        """The node's address on `lo`; the pod bridge, with the Service range routed onto it; the isolation rule;
        and the node's cgroup in every hierarchy (cpuset starts empty on v1).

        Routing Services onto the bridge means a ClusterIP kube-proxy has not programmed yet goes nowhere,
        instead of to the default route, and the isolation rule keeps pods' traffic on the machine."""
        shown = subprocess.run(["ip", "-o", "addr", "show", "dev", "lo"], capture_output=True, text=True).stdout
        if f"inet {NODE_ADDRESS}/" not in shown:
            subprocess.run(["ip", "addr", "add", f"{NODE_ADDRESS}/32", "dev", "lo"], check=True)
            self.address_added = True
        prefix = POD_CIDR.split("/")[1]
        for command in (
            ["ip", "link", "add", BRIDGE, "type", "bridge"],
            ["ip", "addr", "add", f"{GATEWAY}/{prefix}", "dev", BRIDGE],
            ["ip", "link", "set", BRIDGE, "up"],
            ["ip", "route", "add", SERVICE_CIDR, "dev", BRIDGE],
            ["iptables", "-N", ISOLATION_CHAIN],
            ["iptables", "-A", ISOLATION_CHAIN, "-s", POD_CIDR, "-d", POD_CIDR, "-j", "RETURN"],
            ["iptables", "-A", ISOLATION_CHAIN, "-s", POD_CIDR, "-j", "DROP"],
            ["iptables", "-I", "FORWARD", "-j", ISOLATION_CHAIN],
        ):
            subprocess.run(command, check=True, capture_output=True)
        for hierarchy in cgroup_hierarchies():
            folder = hierarchy / CGROUP_ROOT.strip("/")
            folder.mkdir(exist_ok=True)
            for name in ("cpuset.cpus", "cpuset.mems"):
                if (folder / name).exists() and not (folder / name).read_text().strip():
                    (folder / name).write_text((hierarchy / name).read_text())

    def settle(self) -> None:
        """Put back what the kubelet changed at start and does not need afterwards (it sets them only once)."""
        write_sysctls({k: v for k, v in self.sysctls.items() if k not in NEEDED_WHILE_RUNNING})

    # -- after the node stopped ---------------------------------------------------------------------------

    def restore(self, state: Path) -> list[str]:
        """Undo everything the node left; returns what could not be undone (empty when the host is clean)."""
        left: list[str] = []
        _kill_cgroup_processes()
        _kill_shims(state)
        _unmount_under([state])
        self._remove_chains(left)
        self._remove_links()
        self._remove_netns()
        _remove_cgroups(left)
        for path in HARD_CODED_PATHS:
            if path not in self.paths and os.path.lexists(path):
                shutil.rmtree(path, ignore_errors=True)
                with contextlib.suppress(OSError):
                    os.unlink(path)
                if os.path.lexists(path):
                    left.append(path)
        write_sysctls(self.sysctls)
        return left

    def _remove_chains(self, left: list[str]) -> None:
        for command in ("iptables", "ip6tables"):
            if shutil.which(command) is None:
                continue
            before = {tuple(c) for c in self.chains.get(command, [])}
            dump = _iptables_save(f"{command}-save")
            ours = {c for c in _chains(dump) if c not in before and OUR_CHAINS.match(c[1])}
            table = ""
            for line in dump.splitlines():
                if line.startswith("*"):
                    table = line[1:]
                elif line.startswith("-A ") and (table, line.split()[1]) not in ours:
                    jumps = re.search(r"-[jg] (\S+)", line)
                    if jumps and (table, jumps.group(1)) in ours:
                        subprocess.run([command, "-t", table, "-D", *shlex.split(line[3:])], capture_output=True)
            for table, chain in ours:
                subprocess.run([command, "-t", table, "-F", chain], capture_output=True)
            for table, chain in ours:
                subprocess.run([command, "-t", table, "-X", chain], capture_output=True)
            remaining = {c for c in _chains(_iptables_save(f"{command}-save")) if c not in before}
            left += [f"{command} chain {t}/{c}" for t, c in sorted(remaining) if OUR_CHAINS.match(c)]

    def _remove_links(self) -> None:
        subprocess.run(["ip", "link", "delete", BRIDGE], capture_output=True)
        if self.address_added:
            subprocess.run(["ip", "addr", "delete", f"{NODE_ADDRESS}/32", "dev", "lo"], capture_output=True)

    def _remove_netns(self) -> None:
        if not os.path.isdir("/run/netns"):
            return
        for name in os.listdir("/run/netns"):
            if name.startswith("cni-") and name not in self.netns:
                subprocess.run(["umount", f"/run/netns/{name}"], capture_output=True)
                with contextlib.suppress(OSError):
                    os.unlink(f"/run/netns/{name}")


def _our_cgroups() -> list[Path]:
    """Every cgroup under the node's root, deepest first."""
    found = []
    for hierarchy in cgroup_hierarchies():
        top = hierarchy / CGROUP_ROOT.strip("/")
        if top.is_dir():
            found += [Path(d) for d, _, _ in os.walk(top)]
    return sorted(found, key=lambda p: len(p.parts), reverse=True)


def _kill_cgroup_processes() -> None:
    """Containers the kubelet did not stop in time (a `down` after a crash): nothing of the node may outlive it."""
    for _ in range(50):
        pids = {int(p) for d in _our_cgroups() for p in (d / "cgroup.procs").read_text().split() if p}
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)


def _kill_shims(state: Path) -> None:
    """containerd's shims outlive containerd on purpose; ours name the state directory in their arguments."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            command = (entry / "cmdline").read_bytes().decode(errors="replace")
            if "containerd-shim" in command and str(state) in command:
                os.kill(int(entry.name), signal.SIGKILL)


def _unmount_under(roots: list[Path]) -> None:
    prefixes = [str(r.resolve()) if r.exists() else str(r) for r in roots]
    mounts = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].encode().decode("unicode_escape")
        if any(point == p or point.startswith(p + "/") for p in prefixes):
            mounts.append(point)
    for point in sorted(mounts, key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True)


def _remove_cgroups(left: list[str]) -> None:
    for folder in _our_cgroups():
        try:
            folder.rmdir()
        except OSError:
            left.append(f"cgroup {folder}")
