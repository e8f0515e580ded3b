"""The serving runtime as a real process on loopback (`modelops serve`, as a pod runs it), for unit tests."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from modelops.devcluster.cluster import free_port
from tests.support.waiting import wait_until_answering


@contextlib.contextmanager
def serving(result: dict, home: Path, **env: str) -> Iterator[str]:
    """A server of a trainer's `result` as version 7 of model `cancer`, with `env` added; yields its base URL."""
    port = free_port()
    environment = {
        **os.environ,
        "MODELOPS_MODEL_URI": result["artifactUri"],
        "MODELOPS_MODEL_DIGEST": result["artifactDigest"],
        "MODELOPS_MODEL": "cancer",
        "MODELOPS_MODEL_VERSION": "7",
        "MODELOPS_BIND_HOST": "127.0.0.1",
        "BENTOML_HOME": str(home / "bentoml"),
        "BENTOML_DO_NOT_TRACK": "true",
        **env,
    }
    with open(home / "log", "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "modelops.cli", "serve", "--port", str(port)],
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_answering(f"{url}/readyz", process, home / "log", timeout=120)
        yield url
    finally:
        os.killpg(process.pid, 15)
        process.wait(timeout=30)
