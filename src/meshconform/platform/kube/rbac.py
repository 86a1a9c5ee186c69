"""What the kubeconfig's user must be allowed on a cluster meshconform does not own (`--platform cluster`), as data:
the README's table and the preflight's SelfSubjectAccessReviews (authorization.k8s.io/v1) both come from here, so
a vendor learns every missing permission before anything is created, each named with why it is needed.

All cluster-wide: the run creates namespaces of its own (mc-<run>-*), whose names no Role could know beforehand."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

EDIT = ("get", "list", "watch", "patch", "delete")  # server-side apply is a PATCH


@dataclass(frozen=True)
class Permission:
    verbs: tuple[str, ...]
    group: str  # "" = the core API group
    resource: str
    subresource: str = ""
    why: str = ""

    def name(self, verb: str) -> str:
        what = f"{self.group}/{self.resource}" if self.group else self.resource
        return f"{verb} {what}{'/' + self.subresource if self.subresource else ''}"


NEEDED = (
    Permission(("get", "list", "create", "patch", "delete"), "", "namespaces", why="the run's own namespaces"),
    Permission(EDIT, "", "services", why="Bookinfo and the testbed"),
    Permission(EDIT, "", "serviceaccounts", why="Bookinfo and the testbed (identities)"),
    Permission(EDIT, "", "configmaps", why="the testbed agent's code"),
    Permission(EDIT, "", "secrets", why="gateway TLS credentials (diagnostics list names and sizes only)"),
    Permission(EDIT, "apps", "deployments", why="Bookinfo and the testbed; istiod's version"),
    Permission(("get", "list", "watch"), "", "pods", why="readiness, workloads, the proxies in use"),
    Permission(("list",), "", "events", why="why a pod is not ready"),
    Permission(("get",), "", "pods", "log", why="request and access logs"),
    Permission(("create",), "", "pods", "exec", why="a failing check's proxy config (pilot-agent request GET "
                                                    "config_dump)"),
    Permission(EDIT, "networking.istio.io", "virtualservices", why="the checks' config; the mesh as found"),
    Permission(EDIT, "networking.istio.io", "destinationrules", why="the checks' config; the mesh as found"),
    Permission(EDIT, "networking.istio.io", "gateways", why="the checks' config; the mesh as found"),
    Permission(EDIT, "networking.istio.io", "serviceentries", why="the checks' config; the mesh as found"),
    Permission(EDIT, "networking.istio.io", "sidecars", why="the checks' config; the mesh as found"),
    Permission(("list",), "networking.istio.io", "envoyfilters", why="the mesh as found"),
    Permission(EDIT, "security.istio.io", "peerauthentications", why="the checks' config; the mesh as found"),
    Permission(EDIT, "security.istio.io", "authorizationpolicies", why="the checks' config; the mesh as found"),
    Permission(EDIT, "security.istio.io", "requestauthentications", why="the checks' config; the mesh as found"),
    Permission(("list",), "telemetry.istio.io", "telemetries", why="the mesh as found"),
    Permission(EDIT, "gateway.networking.k8s.io", "gateways", why="the Gateway API checks"),
    Permission(EDIT, "gateway.networking.k8s.io", "httproutes", why="the Gateway API checks"),
    Permission(("get",), "apiextensions.k8s.io", "customresourcedefinitions", why="which Gateway API CRDs exist"),
)
# Reaching pods: the agent through the API server's pod proxy, or else (and the ingress without a LoadBalancer) a
# port-forward. At least one of the two; both is best (the run decides once which one works).
REACH = (Permission(("create",), "", "pods", "proxy", why="the testbed agent's batches through the API server"),
         Permission(("create",), "", "pods", "portforward",
                    why="the ingress without a LoadBalancer address; the agent where the pod proxy cannot reach pods"))
# meshconform installing Istio itself (`--install istioctl|helm`) creates CRDs, webhooks and cluster roles.
INSTALL = Permission(("*",), "*", "*", why="installing Istio (--install istioctl|helm) needs cluster-admin")
PERF = Permission(("get",), "", "nodes", "proxy", why="meshconform perf: the proxies' CPU and memory from the kubelet")


def checks(install: str) -> list[tuple[Permission, str]]:
    """(permission, verb) pairs the preflight asks about for this install method (REACH separately)."""
    wanted = [(p, verb) for p in NEEDED for verb in p.verbs]
    if install in ("istioctl", "helm"):
        wanted.append((INSTALL, "*"))
    return wanted


def table(permissions: Iterable[Permission] = (*NEEDED, *REACH, INSTALL, PERF)) -> list[str]:
    """One line per permission, as the README lists them."""
    return [f"{p.group or '(core)'} | {p.resource}{'/' + p.subresource if p.subresource else ''} | "
            f"{', '.join(p.verbs)} | {p.why}" for p in permissions]
