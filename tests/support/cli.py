"""The `modelops` command as a person runs it against the local cluster."""

from __future__ import annotations

import os
import subprocess
import sys

from modelops.devcluster.cluster import kubeconfig_path


def modelops(
    *args: str, user: str | None = None, groups: tuple[str, ...] = (), env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """The CLI as a person runs it, with the local cluster's kubeconfig in KUBECONFIG (and `env`)."""
    identity = [*(["--as", user] if user else []), *(a for g in groups for a in ("--as-group", g))]
    return subprocess.run(
        [sys.executable, "-m", "modelops.cli", *args, *identity],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "KUBECONFIG": str(kubeconfig_path()), "NO_COLOR": "1", **(env or {})},
    )
