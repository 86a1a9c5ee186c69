"""Readiness from the objects' own status, watched with a deadline: Deployments Available and rolled out, pods
Ready, and `istio-proxy` present where injection applies (as a container, or as a native-sidecar init container,
Istio's default since 1.27 on kubelets >= 1.33). A timeout names what is not ready and the events saying why.

Some states do not fix themselves within a run: an image the node cannot pull (ErrImagePull, ImagePullBackOff),
a container that keeps exiting (CrashLoopBackOff), a pod no node has room for (Insufficient cpu or memory, unless
a cluster autoscaler is adding a node). Waiting the whole deadline on them (600 s for a first bring-up) only hides
the cause, so the wait stops the moment one shows, naming the pod, the event and what to do."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from meshconform.errors import PlatformError
from meshconform.meshapi.injection import should_inject

PROXY = "istio-proxy"


def condition(obj: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind:
            return dict(cond)
    return None


def deployment_problem(dep: Mapping[str, Any]) -> str | None:
    """None when the Deployment is rolled out and Available (kubectl rollout status's rules), else why not."""
    spec, status, meta = dep.get("spec") or {}, dep.get("status") or {}, dep.get("metadata") or {}
    want = int(spec.get("replicas", 1))
    if int(status.get("observedGeneration", 0)) < int(meta.get("generation", 0)):
        return "the controller has not observed the latest spec yet"
    progressing = condition(dep, "Progressing")
    if progressing and progressing.get("reason") == "ProgressDeadlineExceeded":
        return f"rollout failed: {progressing.get('message', 'progress deadline exceeded')}"
    if int(status.get("updatedReplicas", 0)) < want:
        return f"{status.get('updatedReplicas', 0)} of {want} replicas updated"
    if int(status.get("replicas", 0)) > int(status.get("updatedReplicas", 0)):
        old = int(status.get("replicas", 0)) - int(status.get("updatedReplicas", 0))
        return f"{old} old replicas pending termination"
    if int(status.get("availableReplicas", 0)) < want:
        return f"{status.get('availableReplicas', 0)} of {want} replicas available"
    available = condition(dep, "Available")
    if not available or available.get("status") != "True":
        return f"condition Available is not True ({(available or {}).get('message', 'absent')})"
    return None


def has_proxy(pod: Mapping[str, Any]) -> bool:
    """Whether the pod runs Istio's sidecar: a container, or an init container that keeps running (native sidecar)."""
    spec = pod.get("spec") or {}
    if any(c.get("name") == PROXY for c in spec.get("containers") or []):
        return True
    return any(c.get("name") == PROXY and c.get("restartPolicy") == "Always" for c in spec.get("initContainers") or [])


def injection_expected(namespace_labels: Mapping[str, str], pod_labels: Mapping[str, str],
                       revisions: Collection[str] = ("default",)) -> bool:
    """Whether Istio's injector webhooks select this pod (istio.io "Installing the sidecar", "Controlling the
    injection policy"); the rules live in meshapi.injection, shared with the local platform."""
    return should_inject(namespace_labels, pod_labels, None, revisions)


def pod_problem(pod: Mapping[str, Any], expect_proxy: bool | None) -> str | None:
    """None when the pod is Running and Ready (with its sidecar if one is expected), else why not."""
    meta, status = pod.get("metadata") or {}, pod.get("status") or {}
    if meta.get("deletionTimestamp"):
        return "terminating"
    if expect_proxy and not has_proxy(pod):
        return f"no {PROXY} container although injection applies (is the injector webhook running?)"
    if expect_proxy is False and has_proxy(pod):
        return f"has an {PROXY} container although injection does not apply"
    for cs in [*(status.get("initContainerStatuses") or []), *(status.get("containerStatuses") or [])]:
        waiting = (cs.get("state") or {}).get("waiting")
        if waiting and waiting.get("reason") not in (None, "PodInitializing", "ContainerCreating"):
            return f"container {cs.get('name')}: {waiting.get('reason')}: {waiting.get('message', '')}".rstrip(": ")
    if status.get("phase") != "Running":
        scheduled = condition(pod, "PodScheduled")
        if scheduled and scheduled.get("status") == "False":
            return f"not scheduled: {scheduled.get('message', scheduled.get('reason', ''))}"
        return f"phase {status.get('phase', 'unknown')}"
    ready = condition(pod, "Ready")
    if not ready or ready.get("status") != "True":
        return f"not Ready ({(ready or {}).get('reason', 'no Ready condition')})"
    return None


# The kubelet's waiting reasons (status.containerStatuses[].state.waiting.reason) a run cannot wait out, and what to do.
_PULL = ("the node cannot pull the image: with 'toomanyrequests' or 'rate limit' in the message, Docker Hub's "
         "anonymous pull limit (on kind meshconform pulls on this host with your login and loads the images into "
         "the node: `docker login`, or --registry-mirror; on a cluster, give the nodes a pull secret or a mirror); "
         "with 'not found' or 'manifest unknown', the image or its tag does not exist")
FATAL_WAITING = {
    "ErrImagePull": _PULL, "ImagePullBackOff": _PULL,
    "InvalidImageName": "the image reference is not valid: fix it in the manifest",
    "CrashLoopBackOff": "the container keeps exiting: its log (in the diagnostics, or `kubectl logs --previous`) "
                        "says why",
    "CreateContainerConfigError": "the container's configuration refers to something missing (a ConfigMap, a "
                                  "Secret, a key): the event names it",
}
_NO_ROOM = ("no node has room for it: on kind, give the container engine more CPUs or memory (Docker Desktop: "
            "Settings > Resources; meshconform's kind install needs at least the minimum `meshconform run "
            "--platform kind --dry-run` states); on a cluster, add capacity")


def pod_fatal(pod: Mapping[str, Any]) -> str | None:
    """Why the pod will not become ready within a run (the kubelet's reason and message, then what to do), or None."""
    status, spec = pod.get("status") or {}, pod.get("spec") or {}
    images = {c.get("name"): c.get("image") for c in [*(spec.get("initContainers") or []), *(spec.get("containers")
                                                                                            or [])]}
    for cs in [*(status.get("initContainerStatuses") or []), *(status.get("containerStatuses") or [])]:
        waiting = (cs.get("state") or {}).get("waiting") or {}
        reason = str(waiting.get("reason") or "")
        if reason in FATAL_WAITING:
            last = ((cs.get("lastState") or {}).get("terminated") or {})
            exited = (f" (last exit code {last.get('exitCode')}, {last.get('reason', 'no reason')})"
                      if reason == "CrashLoopBackOff" and last else "")
            return (f"container {cs.get('name')} ({cs.get('image') or images.get(cs.get('name'), '?')}): "
                    f"{reason}{exited}: "
                    f"{waiting.get('message', '')}".rstrip(": ") + f". What to do: {FATAL_WAITING[reason]}")
    scheduled = condition(pod, "PodScheduled")
    message = str((scheduled or {}).get("message") or "")
    if scheduled and scheduled.get("status") == "False" and "Insufficient" in message:
        return f"not scheduled: {message} What to do: {_NO_ROOM}"
    return None


def event_lines(events: Iterable[Mapping[str, Any]], names: Iterable[str], limit: int = 8) -> list[str]:
    """The latest events about the named objects, newest last: '<kind>/<name>: <reason>: <message>'."""
    wanted = set(names)
    picked = [e for e in events if (e.get("involvedObject") or e.get("regarding") or {}).get("name") in wanted]
    picked.sort(key=lambda e: str(e.get("lastTimestamp") or e.get("eventTime") or
                                  (e.get("metadata") or {}).get("creationTimestamp") or ""))
    lines = []
    for e in picked[-limit:]:
        target = e.get("involvedObject") or e.get("regarding") or {}
        lines.append(f"{target.get('kind')}/{target.get('name')}: {e.get('type', '')} {e.get('reason', '')}: "
                     f"{e.get('message') or e.get('note') or ''}".strip())
    return lines


@dataclass(frozen=True)
class Wanted:
    """One collection to wait on: what to list/watch and the problem each object still has (None: ready)."""

    api_version: str
    kind: str
    namespace: str
    label_selector: str
    problem: Callable[[Mapping[str, Any]], str | None]
    expected_names: frozenset[str] = frozenset()  # objects that must exist (e.g. the Deployments applied)
    minimum: int = 0  # at least this many objects must exist (pods of a Deployment)
    fatal: Callable[[Mapping[str, Any]], str | None] | None = None  # a state the deadline cannot fix (pod_fatal)


class Source(Protocol):
    """What a wait needs from the cluster (KubeClient provides it; tests give a fake)."""

    def list(self, api_version: str, kind: str, namespace: str | None = None, label_selector: str | None = None,
             field_selector: str | None = None) -> Any: ...

    def watch(self, api_version: str, kind: str, namespace: str | None, label_selector: str | None,
              resource_version: str, timeout_seconds: int) -> Iterable[tuple[str, dict[str, Any]]]: ...


def problems(wanted: Wanted, objects: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """name -> problem for every object of `wanted` not ready (missing ones included)."""
    found = {name: p for name, obj in objects.items() if (p := wanted.problem(obj)) is not None}
    for name in wanted.expected_names - objects.keys():
        found[name] = "does not exist"
    if len(objects) < wanted.minimum:
        found[f"({wanted.kind} matching {wanted.label_selector})"] = \
            f"{len(objects)} of at least {wanted.minimum} exist"
    return found


def wait_ready(source: Source, wanted: Wanted, deadline: float, what: str,
               clock: Callable[[], float] = time.monotonic) -> None:
    """Return once every object of `wanted` is ready; list once, then follow a watch from that resourceVersion
    (re-listing when the server ends the watch) until the deadline. Raises PlatformError naming what is not ready
    and the latest events about it."""
    listing = source.list(wanted.api_version, wanted.kind, wanted.namespace, wanted.label_selector)
    objects = {str(o["metadata"]["name"]): o for o in listing.items}
    version = listing.resource_version
    while True:
        _stop_if_fatal(source, wanted, objects, what)
        left = problems(wanted, objects)
        if not left:
            return
        remaining = deadline - clock()
        if remaining <= 0:
            break
        try:
            for kind, obj in source.watch(wanted.api_version, wanted.kind, wanted.namespace, wanted.label_selector,
                                          version, int(min(remaining, 60)) or 1):
                name = str((obj.get("metadata") or {}).get("name"))
                version = str((obj.get("metadata") or {}).get("resourceVersion") or version)
                if kind == "DELETED":
                    objects.pop(name, None)
                elif kind in ("ADDED", "MODIFIED"):
                    objects[name] = obj
                elif kind == "ERROR":  # e.g. 410 Gone: the resourceVersion is too old; list again
                    break
                if kind in ("ADDED", "MODIFIED"):
                    _stop_if_fatal(source, wanted, {name: obj}, what)
                if not problems(wanted, objects):
                    return
                if clock() >= deadline:
                    break
        except PlatformError:
            pass  # a broken watch: list again below
        listing = source.list(wanted.api_version, wanted.kind, wanted.namespace, wanted.label_selector)
        objects = {str(o["metadata"]["name"]): o for o in listing.items}
        version = listing.resource_version
    events = source.list("v1", "Event", wanted.namespace).items
    lines = [f"  {name}: {why}" for name, why in sorted(problems(wanted, objects).items())]
    recent = event_lines(events, objects.keys() | wanted.expected_names)
    raise PlatformError(f"{what}: not ready in namespace {wanted.namespace} by the deadline:\n" + "\n".join(lines)
                        + ("\nlatest events:\n  " + "\n  ".join(recent) if recent else "\n(no events about them)"))


def _stop_if_fatal(source: Source, wanted: Wanted, objects: Mapping[str, Mapping[str, Any]], what: str) -> None:
    """Raise at once, naming each pod in a state the deadline cannot fix and the latest events about it; a pod with
    no room is spared while a cluster autoscaler says it is adding a node (event TriggeredScaleUp)."""
    if wanted.fatal is None:
        return
    found = {name: why for name, obj in objects.items() if (why := wanted.fatal(obj)) is not None}
    if not found:
        return
    events = source.list("v1", "Event", wanted.namespace).items
    lines = []
    for name, why in sorted(found.items()):
        about = [e for e in events if (e.get("involvedObject") or e.get("regarding") or {}).get("name") == name]
        if why.startswith("not scheduled") and any(e.get("reason") == "TriggeredScaleUp" for e in about):
            continue
        lines.append(f"  {wanted.kind.lower()} {name}: {why}")
        lines += [f"    event: {line}" for line in event_lines(about, [name], limit=3)]
    if lines:
        raise PlatformError(f"{what}: stopped waiting in namespace {wanted.namespace}, these will not become "
                            "ready by themselves:\n" + "\n".join(lines))
