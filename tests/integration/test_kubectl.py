"""What a user sees with kubectl: the category, printer columns, explain, scale."""

from __future__ import annotations

from tests.support.kube import Kubectl
from tests.support.manifests import MODEL_VERSION
from tests.support.paths import ROOT


def test_get_modelops_lists_the_four_kinds_with_their_columns(kubectl: Kubectl) -> None:
    kubectl.run("apply", "-f", str(ROOT / "examples"))
    kubectl.apply(MODEL_VERSION)
    table = kubectl.run("get", "modelops").stdout
    headers = [line.split() for line in table.splitlines() if line.startswith("NAME")]
    assert sorted(headers) == sorted(
        [
            ["NAME", "MODEL", "PHASE", "VERSION", "AGE"],
            ["NAME", "MODEL", "VERSION", "STAGE", "APPROVED-BY", "AGE"],
            ["NAME", "MODEL", "VERSION", "READY", "REPLICAS", "ROLLOUT", "AGE"],
            ["NAME", "DEPLOYMENT", "DRIFT", "DEGRADED", "ESTIMATED", "REALIZED", "ERROR-RATE", "LAST-CHECK", "AGE"],
        ]
    )
    assert "modelversion.modelops.io/breast-cancer-v1   breast-cancer   1" in table
    wide = kubectl.run("get", "mv,md", "-o", "wide").stdout
    wide_headers = [line.split() for line in wide.splitlines() if line.startswith("NAME")]
    assert ["NAME", "MODEL", "VERSION", "STAGE", "APPROVED-BY", "BUILD", "DATASET", "DIGEST", "AGE"] in wide_headers
    assert [
        "NAME",
        "MODEL",
        "VERSION",
        "READY",
        "REPLICAS",
        "ROLLOUT",
        "CANARY",
        "WEIGHT",
        "ENDPOINT",
        "DECISION",
        "AGE",
    ] in wide_headers
    monitor = kubectl.run("get", "mm", "-o", "wide").stdout.splitlines()[0].split()
    assert monitor[:6] == ["NAME", "DEPLOYMENT", "DRIFT", "DEGRADED", "ESTIMATED", "REALIZED"] and "METRIC" in monitor
    short = kubectl.run("get", "mb,mv,md,mm", "-o", "name").stdout.split()
    assert len(short) == 4


def test_explain_prints_the_descriptions(kubectl: Kubectl) -> None:
    text = " ".join(kubectl.run("explain", "modeldeployment.spec").stdout.split())  # explain wraps lines
    assert "Which version to serve and how." in text
    assert "Omit to follow the latest Approved version." in text
    rollout = " ".join(kubectl.run("explain", "md.spec.rollout.canary.analysis.maxErrorRate").stdout.split())
    assert "Largest share of failed requests tolerated." in rollout


def test_scale_subresource(kubectl: Kubectl) -> None:
    kubectl.run("apply", "-f", str(ROOT / "examples" / "02-modeldeployment.yaml"))
    assert "scaled" in kubectl.run("scale", "md/breast-cancer", "--replicas=3").stdout
    assert kubectl.get("md", "breast-cancer")["spec"]["replicas"] == 3
    scale = kubectl.get("--subresource=scale", "md", "breast-cancer")
    assert scale["kind"] == "Scale" and scale["spec"]["replicas"] == 3
