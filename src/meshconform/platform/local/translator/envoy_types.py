"""Envoy type URLs and small builders shared by the translator modules."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from meshconform.platform.local.naming import ORIGINAL_DST_HEADER as ORIGINAL_DST_HEADER  # shared with transport.py

HCM = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
ROUTER = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
FAULT = "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault"
TLS_INSPECTOR = "type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector"
DOWNSTREAM_TLS = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext"
UPSTREAM_TLS = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"
RAW_BUFFER = "type.googleapis.com/envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer"
FILE_LOG = "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog"
PREVIOUS_HOSTS = "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"
HTTP_OPTIONS = "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
LISTENER = "type.googleapis.com/envoy.config.listener.v3.Listener"
CLUSTER = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
ROUTE_CONFIG = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
FAULT_FILTER = "envoy.filters.http.fault"
MAX_UINT32 = 4294967295


def socket_address(ip: str, port: int) -> dict[str, Any]:
    return {"socket_address": {"address": ip, "port_value": port}}


def fraction(share: float) -> dict[str, Any]:
    """A share in [0, 1] as Envoy's FractionalPercent, with Istio's MILLION denominator."""
    return {"numerator": round(share * 1_000_000), "denominator": "MILLION"}


def access_log(path: Path, proxy: str, direction: str) -> list[dict[str, Any]]:
    fields = {
        "time": "%START_TIME%",
        "proxy": proxy,
        "direction": direction,
        "method": "%REQ(:METHOD)%",
        "path": "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%",
        "authority": "%REQ(:AUTHORITY)%",
        "status": "%RESPONSE_CODE%",
        "flags": "%RESPONSE_FLAGS%",
        "details": "%RESPONSE_CODE_DETAILS%",
        "duration_ms": "%DURATION%",
        "upstream_cluster": "%UPSTREAM_CLUSTER%",
        "upstream_host": "%UPSTREAM_HOST%",
        "request_id": "%REQ(X-REQUEST-ID)%",
        "peer_identity": "%DOWNSTREAM_PEER_URI_SAN%",
        "client_address": "%DOWNSTREAM_REMOTE_ADDRESS%",
        "route_name": "%ROUTE_NAME%",
    }
    return [{"name": "envoy.access_loggers.file",
             "typed_config": {"@type": FILE_LOG, "path": str(path), "log_format": {"json_format": fields}}}]


def tls_certificate(cert: Path, key: Path) -> dict[str, Any]:
    return {"certificate_chain": {"filename": str(cert)}, "private_key": {"filename": str(key)}}
