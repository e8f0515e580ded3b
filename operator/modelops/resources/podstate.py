"""What a pod's container statuses say about why it does not run, in the words the kubelet or the container left."""

from __future__ import annotations

from typing import Any

#: Container states that do not end by themselves: the pod needs a change (its image, a Secret, its model file).
STUCK = frozenset(
    {"CrashLoopBackOff", "CreateContainerConfigError", "CreateContainerError", "ErrImagePull", "ImagePullBackOff"}
)
LIMIT = 1024


def _containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    return (pod.get("status") or {}).get("containerStatuses") or []


def stuck(pod: dict[str, Any]) -> str | None:
    """A container waiting for what only a person can fix (`CreateContainerConfigError: secret "salt" not found`)."""
    for container in _containers(pod):
        waiting = (container.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") in STUCK and waiting["reason"] != "CrashLoopBackOff":
            return f"{waiting['reason']}: {waiting.get('message', '')}".strip()[:LIMIT]
    return None


def crashed(pod: dict[str, Any]) -> str | None:
    """A container that exited with an error and said why (its termination message), or that crash-loops."""
    for container in _containers(pod):
        state, last = container.get("state") or {}, container.get("lastState") or {}
        terminated = state.get("terminated") or last.get("terminated") or {}
        said = (terminated.get("message") or "").strip()
        looping = ((state.get("waiting") or {}).get("reason")) == "CrashLoopBackOff"
        if terminated.get("exitCode") and (said or looping):
            return (said or f"exited with {terminated['exitCode']} ({terminated.get('reason', 'Error')})")[:LIMIT]
    return None


def failure(pods: list[dict[str, Any]]) -> str | None:
    """The first pod's reason for not running, naming the pod."""
    for pod in pods:
        why = stuck(pod) or crashed(pod)
        if why:
            return f"pod {pod['metadata']['name']}: {why}"
    return None
