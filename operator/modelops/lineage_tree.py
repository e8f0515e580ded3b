"""`modelops lineage` for people: a lineage (resources/lineage.py) as a rich tree, the object on top, each served
version below it with where it came from."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.markup import escape
from rich.tree import Tree

from modelops.resources.lineage import (
    ApprovalInfo,
    BuildLineage,
    BuildRef,
    DeploymentLineage,
    Lineage,
    PerformanceSeen,
    VersionLineage,
)


def tree(lineage: Lineage) -> Tree:
    """A rich tree for a terminal: the object on top, each served version below it, each with its sources."""
    if isinstance(lineage, DeploymentLineage):
        return _deployment_tree(lineage)
    if isinstance(lineage, BuildLineage):
        return _build_tree(lineage)
    return _version_tree(lineage)


def _deployment_tree(md: DeploymentLineage) -> Tree:
    health = {True: "[green]Ready[/]", False: "[red]Not ready[/]", None: "[yellow]Ready unknown[/]"}[md.ready]
    replicas = f"{md.ready_replicas or 0}/{md.replicas} replicas" if md.replicas is not None else "no replicas yet"
    rollout = f"rollout {md.rollout_phase}" if md.rollout_phase else "no rollout yet"
    if md.canary_weight is not None:
        rollout += f", canary at {md.canary_weight}%"
    where = f" (namespace {md.namespace})" if md.namespace else ""
    root = Tree(f"[bold]ModelDeployment {escape(md.name)}[/]{escape(where)}: {health}, {replicas}, {escape(rollout)}")
    root.add(f"model: {escape(md.model)}")
    if md.endpoint:
        root.add(f"endpoint: {escape(md.endpoint)}")
    if md.ready is not True and md.ready_message:
        root.add(f"[yellow]{escape(md.ready_reason or 'Ready')}[/]: {escape(md.ready_message)}")
    if md.last_decision:
        decision = root.add(f"last decision: {escape(md.last_decision)}")
        for gate in md.decision_gates:
            decision.add(escape(gate))
    if not md.versions:
        root.add("[yellow]serving no version yet[/]")
    root.children.extend(_version_tree(version) for version in md.versions)
    return root


def _version_tree(mv: VersionLineage) -> Tree:
    track = f"{mv.track} " if mv.track else ""
    number = f" (v{mv.version})" if mv.version is not None else ""
    if not mv.found:
        return Tree(f"[bold]{track}ModelVersion {escape(mv.name)}[/]{number}: [red]missing (deleted?)[/]")
    node = Tree(f"[bold]{track}ModelVersion {escape(mv.name)}[/]{number}: stage {escape(mv.stage or 'unknown')}")
    if mv.approval is not None:
        node.add(f"approval: {_approval(mv.approval)}")
    node.add(f"artifact: {escape(mv.artifact_uri or '-')} {escape(mv.artifact_digest or '')}".rstrip())
    node.add(f"framework: {escape(mv.framework or '-')}")
    node.add(f"metrics: {escape(_metrics(mv.metrics))}")
    node.add(f"dataset: {escape(mv.dataset_uri or 'unknown')} {escape(mv.dataset_digest or '')}".rstrip())
    node.add(f"trainer: {escape(mv.trainer_image or 'unknown image')}")
    node.add(f"estimator: {escape(mv.estimator or 'unknown')} {escape(_params(mv.params))}".rstrip())
    node.add(f"build: {_build_ref(mv.build)}")
    if mv.signature:
        node.add(f"signature: {escape(mv.signature)}")
    if mv.provenance_uri:
        node.add(f"provenance: {escape(mv.provenance_uri)}")
    for seen in mv.performance:
        node.add(f"performance ({escape(seen.monitor)}): {escape(_performance(seen))}")
    return node


def _performance(seen: PerformanceSeen) -> str:
    """`accuracy: held-out 0.912, estimated 0.679 (150 records), realized 0.507 (150 labels): Degraded`."""

    def number(value: float | None, count: int | None, unit: str) -> str:
        if value is None:
            return "-"
        return f"{value:.3f}" + (f" ({count} {unit})" if count is not None else "")

    return (
        f"{seen.metric}: held-out {number(seen.holdout, None, '')}, estimated {number(seen.estimated, seen.records, 'records')}, "
        f"realized {number(seen.realized, seen.labels, 'labels')}: {seen.verdict}"
    )


def _build_tree(mb: BuildLineage) -> Tree:
    where = f" (namespace {mb.namespace})" if mb.namespace else ""
    phase = mb.phase or "not started"
    if mb.failure_reason:
        phase += f": {mb.failure_reason}"
    root = Tree(f"[bold]ModelBuild {escape(mb.name)}[/]{escape(where)}: {escape(phase)}")
    root.add(f"model: {escape(mb.model)}")
    root.add(f"dataset: {escape(mb.dataset_uri)} {escape(mb.dataset_digest or '')}".rstrip())
    root.add(f"trainer: {escape(mb.trainer_image or 'the default runtime image')}")
    root.add(f"estimator: {escape(mb.estimator or 'unknown')} {escape(_params(mb.params))}".rstrip())
    if mb.metrics:
        root.add(f"metrics: {escape(_metrics(mb.metrics))}")
    if mb.version is None:
        root.add("produced no version yet")
    else:
        root.children.append(_version_tree(mb.version))
    return root


def _approval(approval: ApprovalInfo) -> str:
    colour = {"Approved": "green", "Rejected": "red"}.get(approval.state, "yellow")
    text = f"[{colour}]{approval.state}[/]"
    if approval.by:
        text += f" by [bold]{escape(approval.by)}[/]"
    if approval.time:
        text += f" at {approval.time.isoformat()}"
    if approval.reason:
        text += f": {escape(approval.reason)}"
    return text


def _build_ref(build: BuildRef | None) -> str:
    if build is None or build.name is None:
        return "[yellow]not recorded[/]"
    if not build.exists:
        return f"{escape(build.name)} [yellow](deleted)[/]"
    return f"{escape(build.name)} ({escape(build.phase or 'phase unknown')})"


def _metrics(metrics: Mapping[str, float]) -> str:
    return ", ".join(f"{k}={v:.4g}" for k, v in metrics.items()) or "none recorded"


def _params(params: Mapping[str, Any]) -> str:
    return "(" + ", ".join(f"{k}={v!r}" for k, v in params.items()) + ")" if params else ""
