"""Everything perf needs from the platform, in one place: attach to the platform that is up (or
bring one up and take it down afterwards), make sure Bookinfo is reachable through the ingress,
deploy the no-mesh copy of Bookinfo (a namespace without injection) for the mesh cost, apply the
user's extra resources for the run, name the load targets, and read proxy resource use.

It creates only objects with names of its own (or the user's files for this run) and deletes
exactly those afterwards, also on Ctrl-C."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
import yaml

from meshconform import runs
from meshconform.errors import PlatformError
from meshconform.meshapi.loader import Sourced, load_files, load_text
from meshconform.perf.spec import Target
from meshconform.platform import registry
from meshconform.platform.api import Platform, ProxyUsage, SupportsLoad

PLAIN_NAMESPACE = "meshconform-perf-nomesh"
PROBE_TIMEOUT_S = 10.0
INGRESS_ROUTE = """apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: meshconform-perf-gateway, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers: [{port: {number: 8080, name: http, protocol: HTTP}, hosts: ['*']}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: meshconform-perf-bookinfo, namespace: default}
spec:
  hosts: ['*']
  gateways: [meshconform-perf-gateway]
  http:
  - match: [{uri: {exact: /productpage}}, {uri: {exact: /login}}, {uri: {exact: /logout}},
            {uri: {prefix: /api/v1/products}}, {uri: {prefix: /static}}]
    route: [{destination: {host: productpage, port: {number: 9080}}}]
"""


@dataclass
class PerfPlatform:
    platform: Platform
    load: SupportsLoad
    started_here: bool
    targets: dict[str, Target] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        return self.platform.describe()

    def proxy_usage(self) -> dict[str, ProxyUsage]:
        return self.load.proxy_usage()


def plain_bookinfo() -> list[Sourced]:
    """Bookinfo's own manifests, moved to a namespace without injection (the 'no mesh' twin)."""
    from meshconform import bookinfo  # mapped from bookinfo/ at install
    source = Path(bookinfo.__file__).parent / "manifests" / "bookinfo.yaml"
    documents = [d for d in yaml.safe_load_all(source.read_text()) if d]
    for document in documents:
        document["metadata"]["namespace"] = PLAIN_NAMESPACE
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": PLAIN_NAMESPACE}}
    return load_text(yaml.safe_dump_all([namespace, *documents]), f"meshconform.perf:{PLAIN_NAMESPACE}")


def _delete(platform: Platform, created: list[Sourced]) -> None:
    if created:
        platform.delete(created, ignore_missing=True)


def _routed(ingress: str) -> bool:
    try:
        return requests.get(f"{ingress}/productpage", timeout=PROBE_TIMEOUT_S).status_code == 200
    except requests.RequestException:
        return False


def _up_or_new(run_dir: Path, cleanup: ExitStack, platform_name: str) -> tuple[Platform, bool]:
    """The platform that is up (through the registry), else a new one of `platform_name`, taken down at the end."""
    active = runs.read_active()
    if active is not None and registry.owner_of(active.folder) is not None:
        try:
            platform = registry.attach(active.folder, expect=active.platform)
        except PlatformError:
            pass  # recorded, but no longer running
        else:
            cleanup.callback(platform.detach)
            return platform, False
    kind = registry.get(platform_name)
    settings = kind.settings({})
    if kind.preflight is not None:
        kind.preflight(settings)
    platform = registry.create(kind, registry.PlatformContext(run_dir / "platform", run_dir, "main", settings))
    cleanup.callback(platform.down)
    platform.up()
    return platform, True


@contextmanager
def attached(run_dir: Path, mesh_cost: bool, extra_files: Sequence[Path] = (),
             platform_name: str = "local") -> Iterator[PerfPlatform]:
    """The platform that is up (else one brought up for this run), prepared for perf; cleaned up on exit."""
    extra = load_files(list(extra_files))  # validate before touching anything
    with ExitStack() as cleanup:
        platform, started_here = _up_or_new(run_dir, cleanup, platform_name)
        if not isinstance(platform, SupportsLoad):
            raise PlatformError(f"the {platform.name} platform does not offer load targets yet "
                                "(perf needs load_targets and proxy_usage, see platform/api.py SupportsLoad)")
        created: list[Sourced] = []
        if not started_here:  # a platform we brought up goes down whole; one we found keeps only its own
            cleanup.callback(_delete, platform, created)
        if not _routed(platform.endpoint.http):
            route = load_text(INGRESS_ROUTE, "meshconform.perf:ingress-route")
            created.extend(route)
            platform.apply(route)
        if mesh_cost:
            plain = plain_bookinfo()
            created.extend(plain)
            platform.apply(plain)
        if extra:
            created.extend(extra)
            platform.apply(extra)
        if not _routed(platform.endpoint.http):
            raise PlatformError("Bookinfo's /productpage does not answer 200 through the ingress "
                                f"{platform.endpoint.http}")
        found = platform.load_targets("productpage", 9080, PLAIN_NAMESPACE if mesh_cost else None)
        perf = PerfPlatform(platform, platform, started_here,
                            {name: Target(t.name, t.base_url, t.host) for name, t in found.items()})
        yield perf
