"""What is collected when something fails, under the platform's folder: pods, Deployments, events, Services and
Secrets (names and sizes only) of the involved namespaces, the proxies' config dumps and logs; the lifecycle's
and installer's own diagnostics are added by the platform. Never raises: diagnostics must not hide the failure."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from meshconform.platform.kube.evidence import CONFIG_DUMP_COMMAND
from meshconform.platform.kube.readiness import PROXY, has_proxy
from meshconform.platform.kube.redact import redact_all

KINDS = (("v1", "Pod"), ("apps/v1", "Deployment"), ("v1", "Event"), ("v1", "Service"), ("v1", "Secret"),
         ("v1", "ConfigMap"))
LIGHT_KINDS = (("v1", "Pod"), ("v1", "Event"))  # a later failure's bundle: what runs, and what happened
LOG_TAIL = 500


def _write(path: Path, data: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data if isinstance(data, str) else json.dumps(data, indent=1, default=str))
    return path


def collect(client: Any, namespaces: Iterable[str], folder: Path, proxies: bool = True,
            kinds: Iterable[tuple[str, str]] = KINDS, logs: bool = True) -> list[Path]:
    """Write the state of `namespaces` (real names) into `folder`; returns the files written. `kinds`, `logs`
    (each container's last lines) and `proxies` (each proxy's config dump) say how much."""
    written: list[Path] = []
    errors: list[str] = []

    def attempt(what: str, action: Callable[[], None]) -> None:
        try:
            action()
        except Exception as exc:  # noqa: BLE001 (collect what can be collected)
            errors.append(f"{what}: {type(exc).__name__}: {exc}")

    for namespace in sorted(set(namespaces)):
        pods: list[dict[str, Any]] = []
        for api_version, kind in kinds:
            def dump(api_version: str = api_version, kind: str = kind, namespace: str = namespace,
                     pods: list[dict[str, Any]] = pods) -> None:
                items = client.list(api_version, kind, namespace).items
                if kind == "Pod":
                    pods.extend(items)
                safe = redact_all([{**i, "kind": kind} for i in items])  # list items carry no kind
                written.append(_write(folder / namespace / f"{kind.lower()}s.json", safe))
            attempt(f"list {kind} in {namespace}", dump)
        for pod in pods if logs or proxies else []:
            name = str(pod["metadata"]["name"])
            containers = [c["name"] for c in (pod.get("spec") or {}).get("containers") or []]
            if has_proxy(pod) and PROXY not in containers:
                containers.append(PROXY)
            for container in containers if logs else []:
                def log(container: str = container, name: str = name, namespace: str = namespace) -> None:
                    text = client.pod_log(namespace, name, container, tail_lines=LOG_TAIL)
                    written.append(_write(folder / namespace / "logs" / f"{name}.{container}.log", text))
                attempt(f"logs of {namespace}/{name} {container}", log)
            if proxies and has_proxy(pod):
                def dump_config(name: str = name, namespace: str = namespace) -> None:
                    text = client.exec(namespace, name, PROXY, CONFIG_DUMP_COMMAND)
                    written.append(_write(folder / namespace / "proxies" / f"{name}.config_dump.json", text))
                attempt(f"config dump of {namespace}/{name}", dump_config)
    if errors:
        written.append(_write(folder / "collection-errors.txt", "\n".join(errors) + "\n"))
    return written
