"""`meshconform perf` on platforms that cannot run every phase (kind, cluster): which phases run, which are refused
and why, before anything is brought up; the platform chosen through the registry; the mesh cost's proxy figures
naming what they measured (working set from the kubelet, not RSS)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from click.testing import CliRunner

from meshconform.errors import PlatformError
from meshconform.perf import cost, phases, targets
from meshconform.perf.cli import perf
from meshconform.platform.api import LoadTarget, ProxyUsage
from meshconform.platform.session import PlatformChoice, PlatformSession

IN_MESH = {"in-mesh": "outside the cluster"}
KIND = {**IN_MESH}
CLUSTER = {**IN_MESH, "mesh": "cannot publish", "no-mesh": "cannot publish"}


def test_by_default_every_phase_the_platform_offers_runs_and_the_rest_is_listed() -> None:
    assert phases.choose(None, {}, "local") == phases.Choice(["scenarios", "in-mesh", "mesh-cost"], {})
    kind = phases.choose(None, KIND, "kind")
    assert kind.run == ["scenarios", "mesh-cost"] and list(kind.not_run) == ["in-mesh"]
    assert "no 'in-mesh' target: outside the cluster" in kind.not_run["in-mesh"]
    cluster = phases.choose(None, CLUSTER, "cluster")
    assert cluster.run == ["scenarios"] and set(cluster.not_run) == {"in-mesh", "mesh-cost"}
    assert cluster.not_run["mesh-cost"] == "no 'mesh' target: cannot publish; no 'no-mesh' target: cannot publish"


def test_a_named_phase_the_platform_cannot_run_is_refused_with_the_option_to_drop_it() -> None:
    with pytest.raises(PlatformError) as caught:
        phases.choose(["scenarios", "in-mesh", "mesh-cost"], KIND, "kind")
    message = str(caught.value)
    assert "kind platform cannot run phase(s) in-mesh" in message and "outside the cluster" in message
    assert message.endswith("Drop them: --phases scenarios,mesh-cost")
    with pytest.raises(PlatformError, match="Drop them: another platform"):
        phases.choose(["mesh-cost"], CLUSTER, "cluster")
    assert phases.choose(["mesh-cost"], KIND, "kind").run == ["mesh-cost"]
    with pytest.raises(PlatformError, match="can run none of perf's phases"):
        phases.choose(None, {t: "no" for t in ("ingress", "in-mesh", "mesh", "no-mesh")}, "odd")


def test_a_phase_offered_by_design_but_missing_this_time_is_refused() -> None:
    """e.g. a reused kind cluster without perf's port mappings: never a silently smaller result."""
    choice = phases.choose(None, KIND, "kind")
    ingress = {"ingress": object()}
    with pytest.raises(PlatformError) as caught:
        phases.check_offered(choice, ingress, {**KIND, "mesh": "no host port for nodePort 30090"}, "kind")
    assert "cannot run phase mesh-cost this time" in str(caught.value)
    assert "no 'mesh' target: no host port for nodePort 30090" in str(caught.value)
    assert "--phases scenarios" in str(caught.value)
    phases.check_offered(choice, {**ingress, "mesh": 1, "no-mesh": 2}, KIND, "kind")


class Platform:
    """A SupportsLoad platform that records what perf asks of it."""

    name = "kind"

    def __init__(self, unavailable: dict[str, str]) -> None:
        self.unavailable = unavailable
        self.log: list[str] = []

    def unavailable_load_targets(self) -> dict[str, str]:
        return self.unavailable

    def load_targets(self, service: str = "productpage", port: int = 9080,
                     plain_namespace: str | None = None) -> dict[str, LoadTarget]:
        return {}

    def proxy_usage(self) -> dict[str, ProxyUsage]:
        return {}

    def up(self) -> None:
        self.log.append("up")

    def down(self) -> None:
        self.log.append("down")

    def detach(self) -> None:
        self.log.append("detach")


def _made_here(platform: Platform) -> PlatformSession:
    """A session holding `platform` as one it created (so closing it takes it down)."""
    session = PlatformSession(PlatformChoice.of("local"), preflighted=True)
    session.platform, session.created = platform, True  # type: ignore[assignment]
    return session


def test_perf_refuses_before_bringing_a_platform_up(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    made = Platform(KIND)
    monkeypatch.setattr(targets, "_found_or_created", lambda run_dir, name, settings: _made_here(made))
    with pytest.raises(PlatformError, match="cannot run phase\\(s\\) in-mesh"):
        with targets.attached(tmp_path, ["in-mesh"], platform_name="kind"):
            pass
    assert made.log == ["down"]  # never up; what was created is taken down


def test_perf_refuses_right_after_up_what_the_running_platform_lacks(monkeypatch, tmp_path) -> None:
    """kind offers mesh-cost by design; a reused cluster without the port mappings does not: refused after up,
    before anything is applied, and the platform goes down again."""
    made = Platform(KIND)

    def up() -> None:
        made.log.append("up")
        made.unavailable = {**KIND, "mesh": "no host port for nodePort 30090"}
    made.up = up  # type: ignore[method-assign]
    monkeypatch.setattr(targets, "_found_or_created", lambda run_dir, name, settings: _made_here(made))
    with pytest.raises(PlatformError, match="cannot run phase mesh-cost this time .*nodePort 30090"):
        with targets.attached(tmp_path, None, platform_name="kind"):
            pass
    assert made.log == ["up", "down"]


def test_perf_takes_its_platform_from_the_registry_with_that_platforms_options(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("MESHCONFORM_REPORTS", str(tmp_path / "reports"))
    runner = CliRunner()
    foreign = runner.invoke(perf, ["--platform", "local", "--kubeconfig", str(tmp_path / "k"), "--duration", "1"])
    assert foreign.exit_code != 0 and "--kubeconfig is an option of platform" in str(foreign.exception)
    seen: dict[str, Any] = {}

    def found(run_dir: Path, name: str | None, settings: dict[str, Any] | None) -> Any:
        seen.update(name=name, settings=settings)
        raise PlatformError("stop here")
    monkeypatch.setattr(targets, "_found_or_created", found)
    result = runner.invoke(perf, ["--platform", "kind", "--kind-cluster-name", "mine", "--phases", "scenarios"])
    assert "stop here" in str(result.exception)
    assert seen == {"name": "kind", "settings": {"kind_cluster_name": "mine"}}
    assert "--platform" in runner.invoke(perf, ["--help"]).output


def _kube_sample(cpu: float, read_at: float | None, memory: int = 40 * 2**20) -> ProxyUsage:
    return ProxyUsage(cpu, memory, "working set (container_memory_working_set_bytes; not the resident set size)",
                      "kubelet resource metrics (/metrics/resource through the API server's node proxy)", read_at)


def test_the_proxy_cost_names_its_source_and_uses_the_kubelets_reading_times() -> None:
    """The kubelet refreshes its stats every few seconds: over a 20 s window sampled at t0..t0+20, readings taken
    at t0-4 and t0+16 (cpu 10 -> 12: 0.1 core) stand for 0.1 core over the 20 sampled seconds, i.e. 2 CPU-s."""
    t0 = 1_800_000_000.0
    page, gateway = "default/productpage-v1-7f9c8d6b5-x2k9p", "istio-system/istio-ingressgateway-5d8f9c7b6-q7w2e"
    samples = [(t0, {page: _kube_sample(10.0, t0 - 4), gateway: _kube_sample(1.0, t0 - 4)}),
               (t0 + 20, {page: _kube_sample(12.0, t0 + 16), gateway: _kube_sample(5.0, t0 + 16)})]
    outcome = SimpleNamespace(proxy_samples=samples, start_epoch=t0, end_epoch=t0 + 20, window_s=20.0,
                              spec=SimpleNamespace(targets=[1, 2]))
    figures = cost.proxy_cost(outcome, mesh_requests=1000)  # type: ignore[arg-type]
    assert figures["proxies"] == [page]  # the gateway is not on the mesh-cost path
    assert figures["cpu_seconds"] == 2.0 and figures["cpu_vcpu_per_1000rps"] == 2.0
    assert figures["memory_mib"] == 40.0 and figures["memory_metric"].startswith("working set")
    assert "kubelet" in figures["source"] and "not the resident set size" in figures["note"]
    stale = [(t0, {page: _kube_sample(10.0, t0 - 4)}), (t0 + 20, {page: _kube_sample(10.0, t0 - 4)})]
    outcome.proxy_samples = stale
    assert "was not refreshed within the window" in cost.proxy_cost(outcome, 1000)["note"]  # type: ignore[arg-type]


def test_the_local_platforms_usage_still_says_resident_set_size() -> None:
    t0 = 1_800_000_000.0
    page = "default/productpage-v1-0"
    samples = [(t0, {page: ProxyUsage(1.0, 30 * 2**20)}), (t0 + 10, {page: ProxyUsage(1.5, 30 * 2**20)})]
    outcome = SimpleNamespace(proxy_samples=samples, start_epoch=t0, end_epoch=t0 + 10, window_s=10.0,
                              spec=SimpleNamespace(targets=[1, 2]))
    figures = cost.proxy_cost(outcome, mesh_requests=500)  # type: ignore[arg-type]
    assert figures["cpu_seconds"] == 0.5 and figures["memory_metric"] == "resident set size"
    assert figures["source"] == "process accounting (psutil)"
