"""The operator from this checkout as a local process, as the demo, the tests and the benchmarks run it (in a real
cluster the chart's Deployment runs the same `modelops run`)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import httpx

from .cluster import free_port, kubeconfig_path
from .polling import poll


class NotAnswering(RuntimeError):
    """A local process exited, or did not answer in time; the message ends with its log."""


def wait_until_answering(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    """Wait until `url` answers 200; give up at once, with the end of the log, if the process exits first."""

    def answers() -> bool:
        try:
            return httpx.get(url, timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def running() -> None:
        if process.poll() is not None:
            raise NotAnswering(f"{process.args!r:.200} exited with {process.returncode}:\n{log.read_text()[-3000:]}")

    if not poll(answers, timeout, 0.3, between=running):
        raise NotAnswering(f"{url} did not answer in {timeout:.0f}s")


class Operator:
    """`modelops run`, watching `namespaces` (every one when empty), so a caller can start, kill and restart it."""

    def __init__(
        self,
        log_path: Path,
        *,
        namespaces: Sequence[str] = (),
        kubeconfig: Path | None = None,
        args: Sequence[str] = (),
        env: dict[str, str] | None = None,
        metrics: bool = True,
    ) -> None:
        """`kubeconfig` (default: the local cluster admin's) is who the operator is; `args` and `env` add to its run."""
        self.log_path = log_path
        self.namespaces = tuple(namespaces)
        self.kubeconfig = kubeconfig or kubeconfig_path()
        self.args = tuple(args)
        self.env = env or {}
        self.health_port = free_port()
        self.metrics_port = free_port() if metrics else 0
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Operator:
        """Start it, and return once its liveness endpoint answers."""
        watch = [arg for namespace in self.namespaces for arg in ("--namespace", namespace)]
        health = f"http://127.0.0.1:{self.health_port}/healthz"
        command = ["modelops.cli", "run", *watch, "--liveness", health, "--metrics-port", str(self.metrics_port)]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", *command, *self.args],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "KUBECONFIG": str(self.kubeconfig), **self.env},
            )
        wait_until_answering(health, self.process, self.log_path)
        return self

    def kill(self) -> None:
        """SIGKILL: no chance to clean up, as when a node dies."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stop(self, timeout: float = 20) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""
