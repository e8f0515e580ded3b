"""The dev cluster's kubelet for ModelOps' own runtime pods.

kwok only pretends to run pods. Pods labelled `modelops.io/runtime` (the trainer and the server) are run here
for real: the container's command becomes a local process with the pod's env and volumes, on a loopback
address of its own (127.0.x.y), and its real state — running, ready (from its readiness probe), exit code,
OOMKilled, termination message — is written to the pod's status. kwok is told to leave these pods alone.

Not a container runtime: the image is not pulled; the command runs from this machine's environment, so
the runtime must be installed here (it is, in the project's virtualenv). `kubectl logs` does not work for
these pods: their output is in `<cluster state>/pods/<namespace>_<name>/<container>.log`.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import datetime as dt
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

from modelops.resources.meta import RUNTIME_LABEL
from modelops.runtime.contract import TERMINATION_LOG_ENV as TERMINATION_ENV

BIND_ENV = "MODELOPS_BIND_HOST"
MEMORY_CGROUP = Path("/sys/fs/cgroup/memory")
log = logging.getLogger("modelops.podrunner")


def now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class AddressPool:
    """Loopback addresses 127.0.1.1 and up, one per running pod."""

    def __init__(self) -> None:
        self._free = [f"127.0.{x}.{y}" for x in range(1, 255) for y in range(1, 255)]
        self._lock = threading.Lock()

    def take(self) -> str:
        with self._lock:
            return self._free.pop(0)

    def give_back(self, address: str) -> None:
        with self._lock:
            self._free.append(address)


def parse_quantity(value: str) -> int:
    """A memory quantity in bytes (`512Mi`, `1G`, `1500000`)."""
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}
    match = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", str(value))
    if not match or match.group(2) not in {"", *units}:
        raise ValueError(f"not a memory quantity: {value}")
    return int(float(match.group(1)) * units.get(match.group(2), 1))


def expand(value: str, env: dict[str, str]) -> str:
    """Kubernetes' `$(VAR)` expansion in command, args and env values; `$$(VAR)` escapes it."""
    return re.sub(
        r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)",
        lambda m: "$" if m.group(0) == "$$" else env.get(m.group(1), m.group(0)),
        value,
    )


def translate(value: str, mounts: dict[str, Path]) -> str:
    """Point a container path (the whole value, or after `=`) at the local folder of the volume mounted there."""
    for mount_path in sorted(mounts, key=len, reverse=True):
        pattern = re.compile(rf"(^|=){re.escape(mount_path.rstrip('/'))}(?=/|$)")
        if pattern.search(value):
            return pattern.sub(lambda m, p=mount_path: m.group(1) + str(mounts[p]), value, count=1)
    return value


class ConfigError(Exception):
    """What the pod needs is not there (a Secret, a key): the kubelet's CreateContainerConfigError, retried."""


class LocalPod(threading.Thread):
    """One pod run as a local process, until it ends or is deleted."""

    def __init__(self, runner: PodRunner, pod: Any) -> None:
        super().__init__(daemon=True, name=f"pod-{pod.metadata.namespace}/{pod.metadata.name}")
        self.runner = runner
        self.pod = pod
        self.core = runner.core
        self.dir = runner.pods_dir / f"{pod.metadata.namespace}_{pod.metadata.name}"
        self.stopping = threading.Event()
        self.process: subprocess.Popen | None = None
        self.address = runner.addresses.take()
        self.ready = False
        #: The last exit, shown as `lastState` once the container runs again (as the kubelet does).
        self.last_state: dict[str, Any] | None = None

    # -- preparing -----------------------------------------------------------------------------------------

    def _secret(self, name: str) -> dict[str, str]:
        try:
            data = self.core.read_namespaced_secret(name, self.pod.metadata.namespace).data or {}
        except ApiException as error:
            raise ConfigError(f'secret "{name}" not found' if error.status == 404 else str(error.reason)) from None
        return {k: base64.b64decode(v).decode() for k, v in data.items()}

    def _config_map(self, name: str) -> dict[str, str]:
        try:
            return self.core.read_namespaced_config_map(name, self.pod.metadata.namespace).data or {}
        except ApiException as error:
            raise ConfigError(f'configmap "{name}" not found' if error.status == 404 else str(error.reason)) from None

    @staticmethod
    def _key(data: dict[str, str], key: str, kind: str, name: str) -> str:
        if key not in data:
            raise ConfigError(f"couldn't find key {key} in {kind} {name}")
        return data[key]

    def _volumes(self, container: Any) -> dict[str, Path]:
        """Materialise the volumes and return {mountPath: local folder}."""
        folders: dict[str, Path] = {}
        for volume in self.pod.spec.volumes or []:
            folder = self.dir / "volumes" / volume.name
            folder.mkdir(parents=True, exist_ok=True)
            files: dict[str, str] = {}
            if volume.secret:
                files = self._secret(volume.secret.secret_name)
            elif volume.config_map:
                files = self._config_map(volume.config_map.name)
            elif volume.downward_api:
                files = {item.path: self._field(item.field_ref.field_path) for item in volume.downward_api.items or []}
            for key, text in files.items():
                (folder / key).write_text(text)
            folders[volume.name] = folder
        return {m.mount_path: folders[m.name] / (m.sub_path or "") for m in container.volume_mounts or []}

    def _field(self, path: str) -> str:
        """A downward API field: the pod's name, IPs, … or one of its annotations or labels."""
        keyed = re.fullmatch(r"metadata\.(annotations|labels)\['([^']+)'\]", path)
        if keyed:
            values_of = self.pod.metadata.annotations if keyed.group(1) == "annotations" else self.pod.metadata.labels
            return (values_of or {}).get(keyed.group(2), "")
        values = {
            "metadata.name": self.pod.metadata.name,
            "metadata.namespace": self.pod.metadata.namespace,
            "metadata.uid": self.pod.metadata.uid,
            "spec.nodeName": self.pod.spec.node_name or "",
            "spec.serviceAccountName": self.pod.spec.service_account_name or "",
            "status.podIP": self.address,
            "status.hostIP": "127.0.0.1",
        }
        return values.get(path, "")

    def _env(self, container: Any, mounts: dict[str, Path]) -> dict[str, str]:
        env: dict[str, str] = {}
        for source in container.env_from or []:
            if source.secret_ref:
                env.update(self._secret(source.secret_ref.name))
            elif source.config_map_ref:
                env.update(self._config_map(source.config_map_ref.name))
        for var in container.env or []:
            if var.value_from is None:
                env[var.name] = expand(var.value or "", env)
            elif var.value_from.secret_key_ref:
                ref = var.value_from.secret_key_ref
                env[var.name] = self._key(self._secret(ref.name), ref.key, "Secret", ref.name)
            elif var.value_from.config_map_key_ref:
                ref = var.value_from.config_map_key_ref
                env[var.name] = self._key(self._config_map(ref.name), ref.key, "ConfigMap", ref.name)
            elif var.value_from.field_ref:
                env[var.name] = self._field(var.value_from.field_ref.field_path)
        env = {k: translate(v, mounts) for k, v in env.items()}
        home = self.dir / "home"
        home.mkdir(parents=True, exist_ok=True)
        return {
            "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
            "HOME": str(home),
            "LANG": "C.UTF-8",
            **env,
            BIND_ENV: self.address,
            TERMINATION_ENV: str(self.dir / "termination-log"),
        }

    def _memory_cgroup(self, container: Any) -> Path | None:
        """A memory cgroup with the container's limit, so going over it is a real OOM kill."""
        limit = ((container.resources and container.resources.limits) or {}).get("memory")
        if not limit or not os.access(MEMORY_CGROUP, os.W_OK):
            return None
        group = MEMORY_CGROUP / "modelops" / self.pod.metadata.uid
        try:
            group.mkdir(parents=True, exist_ok=True)
            (group / "memory.limit_in_bytes").write_text(str(parse_quantity(limit)))
            return group
        except OSError as error:
            log.warning("no memory limit for %s: %s", self.name, error)
            return None

    # -- running -------------------------------------------------------------------------------------------

    def _patch_status(self, status: dict[str, Any]) -> None:
        with contextlib.suppress(ApiException):
            self.core.patch_namespaced_pod_status(
                self.pod.metadata.name, self.pod.metadata.namespace, {"status": status}
            )

    def _conditions(self, ready: bool) -> list[dict[str, str]]:
        state = "True" if ready else "False"
        return [
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": now()},
            {"type": "Initialized", "status": "True", "lastTransitionTime": now()},
            {"type": "ContainersReady", "status": state, "lastTransitionTime": now()},
            {"type": "Ready", "status": state, "lastTransitionTime": now()},
        ]

    def run(self) -> None:
        container = self.pod.spec.containers[0]
        restarts = 0
        waiting_for = None
        while True:  # as the kubelet: a missing Secret keeps the pod waiting, and it starts once it is there
            try:
                mounts = self._volumes(container)
                env = self._env(container, mounts)
                break
            except (ConfigError, OSError) as error:
                if str(error) != waiting_for:
                    waiting_for = str(error)
                    waiting = {"waiting": {"reason": "CreateContainerConfigError", "message": waiting_for}}
                    self._patch_status({"containerStatuses": [self._container_status(container, waiting, restarts)]})
                if self.stopping.wait(2):
                    return
        argv = [translate(expand(a, env), mounts) for a in [*(container.command or []), *(container.args or [])]]
        started = now()
        while not self.stopping.is_set():
            cgroup = self._memory_cgroup(container)
            log_file = open(self.dir / f"{container.name}.log", "ab")  # noqa: SIM115 (closed below)
            (self.dir / "termination-log").unlink(missing_ok=True)
            try:
                self.process = subprocess.Popen(
                    argv,
                    env=env,
                    cwd=self.dir,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    preexec_fn=(lambda g=cgroup: (g / "cgroup.procs").write_text(str(os.getpid()))) if cgroup else None,
                )
            except OSError as error:
                log_file.close()
                self._finish(container, 128, "StartError", str(error), restarts, final=True)
                return
            self._patch_status(
                {
                    "phase": "Running",
                    "podIP": self.address,
                    "podIPs": [{"ip": self.address}],
                    "hostIP": "127.0.0.1",
                    "startTime": started,
                    "conditions": self._conditions(False),
                    "containerStatuses": [
                        self._container_status(container, {"running": {"startedAt": now()}}, restarts)
                    ],
                }
            )
            self._probe_until_exit(container, restarts)
            code = self.process.wait()
            log_file.close()
            oom = cgroup is not None and self._oom_killed(cgroup)
            reason = "OOMKilled" if oom else ("Completed" if code == 0 else "Error")
            message = self._termination_message()
            policy = self.pod.spec.restart_policy or "Always"
            final = self.stopping.is_set() or policy == "Never" or (policy == "OnFailure" and code == 0)
            self._finish(
                container, 137 if oom else (code if code >= 0 else 128 - code), reason, message, restarts, final
            )
            if final:
                return
            restarts += 1
            self.stopping.wait(min(10, 2**restarts))

    def _probe_until_exit(self, container: Any, restarts: int) -> None:
        probe = container.readiness_probe
        assert self.process is not None
        while self.process.poll() is None and not self.stopping.is_set():
            ready = self._probe(container, probe) if probe else True
            if ready != self.ready:
                self.ready = ready
                self._patch_status(
                    {
                        "conditions": self._conditions(ready),
                        "containerStatuses": [
                            self._container_status(container, {"running": {"startedAt": now()}}, restarts, ready)
                        ],
                    }
                )
            self.stopping.wait((probe.period_seconds or 10) if probe and ready else 0.5)

    def _probe(self, container: Any, probe: Any) -> bool:
        if not probe.http_get:
            return True
        port = probe.http_get.port
        if isinstance(port, str):
            port = next(p.container_port for p in container.ports or [] if p.name == port)
        try:
            answer = httpx.get(
                f"http://{self.address}:{port}{probe.http_get.path or '/'}", timeout=probe.timeout_seconds or 1
            )
            return 200 <= answer.status_code < 400
        except httpx.HTTPError:
            return False

    @staticmethod
    def _oom_killed(cgroup: Path) -> bool:
        """The kernel's count of OOM kills in the pod's memory cgroup."""
        try:
            kills = re.search(r"oom_kill (\d+)", (cgroup / "memory.oom_control").read_text())
        except OSError:
            return False
        return bool(kills and int(kills.group(1)) > 0)

    def _termination_message(self) -> str:
        path = self.dir / "termination-log"
        return path.read_text()[:4096] if path.exists() else ""

    def _container_status(self, container: Any, state: dict, restarts: int, ready: bool = False) -> dict[str, Any]:
        return {
            "name": container.name,
            "image": container.image,
            "imageID": "",
            "containerID": f"modelops-local://{self.pod.metadata.uid}",
            "ready": ready,
            "started": "running" in state,
            "restartCount": restarts,
            "state": state,
            **({"lastState": self.last_state} if self.last_state and "running" in state else {}),
        }

    def _finish(self, container: Any, code: int, reason: str, message: str, restarts: int, final: bool) -> None:
        terminated = {"exitCode": code, "reason": reason, "finishedAt": now(), "startedAt": now()}
        if message:
            terminated["message"] = message
        self.last_state = {"terminated": terminated}
        status: dict[str, Any] = {
            "conditions": self._conditions(False),
            "containerStatuses": [self._container_status(container, {"terminated": terminated}, restarts)],
        }
        if final:
            status["phase"] = "Succeeded" if code == 0 else "Failed"
        self._patch_status(status)
        log.info("%s exited %s (%s)", self.name, code, reason)

    def stop(self, grace: float) -> None:
        """SIGTERM, then SIGKILL after the grace period, as a kubelet does."""
        self.stopping.set()
        process = self.process
        if process and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.runner.addresses.give_back(self.address)
        cgroup = MEMORY_CGROUP / "modelops" / self.pod.metadata.uid
        with contextlib.suppress(OSError):
            cgroup.rmdir()


class PodRunner:
    """Watches runtime pods bound to a node and runs them."""

    def __init__(self, kubeconfig: str, state: Path) -> None:
        config.load_kube_config(kubeconfig)
        self.core = client.CoreV1Api()
        self.pods_dir = state / "pods"
        self.addresses = AddressPool()
        self.local: dict[str, LocalPod] = {}

    def handle(self, kind: str, pod: Any) -> None:
        uid = pod.metadata.uid
        if kind == "DELETED" or pod.metadata.deletion_timestamp:
            local = self.local.pop(uid, None)
            if local:
                local.stop(grace=float(pod.spec.termination_grace_period_seconds or 30))
            if kind != "DELETED":
                with contextlib.suppress(ApiException):
                    self.core.delete_namespaced_pod(
                        pod.metadata.name,
                        pod.metadata.namespace,
                        body=client.V1DeleteOptions(
                            grace_period_seconds=0, preconditions=client.V1Preconditions(uid=uid)
                        ),
                    )
            return
        if uid not in self.local and pod.spec.node_name and (pod.status.phase or "Pending") == "Pending":
            local = LocalPod(self, pod)
            shutil.rmtree(local.dir, ignore_errors=True)
            local.dir.mkdir(parents=True)
            self.local[uid] = local
            local.start()

    def run_forever(self) -> None:
        while True:
            try:
                listed = self.core.list_pod_for_all_namespaces(label_selector=RUNTIME_LABEL)
                for pod in listed.items:
                    self.handle("ADDED", pod)
                stream = watch.Watch().stream(
                    self.core.list_pod_for_all_namespaces,
                    label_selector=RUNTIME_LABEL,
                    resource_version=listed.metadata.resource_version,
                    timeout_seconds=300,
                )
                for event in stream:
                    self.handle(event["type"], event["object"])
            except Exception:  # the watch ends or the server restarts: list again
                log.exception("watch interrupted; listing again")
                time.sleep(1)

    def shutdown(self, *_: Any) -> None:
        for local in list(self.local.values()):
            local.stop(grace=5)
        sys.exit(0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--state", required=True, type=Path)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(threadName)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    runner = PodRunner(args.kubeconfig, args.state)
    signal.signal(signal.SIGTERM, runner.shutdown)
    runner.run_forever()


if __name__ == "__main__":
    main()
