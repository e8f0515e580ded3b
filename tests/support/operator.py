"""The operator as the tests run it: `modelops run` in a process of its own, told what the chart would tell it."""

from __future__ import annotations

import pytest

from modelops.devcluster.operator import Operator


def operator_environment(image: str) -> dict[str, str]:
    """What every operator the tests start is told: the runtime image its Jobs and servers run."""
    return {"MODELOPS_RUNTIME_IMAGE": image}


def allowed_by_administrator(request: pytest.FixtureRequest) -> dict[str, str]:
    """What the chart's administrator would allow the operator for this test: the Prometheus and the webhook
    receiver the test itself runs, the Gateways its `gateway_parents` names, the public keys in its `trusted_keys`
    folder, the audit store its `audit_log` names (ask for those fixtures before `operator`), and nothing else."""
    allowed = {}
    if "prometheus" in request.fixturenames:
        allowed["MODELOPS_PROMETHEUS_URLS"] = request.getfixturevalue("prometheus").url
    if "sink" in request.fixturenames:
        allowed["MODELOPS_WEBHOOK_URL_PREFIXES"] = request.getfixturevalue("sink").prefix
    if "gateway_parents" in request.fixturenames:
        allowed["MODELOPS_GATEWAY_PARENTS"] = request.getfixturevalue("gateway_parents")
    if "trusted_keys" in request.fixturenames:
        allowed["MODELOPS_TRUSTED_KEYS_DIR"] = request.getfixturevalue("trusted_keys")
    if "audit_log" in request.fixturenames:
        allowed.update(request.getfixturevalue("audit_log"))
    return allowed


__all__ = ["Operator", "allowed_by_administrator", "operator_environment"]
