"""A real Prometheus on the host, scraping what a test points it at."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.support.waiting import wait_until_answering


class Prometheus:
    """Debian's Prometheus, scraping the targets a test names (file-based discovery, 1 s interval)."""

    def __init__(self, folder: Path) -> None:
        import shutil

        from modelops.devcluster.cluster import free_port

        binary = shutil.which("prometheus")
        assert binary, "Prometheus is missing: `make test` installs Debian's prometheus package"
        self.targets = folder / "targets.json"
        self.set_targets([])
        config = folder / "prometheus.yml"
        config.write_text(
            json.dumps(
                {
                    "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                    "scrape_configs": [
                        {
                            "job_name": "modelops",
                            "file_sd_configs": [{"files": [str(self.targets)], "refresh_interval": "1s"}],
                        }
                    ],
                }
            )
        )
        self.url = f"http://127.0.0.1:{free_port()}"
        self.command = [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={folder / 'data'}",
            f"--web.listen-address={self.url.removeprefix('http://')}",
        ]
        self.log_path = folder / "prometheus.log"
        self.start()

    def start(self) -> None:
        """Start it, again after `stop` (same address, same data): an outage and its end."""
        self.log = open(self.log_path, "ab")  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(self.command, stdout=self.log, stderr=subprocess.STDOUT)

    def set_targets(self, addresses: list[str], namespace: str = "") -> None:
        """Scrape these pods, labelling their series with their namespace, as Prometheus' Kubernetes discovery does."""
        self.targets.write_text(json.dumps([{"targets": addresses, "labels": {"namespace": namespace}}]))

    def wait_ready(self) -> None:
        wait_until_answering(f"{self.url}/-/ready", self.process, self.log_path)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)
        self.log.close()
