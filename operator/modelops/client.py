"""The command line's connection to the API server, as the person running it: their kubeconfig, context and
namespace (or an identity they impersonate, as with kubectl's --as), reads of our objects, who they are, and
an approver's patches (an approval, a rollout command). Whatever goes wrong comes back as a `KubeError` carrying the API server's own message, so
the CLI can print it instead of a traceback."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import urllib3
from kubernetes import client, config
from kubernetes.client.rest import ApiException
from kubernetes.config.config_exception import ConfigException

from modelops.api.v1alpha1 import GROUP, VERSION, CustomResource, ModelDeployment, ModelVersion
from modelops.api.v1alpha1.modeldeployment import (
    COMMAND_ANNOTATION,
    COMMAND_AT_ANNOTATION,
    COMMAND_BY_ANNOTATION,
    COMMAND_REASON_ANNOTATION,
)

FIELD_MANAGER = "modelops-cli"


class KubeError(Exception):
    """A refusal (RBAC, admission, validation) or a failure to connect, worded by the API server when it answered."""


class Client:
    """The API calls the CLI makes, in one namespace."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.api = api
        self.namespace = namespace
        self._objects = client.CustomObjectsApi(api)

    def get(self, kind: type[CustomResource], name: str) -> dict[str, Any] | None:
        """One object of our API, or None when there is none by that name."""
        try:
            return self._objects.get_namespaced_custom_object(GROUP, VERSION, self.namespace, kind.crd.plural, name)
        except ApiException as error:
            if error.status == 404:
                return None
            raise KubeError(server_message(error)) from None
        except urllib3.exceptions.HTTPError as error:
            raise self._unreachable(error) from None

    def list(self, kind: type[CustomResource]) -> list[dict[str, Any]]:
        """Every object of one of our kinds in the namespace."""
        try:
            found = self._objects.list_namespaced_custom_object(GROUP, VERSION, self.namespace, kind.crd.plural)
        except ApiException as error:
            raise KubeError(server_message(error)) from None
        except urllib3.exceptions.HTTPError as error:
            raise self._unreachable(error) from None
        items: list[dict[str, Any]] = found.get("items", [])
        return items

    def username(self) -> str:
        """Who the API server says the caller is (a SelfSubjectReview): the name an approval records.

        Asking the server, rather than reading the kubeconfig, is what makes `by` trustworthy: it is the identity
        RBAC and the approval policy judge, whatever the credentials are (certificate, token, OIDC, impersonation).
        """
        review = client.V1SelfSubjectReview(api_version="authentication.k8s.io/v1", kind="SelfSubjectReview")
        try:
            answer = client.AuthenticationV1Api(self.api).create_self_subject_review(review)
        except ApiException as error:
            raise KubeError(
                f"cannot tell who you are: the API server refused a SelfSubjectReview "
                f"(authentication.k8s.io/v1, Kubernetes 1.28 or later): {server_message(error)}"
            ) from None
        except urllib3.exceptions.HTTPError as error:
            raise self._unreachable(error) from None
        user = answer.status.user_info if answer.status else None
        if user is None or not user.username:
            raise KubeError("cannot tell who you are: the API server's SelfSubjectReview named no user")
        return user.username

    def set_approval(self, name: str, state: str, by: str, reason: str | None) -> dict[str, Any]:
        """Merge-patch spec.approval as a whole (a missing reason clears the previous one)."""
        body = {"spec": {"approval": {"state": state, "by": by, "reason": reason}}}
        return self._merge_patch(ModelVersion, name, body)

    def command_rollout(self, name: str, action: str, by: str, reason: str | None, at: str) -> dict[str, Any]:
        """Ask the operator to promote, abort or retry a deployment's rollout (the rollout-command annotations,
        which only approvers may set; the operator removes them once it has acted)."""
        annotations = {
            COMMAND_ANNOTATION: action,
            COMMAND_BY_ANNOTATION: by,
            COMMAND_REASON_ANNOTATION: reason or "",
            COMMAND_AT_ANNOTATION: at,
        }
        return self._merge_patch(ModelDeployment, name, {"metadata": {"annotations": annotations}})

    def _merge_patch(self, kind: type[CustomResource], name: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            return self._objects.patch_namespaced_custom_object(
                GROUP,
                VERSION,
                self.namespace,
                kind.crd.plural,
                name,
                body,
                field_manager=FIELD_MANAGER,
                _content_type="application/merge-patch+json",
            )
        except ApiException as error:
            if error.status == 404:
                raise KubeError(f"{kind.crd.kind.lower()} {name!r} not found in namespace {self.namespace}") from None
            raise KubeError(server_message(error)) from None
        except urllib3.exceptions.HTTPError as error:
            raise self._unreachable(error) from None

    def _unreachable(self, error: Exception) -> KubeError:
        reason = getattr(error, "reason", None) or error
        return KubeError(f"cannot reach the API server at {self.api.configuration.host}: {reason}")


def connect(
    kubeconfig: str | None = None,
    context: str | None = None,
    namespace: str | None = None,
    as_user: str | None = None,
    as_groups: Sequence[str] = (),
) -> Client:
    """A client from the kubeconfig (the path given, else $KUBECONFIG, else ~/.kube/config), like kubectl's.

    The namespace defaults to the context's namespace, else `default`. The Python client ignores a kubeconfig's
    `as`/`as-groups`, hence the explicit `as_user`/`as_groups` (kubectl's --as/--as-group).
    """
    if as_groups and not as_user:
        raise KubeError("--as-group needs --as: the API server impersonates groups only together with a user")
    try:
        api = config.new_client_from_config(config_file=kubeconfig, context=context, persist_config=False)
        if namespace is None:
            contexts, active = config.list_kube_config_contexts(config_file=kubeconfig)
            chosen = next((c for c in contexts if c["name"] == context), None) if context else active
            namespace = ((chosen or {}).get("context") or {}).get("namespace") or "default"
    except (ConfigException, OSError) as error:
        raise KubeError(f"kubeconfig: {error}") from None
    if as_user:
        impersonate(api, as_user, as_groups)
    return Client(api, namespace)


def impersonate(api: client.ApiClient, user: str, groups: Sequence[str] = ()) -> None:
    """Send every request as `user` in `groups` (the caller needs the `impersonate` verb, as with kubectl --as).

    The API server reads one group per Impersonate-Group header line, and the ApiClient's default headers hold
    one value per name, so the groups are added as separate lines on the way out.
    """
    api.set_default_header("Impersonate-User", user)
    if not groups:
        return
    pool = api.rest_client.pool_manager
    send = pool.request

    def request(method: str, url: str, *args: Any, headers: Any = None, **kwargs: Any) -> Any:
        lines = urllib3.HTTPHeaderDict(headers or {})
        for group in groups:
            lines.add("Impersonate-Group", group)
        return send(method, url, *args, headers=lines, **kwargs)

    pool.request = request


def server_message(error: ApiException) -> str:
    """The `message` of the Status the API server answered with, else its HTTP status line."""
    try:
        message = json.loads(error.body or "").get("message")
    except (ValueError, AttributeError):
        message = None
    return message or f"{error.status} {error.reason}".strip()
