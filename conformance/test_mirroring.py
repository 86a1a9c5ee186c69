"""Mirroring: the mirror receives copies; callers see only the primary's answers.

echo-mirror answers 500 to everything, so any of its answers leaking to a caller would show."""

from __future__ import annotations

from collections import Counter

from meshconform.stats.proportions import DEFAULT_ALPHA
from meshconform.suite.checks import copies_keep_host, new_marker, outcomes, wait_for_marker
from meshconform.suite.convergence import await_convergence, await_settled, under_way
from meshconform.suite.failures import records_for
from meshconform.suite.sampling import measure_counted
from meshconform.suite.unit import conformance_test
from meshconform.traffic.model import Request, Response

MIRROR_TOLERANCE = 0.1
# echo-mirror's second port (the testbed's Service), where nothing listens; Istio names a sidecar's inbound cluster
# after the port a request came in on (inbound|<port>||).
MIRROR_PORT = 9090
INBOUND_ALT = f"inbound|{MIRROR_PORT}||"


def _mirrored_ids(platform, path: str, deployment: str = "echo-mirror") -> set[str]:
    return {rec["request_id"] for rec in platform.request_log("default", deployment) if rec["path"].startswith(path)}


@conformance_test("mirror-full", "With mirror and no mirrorPercentage (100%), every request id reaches the mirror, "
                  "each copy with the request's own Host (echo:8080; Istio >= 1.28 appends no '-shadow'), "
                  "and callers get only the primary's 200s although the mirror answers 500. A mirror naming a subset "
                  "sends every copy to it: the copies of requests routed to echo v1 all reach echo v2. A mirror naming "
                  "a port of a host with two ports sends every copy there: echo-mirror's proxy logs each copy of 20 "
                  f"requests as arriving on port {MIRROR_PORT} ({INBOUND_ALT}; nothing listens there, and the "
                  "caller never sees that answer).",
                  features={"Mirroring"}, manifests=("mirroring/echo-mirror.yaml",), values={"percent": None})
def test_mirror_full(mesh_platform, mesh_manifests, mesh_meshed_client, mesh_timeouts, mesh_result) -> None:
    wait_for_marker(mesh_meshed_client, Request("/probe", host="echo:8080"), mesh_manifests.marker, mesh_timeouts)
    path = f"/{new_marker('mirror')}"  # a path of its own: no other traffic can be counted
    replies = mesh_meshed_client.send([Request(f"{path}/{i}", host="echo:8080") for i in range(100)])
    wanted = {r.request_id for r in replies}
    # Mirror subset: 20 requests routed to echo v1, each copy due at echo v2 (a copy sent to v1 would be missing
    # there: the wait ends unconverged; 20 copies all landing on v2 by chance: 2^-20). Mirror port: 20 requests
    # whose copies go to echo-mirror's port 9090. Both sent now, judged after the first wait (their copies land and
    # are logged in the background meanwhile).
    to_subset = f"/to-subset/{new_marker('mirror')}"
    routed = mesh_meshed_client.send([Request(f"{to_subset}/{i}", host="echo:8080") for i in range(20)])
    to_port = mesh_meshed_client.send([Request(f"/to-port/{new_marker('mirror')}/{i}", host="echo:8080")
                                       for i in range(20)])
    # Copies are sent while the primaries are in flight but may land after them: wait for all of them.
    seen: set[str] = set()

    def all_arrived() -> tuple[bool, str]:
        seen.update(_mirrored_ids(mesh_platform, path))
        return wanted <= seen, f"{len(wanted & seen)} of {len(wanted)} request ids at the mirror"
    await_convergence(all_arrived, mesh_timeouts, "every request id at the mirror", consecutive=1,
                      pause=mesh_timeouts.log_poll_interval)
    mesh_result.figure("copy_hosts", copies_keep_host(mesh_platform, wanted, "echo:8080"))
    mesh_result.figure("caller_statuses", sorted({str(r.status) for r in replies}))
    assert all(r.status == 200 and r.json()["service"] == "echo" for r in replies), [
        r.summary() for r in replies if r.status != 200][:3]
    wanted_v2 = {r.request_id for r in routed}
    at_v2: set[str] = set()

    def copies_at_v2() -> tuple[bool, str]:
        at_v2.update(_mirrored_ids(mesh_platform, to_subset, "echo-v2"))
        return wanted_v2 <= at_v2, f"{len(wanted_v2 & at_v2)} of {len(wanted_v2)} copies at echo v2 (subset v2); " \
                                   f"{len(_mirrored_ids(mesh_platform, to_subset, 'echo-v1'))} " \
                                   "records at echo v1, where primaries and misrouted copies land"
    await_convergence(copies_at_v2, mesh_timeouts, "every copy at the mirror's subset", consecutive=1)
    assert all(r.status == 200 and r.version == "v1" for r in routed), [r.summary() for r in routed][:3]
    # Mirror port: each copy's record at echo-mirror's proxy names the inbound cluster of the port it came in on (a
    # copy sent to the request's own port 8080 would show as inbound|8080||, and reach the app).
    records = records_for(mesh_platform, [("default", "echo-mirror")], to_port, mesh_timeouts, direction="inbound")
    clusters = Counter(str(rec.get("upstream_cluster")) for rec in records.values())
    mesh_result.figure("mirror_port_inbound_clusters", dict(clusters))
    assert set(clusters) == {INBOUND_ALT}, (
        f"every copy must reach echo-mirror on port {MIRROR_PORT} ({INBOUND_ALT}): its proxy logged {dict(clusters)}")
    assert all(r.status == 200 and r.json()["service"] == "echo" for r in to_port), outcomes(to_port)


@conformance_test("mirror-fraction", "mirrorPercentage 50: the share of request ids reaching the mirror is 0.5 "
                  "(tolerance 0.1, false-failure 1e-4); callers still see only the primary.",
                  features={"Mirroring"}, manifests=("mirroring/echo-mirror.yaml",), values={"percent": 50})
def test_mirror_fraction(mesh_platform, mesh_manifests, mesh_meshed_client, mesh_timeouts, mesh_result) -> None:
    wait_for_marker(mesh_meshed_client, Request("/probe", host="echo:8080"), mesh_manifests.marker, mesh_timeouts)
    path = f"/{new_marker('mirror')}"
    replies: list[Response] = []

    def send_batch(first: int, size: int) -> dict[str, int]:
        batch = mesh_meshed_client.send([Request(f"{path}/{i}", host="echo:8080") for i in range(first, first + size)],
                                        concurrency=20)
        replies.extend(batch)
        wanted = {r.request_id for r in batch}
        # Copies leave with their primaries, which have all completed; the count is final once no copy is
        # under way any more (or, where the platform cannot tell, once it has stopped growing).
        mirrored = await_settled(lambda: len(wanted & _mirrored_ids(mesh_platform, path)), mesh_timeouts,
                                 "the mirror's request count to settle",
                                 watch=under_way(mesh_platform, [("default", "client"), ("default", "echo-mirror")],
                                                 wanted))
        return {"mirrored": mirrored, "not_mirrored": size - mirrored}

    # Batches of 100: each waits for its copies to land, and a conforming mesh is decided after 1.4 of them on average.
    sample = measure_counted(send_batch, {"mirrored": 0.5, "not_mirrored": 0.5}, DEFAULT_ALPHA, MIRROR_TOLERANCE,
                             batch=100)
    mesh_result.figure("mirrored", sample.to_json())
    assert all(r.status == 200 and r.json()["service"] == "echo" for r in replies), \
        f"callers must get echo's own 200, never the mirror's answer: {outcomes(replies)} of {len(replies)}"
    assert sample.passed, sample.describe()
