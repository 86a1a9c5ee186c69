"""The local platform's run state: where each run's files live, and what it has applied and started.

State is a typed record saved as JSON in the run directory, so a later process (the CLI's `apply`
or `down`) picks up a platform an earlier `up` started. Applied resources are kept as documents
on disk and parsed once per process (not once per observation)."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from meshconform.errors import PlatformError
from meshconform.meshapi.loader import Sourced, parse_document
from meshconform.platform.local.ca import write_private
from meshconform.platform.local.canonical import canonical_json
from meshconform.platform.local.translator.model import Pod


@dataclass(frozen=True)
class RunFiles:
    """Where everything of one run lives (all under the platform's folder)."""

    root: Path

    @property
    def state(self) -> Path:
        return self.root / "platform.json"

    @property
    def processes(self) -> Path:
        return self.root / "processes.json"

    @property
    def services(self) -> Path:
        return self.root / "services.json"

    @property
    def certs(self) -> Path:
        return self.root / "certs"

    @property
    def lock(self) -> Path:
        return self.root / "apply.lock"

    def proxy_dir(self, pod: Pod) -> Path:
        return self.root / "proxies" / f"{pod.namespace}.{pod.name}"

    @property
    def launcher_log(self) -> Path:
        return self.root / "apps" / "launcher.log"

    def app_log(self, namespace: str, pod: str) -> Path:
        return self.root / "apps" / f"{namespace}.{pod}.log"

    def request_log(self, namespace: str, pod: str) -> Path:
        return self.root / "apps" / f"{namespace}.{pod}.requests.jsonl"


@dataclass(frozen=True)
class StoredResource:
    """An applied resource as kept on disk: its creation order, where it came from, the document, and when it was
    first applied (its creationTimestamp: an update keeps it)."""

    seq: int
    source: str
    document: dict[str, Any]
    created: float = 0.0  # seconds since the epoch; 0 in a state an earlier version wrote


def stored(desired: list[tuple[int, Sourced]], previous: list[StoredResource]) -> list[StoredResource]:
    """`desired` as kept on disk; what was applied before keeps its creation time (same sequence, same object)."""
    now = time.time()
    created = {r.seq: r.created for r in previous}
    return [StoredResource(seq, item.source, item.document, created.get(seq, now)) for seq, item in desired]


@dataclass(frozen=True)
class EnvoyInfo:
    path: str
    version: str
    sha256: str


@dataclass
class RunState:
    """What one local platform has: its addresses, applied resources, running pods and settings."""

    block: str  # the run's 127.A.B.0/24
    gateway_ports: dict[str, int]  # {"http": port, "https": port} on 127.0.0.1
    envoy: EnvoyInfo
    pod_ips: dict[str, str] = field(default_factory=dict)  # "namespace/pod" -> ip
    resources: list[StoredResource] = field(default_factory=list)
    next_seq: int = 1
    pods: dict[str, str] = field(default_factory=dict)  # running pod key -> fingerprint of what it runs
    misbehave: list[str] = field(default_factory=list)
    undelivered: bool = False  # resources were removed (delete_later) but the proxies still run them
    started: float = field(default_factory=time.time)
    stopped: float | None = None

    def to_json(self) -> dict[str, Any]:
        # Shallow on purpose: asdict deep-copies every applied document, which cost ~25 ms per apply.
        return {**vars(self), "envoy": asdict(self.envoy), "resources": [vars(r) for r in self.resources]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunState:
        return cls(**{**data, "envoy": EnvoyInfo(**data["envoy"]),
                      "resources": [StoredResource(**r) for r in data["resources"]]})

    def save(self, path: Path) -> None:
        tmp = path.with_suffix(".tmp")
        write_private(tmp, json.dumps(self.to_json()).encode())  # 0600: it holds applied Secrets
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> RunState | None:
        if not path.exists():
            return None
        try:
            return cls.from_json(json.loads(path.read_text()))
        except (ValueError, TypeError, KeyError, AttributeError) as exc:  # cut short, edited by hand
            raise UnreadableState(path, f"{type(exc).__name__}: {exc}") from None


class UnreadableState(PlatformError):
    """The platform's state file cannot be read: what it applied is lost, but its processes are recorded apart
    (processes.json), so `down` still stops them."""

    def __init__(self, path: Path, why: str) -> None:
        super().__init__(f"{path} cannot be read ({why}): the local platform there lost what it holds; run "
                         "'meshconform down' to stop its processes, then 'meshconform up'")


class ParsedResources:
    """Parsed copies of stored resources, reused while the stored documents are the same objects."""

    def __init__(self) -> None:
        self._cache: dict[tuple[int, bytes], Sourced] = {}

    def of(self, stored: list[StoredResource]) -> list[tuple[int, Sourced]]:
        result = []
        cache: dict[tuple[int, bytes], Sourced] = {}
        for entry in stored:
            key = (entry.seq, canonical_json(entry.document))
            item = self._cache.get(key) or Sourced(parse_document(entry.document, entry.source), entry.source,
                                                   entry.document)
            cache[key] = item
            result.append((entry.seq, item))
        self._cache = cache
        return result
