"""The pinned-binary build: its recipe and its answer when Go is missing."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelops.devcluster import toolchain

KUBERNETES_GO_MOD = """module k8s.io/kubernetes

require (
\tk8s.io/api v0.0.0
\tgo.etcd.io/etcd/server/v3 v3.6.4 // indirect
)

replace (
\tk8s.io/api => ./staging/src/k8s.io/api
\tk8s.io/apiextensions-apiserver => ./staging/src/k8s.io/apiextensions-apiserver
\tk8s.io/cri-api => ./staging/src/k8s.io/cri-api
)
"""


def test_wrapper_module_replaces_every_staging_module_with_its_v0_twin() -> None:
    staging = toolchain.staging_modules(KUBERNETES_GO_MOD)
    assert staging == ["k8s.io/api", "k8s.io/apiextensions-apiserver", "k8s.io/cri-api"]
    go_mod = toolchain.wrapper_go_mod("1.34.4", staging, coredns_version="1.13.2")
    assert "\tk8s.io/kubernetes v1.34.4\n" in go_mod and "\tgithub.com/coredns/coredns v1.13.2\n" in go_mod
    assert "\tk8s.io/apiextensions-apiserver => k8s.io/apiextensions-apiserver v0.34.4" in go_mod


def test_version_is_stamped_for_clients_and_servers() -> None:
    flags = toolchain.version_ldflags("1.34.4")
    assert "-X k8s.io/component-base/version.gitVersion=v1.34.4" in flags
    assert "-X k8s.io/client-go/pkg/version.gitMinor=34" in flags


def test_missing_go_gives_a_clear_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELOPS_CACHE", str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing on PATH, so no `go`
    with pytest.raises(toolchain.ToolchainError, match=r"`go` was not found on PATH.*install Go 1\.24"):
        toolchain.ensure_toolchain(log=lambda _: None)
