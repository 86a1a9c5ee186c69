"""From the desired resources to everything the local platform must run, computed before anything
changes: capability check, topology (pods, injection, addresses), and the translator's Envoy config.

Pure: a ConfigError here leaves the running platform untouched."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, replace

from meshconform.errors import ConfigError, PlatformError
from meshconform.meshapi.loader import Sourced
from meshconform.platform.local import capabilities, topology
from meshconform.platform.local.canonical import canonical_json
from meshconform.platform.local.certificates import Certificates
from meshconform.platform.local.misbehaviour import Misbehaviour
from meshconform.platform.local.state import RunFiles, RunState
from meshconform.platform.local.translator import GatewayPorts, MeshSnapshot, ProxyConfig, translate

GATEWAY_POD_KEY = "istio-system/istio-ingressgateway"


@dataclass(frozen=True)
class Desired:
    """What the platform should look like after an apply or delete."""

    snapshot: MeshSnapshot
    specs: list[topology.PodSpec]
    configs: dict[str, ProxyConfig]
    certificates: Certificates
    pod_ips: dict[str, str]


def merged(current: list[tuple[int, Sourced]], applied: Sequence[Sourced], next_seq: int
           ) -> tuple[list[tuple[int, Sourced]], int]:
    """`current` with `applied` added or updated; an update keeps its creation order (like
    creationTimestamp), new ones go last. Returns the list in creation order and the next sequence."""
    by_key = {item.key: (seq, item) for seq, item in current}
    for item in applied:
        existing = by_key.get(item.key)
        by_key[item.key] = (existing[0] if existing else next_seq, item)
        if not existing:
            next_seq += 1
    return sorted(by_key.values(), key=lambda pair: pair[0]), next_seq


def snapshot_of(items: Sequence[Sourced], state: RunState, misbehave: frozenset[Misbehaviour]
                ) -> tuple[MeshSnapshot, list[topology.PodSpec], dict[str, str]]:
    """The mesh snapshot of `items`, with pod addresses allocated (a copy of the state's table)."""
    pod_ips = dict(state.pod_ips)
    snapshot, specs = topology.build(items, lambda key: allocate_ip(key, pod_ips, state.block),
                                     no_injection=Misbehaviour.NO_INJECTION in misbehave)
    if Misbehaviour.IDENTITY_FROM_DEPLOYMENT_NAME in misbehave:
        # Only the identities change (certificates, SANs, principals), not the pods' processes.
        snapshot = replace(snapshot, pods=[p if p.is_gateway else replace(p, service_account=p.deployment)
                                           for p in snapshot.pods])
    return snapshot, specs, pod_ips


def inputs_key(items: Sequence[Sourced], state: RunState, misbehave: frozenset[Misbehaviour]) -> str:
    """A digest of everything `compute` reads but the run's files (fixed for a platform): equal keys, equal
    outcomes."""
    inputs = [[[item.source, item.document] for item in items], state.pod_ips, state.block, state.gateway_ports,
              sorted(misbehave)]
    return hashlib.sha256(canonical_json(inputs)).hexdigest()


def compute(items: Sequence[Sourced], state: RunState, files: RunFiles,
            misbehave: frozenset[Misbehaviour]) -> Desired:
    capabilities.check(items)
    snapshot, specs, pod_ips = snapshot_of(items, state, misbehave)
    certificates = Certificates(files, snapshot)
    try:
        configs = translate(snapshot, certificates, GatewayPorts(**state.gateway_ports),
                            lambda pod: (files.proxy_dir(pod) / "xds", files.proxy_dir(pod) / "access.log"),
                            misbehave)
    except ConfigError as exc:
        if exc.resource and not exc.source:  # the translator knows resources, not files
            source = next((i.source for i in items if i.resource.ref == exc.resource), "")
            raise ConfigError(exc.detail, source=source, resource=exc.resource, field=exc.field) from None
        raise
    return Desired(snapshot, specs, configs, certificates, pod_ips)


def allocate_ip(key: str, pod_ips: dict[str, str], block: str) -> str:
    """A stable loopback address per pod in the run's /24 (.1 is the gateway's)."""
    if key not in pod_ips:
        used = set(pod_ips.values())
        host = 1 if key == GATEWAY_POD_KEY else 2
        while f"{block}.{host}" in used:
            host += 1
        if host > 254:
            raise PlatformError("more than 253 pods: the local platform's address block is full")
        pod_ips[key] = f"{block}.{host}"
    return pod_ips[key]
