"""Container logs read incrementally (platform/kube/logs.py): the first read whole, later ones only the seconds
since (sinceSeconds, timestamps=true), lines already read recognised by the kubelet's timestamps and never counted
twice; a server that stamps nothing is read whole each time."""

from __future__ import annotations

from meshconform.platform.kube.logs import LogCache


class Kubelet:
    """Serves a growing log, stamped as the kubelet stamps it (RFC3339Nano drops trailing zeros), and whatever a
    `sinceSeconds` window holds: here the last 3 lines, plus an overlap with what was read before."""

    def __init__(self, stamped: bool = True) -> None:
        self.lines: list[tuple[str, str]] = []
        self.asked: list[dict[str, object]] = []
        self.stamped = stamped

    def pod_log(self, namespace: str, pod: str, container: str, tail_lines: int | None = None,
                since_seconds: int | None = None, timestamps: bool = False) -> str:
        self.asked.append({"since_seconds": since_seconds, "timestamps": timestamps})
        shown = self.lines if since_seconds is None else self.lines[-3:]
        return "".join((f"{stamp} {line}\n" if self.stamped else f"{line}\n") for stamp, line in shown)


def test_only_new_lines_are_read_and_none_twice() -> None:
    kubelet = Kubelet()
    now = [100.0]
    kubelet.lines = [("2026-11-22T06:00:01.1Z", "a"), ("2026-11-22T06:00:01.12Z", "b"),
                     ("2026-11-22T06:00:01.12Z", "b-twin"), ("2026-11-22T06:00:02Z", "c")]
    cache = LogCache(kubelet, clock=lambda: now[0])
    assert cache.text("ns", "pod", "app") == "a\nb\nb-twin\nc\n"
    kubelet.lines += [("2026-11-22T06:00:02.000000001Z", "d"), ("2026-11-22T06:00:03Z", "e")]
    now[0] = 112.4
    # the window re-read "b-twin" and "c" (and ".12Z" sorts before ".000000001Z"'s second): none twice
    assert cache.text("ns", "pod", "app") == "a\nb\nb-twin\nc\nd\ne\n"
    assert kubelet.asked[-1] == {"since_seconds": 12 + 5, "timestamps": True}
    assert kubelet.asked[-2]["since_seconds"] is None  # the first read of this cache took it whole


def test_a_server_that_stamps_nothing_is_read_whole_each_time() -> None:
    kubelet = Kubelet(stamped=False)
    kubelet.lines = [("", "a")]
    cache = LogCache(kubelet)
    assert cache.text("ns", "pod", "app") == "a\n"
    kubelet.lines.append(("", "b"))
    assert cache.text("ns", "pod", "app") == "a\nb\n"
    assert [a["since_seconds"] for a in kubelet.asked] == [None, None]
