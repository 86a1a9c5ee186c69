"""The two read-only questions this package asks a cluster's API server itself, through the official
`kubernetes` client (the Kubernetes platform's pinned dependency): its version (GET /version: is it
reachable as configured?) and which istiod Deployments exist, ready or not (GET
/apis/apps/v1/deployments?labelSelector=app=istiod), because `istioctl version` only sees ready pods and
an installer must never overwrite a control plane that is merely not ready yet."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from meshconform.errors import PlatformError
from meshconform.platform.kind.timeouts import TIMEOUTS
from meshconform.platform.kube.contracts import ClusterAccess


class Unreachable(PlatformError):
    """The API server did not answer as the kubeconfig says it should."""


@contextmanager
def _api(access: ClusterAccess) -> Iterator[Any]:
    try:
        from kubernetes import config
    except ImportError:
        raise PlatformError("the kubernetes Python client is not installed: pip install 'kubernetes>=37,<38'") \
            from None
    # through getattr: the client is untyped, and absent from some type-checking environments
    new_client = getattr(config, "new_client_from_config")  # noqa: B009
    api = new_client(config_file=str(access.kubeconfig), context=access.context, persist_config=False)
    with api:
        yield api


def server_version(access: ClusterAccess, server: str = "") -> str:
    """The API server's gitVersion (e.g. v1.36.4), or `Unreachable` naming the context and server."""
    try:
        from kubernetes import client
        with _api(access) as api:
            info = client.VersionApi(api).get_code(_request_timeout=TIMEOUTS.cluster_probe)
    except PlatformError:
        raise
    except Exception as exc:  # connection refused, TLS, auth, timeout: all mean "not reachable as given"
        raise Unreachable(f"cannot reach the cluster of context {access.context!r} ({server or 'no server'}) within "
                          f"{TIMEOUTS.cluster_probe:g} s: {type(exc).__name__}: {str(exc)[:300]}. Check that the "
                          "cluster is running and the kubeconfig's credentials are valid") from None
    return str(getattr(info, "git_version", "") or "")


def istiod_deployments(access: ClusterAccess) -> list[dict[str, str]] | None:
    """Every Deployment labelled app=istiod (all namespaces): namespace, name, revision, image, ready
    replicas. None if the API cannot be asked (then only `istioctl version` decides)."""
    try:
        from kubernetes import client
        with _api(access) as api:
            found: Any = client.AppsV1Api(api).list_deployment_for_all_namespaces(
                label_selector="app=istiod", _request_timeout=TIMEOUTS.cluster_probe)
    except Exception:  # noqa: BLE001 (best effort: an answer we cannot get is "unknown", not "none")
        return None
    listed = []
    for item in found.items or []:
        meta = item.metadata
        containers = item.spec.template.spec.containers if item.spec and item.spec.template.spec else []
        listed.append({"namespace": str(meta.namespace), "name": str(meta.name),
                       "revision": str((meta.labels or {}).get("istio.io/rev", "default")),
                       "image": str(containers[0].image if containers else ""),
                       "ready": str((item.status.ready_replicas if item.status else 0) or 0)})
    return listed


def denied(access: ClusterAccess, asked: list[tuple[str, str, str, str]]) -> list[tuple[str, str, str, str]]:
    """Which (verb, group, resource, subresource) the kubeconfig's user may NOT do, cluster-wide: one
    SelfSubjectAccessReview each (POST /apis/authorization.k8s.io/v1/selfsubjectaccessreviews), a few at a time."""
    from concurrent.futures import ThreadPoolExecutor

    from kubernetes import client
    with _api(access) as api:
        authorization = client.AuthorizationV1Api(api)

        def allowed(item: tuple[str, str, str, str]) -> bool:
            verb, group, resource, subresource = item
            review = client.V1SelfSubjectAccessReview(spec=client.V1SelfSubjectAccessReviewSpec(
                resource_attributes=client.V1ResourceAttributes(verb=verb, group=group, resource=resource,
                                                                subresource=subresource or None)))
            try:
                answer: Any = authorization.create_self_subject_access_review(
                    body=review, _request_timeout=TIMEOUTS.cluster_probe)
            except Exception as exc:  # noqa: BLE001 (the review itself refused: say so once)
                raise Unreachable(f"cannot ask the cluster what the kubeconfig's user may do "
                                  f"(SelfSubjectAccessReview): {type(exc).__name__}: {str(exc)[:300]}") from None
            return bool(answer.status and answer.status.allowed)
        with ThreadPoolExecutor(max_workers=8) as pool:
            answers = list(pool.map(allowed, asked))
    return [item for item, ok in zip(asked, answers, strict=True) if not ok]
