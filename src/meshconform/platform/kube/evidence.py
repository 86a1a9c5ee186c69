"""Reading what the proxies hold and did, from Envoy's and istioctl's own output formats: route excerpts from an
Envoy admin `config_dump` (as `pilot-agent request GET config_dump` prints it), access-log lines from the
istio-proxy container log, and per-proxy sync state from `istioctl proxy-status -o json`."""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Iterable
from typing import Any

ROUTES_DUMP = "type.googleapis.com/envoy.admin.v3.RoutesConfigDump"
# Istio's default TEXT access-log format starts: [%START_TIME%] "%REQ(:METHOD)% <path> %PROTOCOL%" <code> ...
_TEXT_ACCESS = re.compile(r'^\[[0-9T:.\-+Z]+\] "(GET|HEAD|POST|PUT|DELETE|CONNECT|OPTIONS|TRACE|PATCH|-) ')
# The admin command the evidence runs inside the istio-proxy container (istio.io: "pilot-agent request GET ...").
CONFIG_DUMP_COMMAND = ["pilot-agent", "request", "GET", "config_dump"]


def route_excerpt(config_dump: dict[str, Any], hosts: Collection[str]) -> list[dict[str, Any]]:
    """The route configurations' virtual hosts serving one of `hosts` (all of them if none given), the same
    shape the local platform reports: [{"name": <route config>, "virtual_hosts": [...]}]."""
    excerpt = []
    for config in config_dump.get("configs") or []:
        if config.get("@type") != ROUTES_DUMP:
            continue
        for entry in config.get("dynamic_route_configs") or []:
            route_config = entry.get("route_config") or {}
            vhosts = [v for v in route_config.get("virtual_hosts") or []
                      if not hosts or any(h in domain for h in hosts for domain in v.get("domains") or [])]
            if vhosts:
                excerpt.append({"name": route_config.get("name"), "version_info": entry.get("version_info"),
                                "virtual_hosts": vhosts})
    return excerpt


def access_lines(container_log: str, limit: int = 10) -> list[str]:
    """The last `limit` access-log lines in an istio-proxy container log (TEXT or JSON encoding), skipping the
    proxy's own log lines."""
    picked = []
    for line in container_log.splitlines():
        stripped = line.strip()
        if _TEXT_ACCESS.match(stripped):
            picked.append(stripped)
        elif stripped.startswith("{") and '"response_code"' in stripped:
            picked.append(stripped)
    return picked[-limit:]


def request_records(container_log: str) -> list[dict[str, Any]]:
    """The echo agent's request records: one JSON object per line of its container log."""
    records = []
    for line in container_log.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                value = json.loads(line)
            except ValueError:
                continue
            if isinstance(value, dict) and "request_id" in value:
                records.append(value)
    return records


def _documents(text: str) -> Iterable[Any]:
    """`istioctl proxy-status -o json` prints one JSON document per istiod, one after the other."""
    decoder = json.JSONDecoder()
    position = 0
    text = text.strip()
    while position < len(text):
        value, end = decoder.raw_decode(text, position)
        yield value
        position = end
        while position < len(text) and text[position].isspace():
            position += 1


def proxy_sync(status_json: str) -> dict[str, dict[str, str]]:
    """proxy id -> {xDS type (short, e.g. 'RouteConfiguration') -> configStatus} from `proxy-status -o json`."""
    result: dict[str, dict[str, str]] = {}
    for document in _documents(status_json):
        for resource in (document or {}).get("resources") or []:
            node = (resource.get("node") or {}).get("id", "?")
            states = result.setdefault(str(node), {})
            for config in resource.get("genericXdsConfigs") or []:
                short = str(config.get("typeUrl", "")).rsplit(".", 1)[-1]
                states[short] = str(config.get("configStatus", "UNKNOWN"))
    return result


def unsynced(sync: dict[str, dict[str, str]], namespaces: Collection[str] = ()) -> dict[str, dict[str, str]]:
    """Proxies (of `namespaces`, if given; node ids are `<type>~<ip>~<pod>.<ns>~<ns>.svc.cluster.local`) with an
    xDS type istiod sent but the proxy has not acknowledged (STALE) or rejected (ERROR). NOT_SENT (nothing to send)
    and SYNCED are settled."""
    out = {}
    for node, states in sync.items():
        parts = node.split("~")
        namespace = parts[2].rsplit(".", 1)[-1] if len(parts) >= 3 and "." in parts[2] else None
        if namespaces and namespace is not None and namespace not in namespaces:
            continue
        bad = {t: s for t, s in states.items() if s in ("STALE", "ERROR")}
        if bad:
            out[node] = bad
    return out


# Istio's default TEXT format (meshConfig.accessLogFormat unset), after the time and the quoted request line:
# %RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS%
# "%UPSTREAM_TRANSPORT_FAILURE_REASON%" %BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%
# "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" "%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%"
# %UPSTREAM_CLUSTER_RAW% %UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS%
# %REQUESTED_SERVER_NAME% %ROUTE_NAME% (istiod's EnvoyTextLogFormat; the route name tells block_all/allow_any)
_TEXT_FIELDS = re.compile(
    r'^\[(?P<time>[^\]]+)\] "(?P<method>\S+) (?P<path>\S+) [^"]*" (?P<status>\d+) (?P<flags>\S+) (?P<details>\S+) '
    r'\S+ "[^"]*" \d+ \d+ (?P<duration_ms>\d+) \S+ "[^"]*" "[^"]*" "(?P<request_id>[^"]*)" "(?P<authority>[^"]*)" '
    r'"(?P<upstream_host>[^"]*)" (?P<upstream_cluster>\S+)(?: \S+ \S+ \S+ \S+ (?P<route_name>\S+))?')


def access_records(container_log: str, gateway: bool = False) -> list[dict[str, Any]]:
    """The access log of an istio-proxy container as the Platform API's records (status, flags, details,
    request_id, direction, ...), from Istio's default TEXT format or its JSON encoding."""
    records = []
    for line in container_log.splitlines():
        stripped = line.strip()
        record: dict[str, Any] | None = None
        if stripped.startswith("{") and '"response_code"' in stripped:
            try:
                data = json.loads(stripped)
            except ValueError:
                continue
            record = {"time": data.get("start_time"), "method": data.get("method"), "path": data.get("path"),
                      "status": data.get("response_code"), "flags": data.get("response_flags"),
                      "details": data.get("response_code_details"), "request_id": data.get("request_id"),
                      "authority": data.get("authority"), "upstream_cluster": data.get("upstream_cluster"),
                      "duration_ms": data.get("duration"), "route_name": data.get("route_name")}
        elif (match := _TEXT_FIELDS.match(stripped)) is not None:
            record = match.groupdict()
            record["status"] = int(record["status"])
        if record is None:
            continue
        cluster = str(record.get("upstream_cluster") or "")
        record["direction"] = "gateway" if gateway else "inbound" if cluster.startswith("inbound|") else "outbound"
        records.append(record)
    return records
