"""The `modelops` command as a person runs it against the local cluster."""

from __future__ import annotations

import os
import subprocess
import sys

from modelops.devcluster.cluster import kubeconfig_path


def modelops(*args: str, user: str | None = None, groups: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    """The CLI as a person runs it, with the local cluster's kubeconfig in KUBECONFIG."""
    identity = [*(["--as", user] if user else []), *(a for g in groups for a in ("--as-group", g))]
    return subprocess.run(
        [sys.executable, "-m", "modelops.cli", *args, *identity],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "KUBECONFIG": str(kubeconfig_path()), "NO_COLOR": "1"},
    )
