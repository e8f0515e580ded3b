"""What the operator's administrator allows, and nothing a namespace user writes can widen: the Prometheus servers
it may query, the webhook receivers it may call, where each namespace's models may be stored, the Gateways of
other namespaces a deployment's route may attach to, and the keys whose signatures a served model needs.

The operator calls only these endpoints with its own identity; a spec naming any other is refused with a condition
that names the field, before a single request is sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

#: What `{namespace}` in an artifact prefix stands for.
NAMESPACE = "{namespace}"


@dataclass(frozen=True)
class Policy:
    #: Base URLs of the Prometheus servers specs may name (compared without a trailing slash).
    prometheus_urls: tuple[str, ...] = ()
    #: URL prefixes a webhook URL must start with, compared as scheme, host, port and path.
    webhook_prefixes: tuple[str, ...] = ()
    #: Storage URI prefixes, with `{namespace}` for the resource's namespace; none means any location.
    artifact_prefixes: tuple[str, ...] = ()
    #: Gateways (`namespace/name`) of other namespaces a deployment's HTTPRoute may name; its own namespace's always.
    gateway_parents: tuple[str, ...] = ()
    #: Public keys (PEM) by the names the administrator gave them: a version serves only if one of them signed it.
    trusted_keys: tuple[tuple[str, bytes], ...] = ()
    #: Whether a version without a signature may serve; None: only while no key is trusted.
    allow_unsigned: bool | None = None

    def unsigned_allowed(self) -> bool:
        return (not self.trusted_keys) if self.allow_unsigned is None else self.allow_unsigned

    def prometheus_allowed(self, url: str) -> bool:
        return url.rstrip("/") in {u.rstrip("/") for u in self.prometheus_urls}

    def webhook_allowed(self, url: str) -> bool:
        return any(_under(url, prefix) for prefix in self.webhook_prefixes)

    def artifact_allowed(self, uri: str, namespace: str) -> bool:
        if not self.artifact_prefixes:
            return True
        return any(_under(uri, p.replace(NAMESPACE, namespace)) for p in self.artifact_prefixes)

    def gateway_allowed(self, namespace: str, gateway_namespace: str, gateway: str) -> bool:
        """Whether a route of `namespace` may name this Gateway. The operator writes the route with its own rights,
        which a namespace user may lack: another team's Gateway must be one the administrator lists."""
        return gateway_namespace == namespace or f"{gateway_namespace}/{gateway}" in self.gateway_parents

    def artifact_locations(self, namespace: str) -> str:
        return ", ".join(p.replace(NAMESPACE, namespace) for p in self.artifact_prefixes)


def _under(url: str, prefix: str) -> bool:
    """Whether `url` lies under `prefix`: the same scheme, host and port, and a path inside the prefix's path
    (so `https://hooks.example.com` does not admit `https://hooks.example.com.evil.net`, nor `/a` admit `/ab`)."""
    try:
        candidate, allowed = urlsplit(url), urlsplit(prefix)
        if (candidate.scheme, candidate.hostname, candidate.port) != (allowed.scheme, allowed.hostname, allowed.port):
            return False
    except ValueError:  # a port that is no number
        return False
    folder = allowed.path if allowed.path.endswith("/") else allowed.path + "/"
    return candidate.path in (allowed.path, folder.rstrip("/")) or candidate.path.startswith(folder)


def parse_list(value: str) -> tuple[str, ...]:
    """A comma-separated setting (as the chart passes lists through the environment)."""
    return tuple(item.strip() for item in value.split(",") if item.strip())
