"""Everything perf needs from the platform, in one place: attach to the platform that is up (or bring
one of the chosen kind up and take it down afterwards), choose the phases it can run, make sure Bookinfo
is reachable through the ingress, deploy the no-mesh copy of Bookinfo (a namespace without injection) for
the mesh cost, apply the user's extra resources for the run, name the load targets (each answering before
load starts), and read proxy resource use.

It creates only objects with names of its own (or the user's files for this run) and deletes
exactly those afterwards, also on Ctrl-C."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import requests
import yaml

from meshconform import runs
from meshconform.errors import PlatformError
from meshconform.meshapi.loader import Sourced, load_files, load_text
from meshconform.perf.phases import NEEDS, PHASES, Choice, check_offered, choose
from meshconform.perf.spec import Target
from meshconform.platform import registry
from meshconform.platform.api import INGRESS, LOAD_TARGETS, Platform, ProxyUsage, SupportsLoad
from meshconform.platform.session import PlatformChoice, PlatformSession, attach_recorded

PLAIN_NAMESPACE = "meshconform-perf-nomesh"
PROBE_TIMEOUT_S = 10.0  # one probe request
ROUTE_DEADLINE_S = 120.0  # until a target answers: a gateway route or a NodePort takes a moment on a cluster
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
    phases: Choice = field(default_factory=lambda: Choice(list(PHASES)))

    def describe(self) -> dict[str, Any]:
        return self.platform.describe()

    def proxy_usage(self) -> dict[str, ProxyUsage]:
        return self.load.proxy_usage()


def plain_bookinfo() -> list[Sourced]:
    """Bookinfo's own manifests, moved to a namespace without injection (the 'no mesh' twin). The namespace says
    `istio-injection: disabled` (Istio's documented opt-out) rather than carrying no label, so a mesh installed to
    inject every namespace by default (enableNamespacesByDefault) leaves it alone too."""
    source = Path(str(resources.files("meshconform.bookinfo"))) / "manifests" / "bookinfo.yaml"
    documents = [d for d in yaml.safe_load_all(source.read_text()) if d]
    for document in documents:
        document["metadata"]["namespace"] = PLAIN_NAMESPACE
    namespace = {"apiVersion": "v1", "kind": "Namespace",
                 "metadata": {"name": PLAIN_NAMESPACE, "labels": {"istio-injection": "disabled"}}}
    return load_text(yaml.safe_dump_all([namespace, *documents]), f"meshconform.perf:{PLAIN_NAMESPACE}")


def _delete(platform: Platform, created: list[Sourced]) -> None:
    if created:
        platform.delete(created, ignore_missing=True)


def _answers(url: str, host: str | None = None) -> bool:
    try:
        headers = {"Host": host} if host else {}
        return requests.get(f"{url}/productpage", headers=headers, timeout=PROBE_TIMEOUT_S).status_code == 200
    except requests.RequestException:
        return False


def _wait_answering(url: str, host: str | None, what: str, deadline_s: float = ROUTE_DEADLINE_S) -> None:
    """Until GET /productpage through `url` answers 200 (routes, NodePorts and endpoints take a moment on a
    cluster), backing off; a clear error at the deadline."""
    deadline = time.monotonic() + deadline_s
    pause = 0.2
    while not _answers(url, host):
        if time.monotonic() >= deadline:
            raise PlatformError(f"Bookinfo's /productpage does not answer 200 through {what} {url} "
                                f"within {deadline_s:.0f}s")
        time.sleep(pause)
        pause = min(pause * 2, 2.0)


def _found_or_created(run_dir: Path, platform_name: str | None, settings: Mapping[str, Any] | None
                      ) -> PlatformSession:
    """A session holding the platform that is up (through the registry; it must be `platform_name` if one is named),
    else a new one of `platform_name` (default local) with `settings`, created but not yet up."""
    active = runs.read_active()
    if active is not None and registry.owner_of(active.folder) is not None:
        if platform_name is not None and platform_name != active.platform:
            raise PlatformError(f"the platform that is up is {active.platform!r} (in {active.folder}), not "
                                f"{platform_name!r}: take it down first ('meshconform down') or drop --platform")
        try:
            found = attach_recorded(active.folder, expect=active.platform)
        except PlatformError:
            pass  # recorded, but no longer running
        else:
            if settings:
                found.close()
                raise PlatformError(f"the {active.platform} platform is already up (in {active.folder}): its options "
                                    f"({', '.join('--' + k.replace('_', '-') for k in settings)}) apply only when "
                                    "perf brings a platform up")
            return found
    session = PlatformSession(PlatformChoice.of(platform_name or "local", settings or {}))
    session.create(run_dir / "platform", run_dir)  # preflight first
    return session


@contextmanager
def attached(run_dir: Path, requested_phases: list[str] | None, extra_files: Sequence[Path] = (),
             platform_name: str | None = None, settings: Mapping[str, Any] | None = None) -> Iterator[PerfPlatform]:
    """The platform that is up (else one brought up for this run), prepared for perf; cleaned up on exit.
    `requested_phases`: --phases, or None for every phase the platform offers (see phases.py); a phase the
    platform cannot run is refused before anything is brought up."""
    extra = load_files(list(extra_files))  # validate before touching anything
    with ExitStack() as cleanup:
        session = _found_or_created(run_dir, platform_name, settings)
        platform, started_here = session.platform_attached(), session.created
        cleanup.callback(session.close)  # down what perf brought up, detach from what it found
        if not isinstance(platform, SupportsLoad):
            raise PlatformError(f"the {platform.name} platform does not offer load targets "
                                "(perf needs load_targets, unavailable_load_targets and proxy_usage, see "
                                "platform/api.py SupportsLoad)")
        choice = choose(requested_phases, platform.unavailable_load_targets(), platform.name)
        if started_here:
            platform.up()
        # What the running platform lacks (e.g. a reused kind cluster without perf's port mappings): refused now,
        # before minutes of applying Bookinfo's twin.
        missing = platform.unavailable_load_targets()
        check_offered(choice, {t: True for t in LOAD_TARGETS if t not in missing}, missing, platform.name)
        mesh_cost = "mesh-cost" in choice.run
        created: list[Sourced] = []
        if not started_here:  # a platform we brought up goes down whole; one we found keeps only its own
            cleanup.callback(_delete, platform, created)
        if not _answers(platform.endpoint.http):
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
        _wait_answering(platform.endpoint.http, None, "the ingress")
        found = platform.load_targets("productpage", 9080, PLAIN_NAMESPACE if mesh_cost else None)
        check_offered(choice, found, platform.unavailable_load_targets(), platform.name)
        for phase in choice.run:
            for name in NEEDS[phase]:
                if name != INGRESS:
                    _wait_answering(found[name].base_url, found[name].host, f"load target {name!r}")
        if mesh_cost:
            platform.proxy_usage()  # a missing permission (nodes/proxy on a cluster) fails now, before any load
        perf = PerfPlatform(platform, platform, started_here,
                            {name: Target(t.name, t.base_url, t.host) for name, t in found.items()}, choice)
        yield perf
