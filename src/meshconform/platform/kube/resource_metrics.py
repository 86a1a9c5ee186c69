"""The kubelet's resource metrics (`/metrics/resource`), read for the proxies' CPU and memory: a parser of the
Prometheus text exposition format (version 0.0.4) limited to the two STABLE per-container metrics, and the
figures per container.

The kubelet serves (pkg/kubelet/metrics/collectors/resource_metrics.go; Kubernetes docs "Resource metrics
pipeline"): `container_cpu_usage_seconds_total{container,pod,namespace}`, cumulative CPU in core-seconds, and
`container_memory_working_set_bytes{container,pod,namespace}`, the container's working set (the cgroup's memory
use minus inactive file pages: what the kubelet evicts on; it is not the resident set size). Each sample line
carries a timestamp in milliseconds after its value.

Hand-written, not a library: prometheus_client is not a dependency, and these two metrics need only the sample
line grammar (name, label set with its three escapes, value, optional timestamp); every other metric is skipped."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

CPU = "container_cpu_usage_seconds_total"
MEMORY = "container_memory_working_set_bytes"
WANTED = (CPU, MEMORY)

_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_ESCAPES = {"\\": "\\", '"': '"', "n": "\n"}


class MetricsFormatError(ValueError):
    """A line of a wanted metric that is not in the text format; names the line."""


@dataclass(frozen=True)
class Sample:
    name: str
    labels: dict[str, str]
    value: float
    timestamp_ms: int | None = None  # when the kubelet read it (its stats are refreshed periodically, not live)


@dataclass(frozen=True)
class ContainerUsage:
    """One container's CPU seconds so far and working set now (either may be missing from a scrape)."""

    namespace: str
    pod: str
    container: str
    cpu_seconds: float | None
    working_set_bytes: int | None
    cpu_read_at: float | None = None  # epoch seconds of the CPU counter's reading, from its timestamp


def samples(text: str, wanted: tuple[str, ...] = WANTED) -> list[Sample]:
    """The samples of the `wanted` metrics in `text`, in order. Comments, HELP/TYPE lines and other metrics are
    skipped; a malformed line of a wanted metric raises MetricsFormatError naming its line number."""
    found = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name = _NAME.match(line)
        if name is None or name.group(0) not in wanted:
            continue
        try:
            found.append(_sample(line, name.end(), name.group(0)))
        except MetricsFormatError as exc:
            raise MetricsFormatError(f"line {number}: {exc}: {raw[:200]!r}") from None
    return found


def _sample(line: str, at: int, name: str) -> Sample:
    labels: dict[str, str] = {}
    if at < len(line) and line[at] == "{":
        labels, at = _labels(line, at + 1)
    rest = line[at:].split()
    if not rest or len(rest) > 2 or (at < len(line) and line[at] not in " \t"):
        raise MetricsFormatError("expected a value and an optional timestamp after the labels")
    try:
        value = float(rest[0])  # Go's ParseFloat forms, with NaN, +Inf, -Inf
        timestamp = int(rest[1]) if len(rest) == 2 else None  # milliseconds since the epoch
    except ValueError:
        raise MetricsFormatError(f"not a number: {' '.join(rest)}") from None
    return Sample(name, labels, value, timestamp)


def _labels(line: str, at: int) -> tuple[dict[str, str], int]:
    """`name="value",...}` from `at`; returns the labels and the index after the closing brace."""
    labels: dict[str, str] = {}
    while True:
        while at < len(line) and line[at] in " \t":
            at += 1
        if at < len(line) and line[at] == "}":
            return labels, at + 1
        match = _LABEL_NAME.match(line, at)
        if match is None:
            raise MetricsFormatError(f"expected a label name at column {at + 1}")
        key, at = match.group(0), match.end()
        if line[at:at + 2] != '="':
            raise MetricsFormatError(f'expected =" after label {key}')
        at += 2
        value = []
        while True:
            if at >= len(line):
                raise MetricsFormatError(f"label {key}: unterminated value")
            char = line[at]
            if char == "\\":
                escaped = _ESCAPES.get(line[at + 1:at + 2])
                if escaped is None:
                    raise MetricsFormatError(f"label {key}: unknown escape at column {at + 1}")
                value.append(escaped)
                at += 2
                continue
            at += 1
            if char == '"':
                break
            value.append(char)
        labels[key] = "".join(value)
        while at < len(line) and line[at] in " \t":
            at += 1
        if at < len(line) and line[at] == ",":
            at += 1
        elif at >= len(line) or line[at] != "}":
            raise MetricsFormatError(f"expected , or }} after label {key}")


def containers(text: str) -> list[ContainerUsage]:
    """Per container (namespace, pod, container): its CPU seconds and working set from one scrape."""
    cpu: dict[tuple[str, str, str], float] = {}
    read_at: dict[tuple[str, str, str], float] = {}
    memory: dict[tuple[str, str, str], int] = {}
    for sample in samples(text):
        key = (sample.labels.get("namespace", ""), sample.labels.get("pod", ""), sample.labels.get("container", ""))
        if not all(key) or not math.isfinite(sample.value):
            continue
        if sample.name == CPU:
            cpu[key] = sample.value
            if sample.timestamp_ms is not None:
                read_at[key] = sample.timestamp_ms / 1000.0
        else:
            memory[key] = int(sample.value)
    return [ContainerUsage(*key, cpu.get(key), memory.get(key), read_at.get(key))
            for key in sorted(set(cpu) | set(memory))]
