"""References Istio accepts but cannot work (meshapi.analyze), the CLI's apply printing them, and
an empty or binary file given to apply being an error."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from meshconform import cli
from meshconform.errors import ConfigError
from meshconform.meshapi.analyze import AnalysisWarning, analyze, fqdn
from meshconform.meshapi.loader import Sourced, line_of, load_files, load_text
from meshconform.platform.api import Applied

WORKLOADS = """
apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: default}
spec:
  selector: {app: reviews}
  ports: [{port: 9080}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: reviews-v1, namespace: default}
spec:
  template:
    metadata: {labels: {app: reviews, version: v1}}
    spec: {containers: [{name: reviews, image: reviews}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: reviews-v2, namespace: default}
spec:
  template:
    metadata: {labels: {app: reviews, version: v2, track: canary}}
    spec: {containers: [{name: reviews, image: reviews}]}
"""
NAMESPACES = """
apiVersion: v1
kind: Namespace
metadata: {name: prod}
"""
RULE = """
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec:
  host: reviews
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2, track: canary}}
"""
GATEWAY = """
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: bookinfo-gateway, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ["*"]}]
"""


def route(subset: str = "v1", gateways: str = "", host: str = "reviews", mirror: str = "") -> str:
    return f"""
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: reviews, namespace: default}}
spec:
  hosts: [reviews]
  {f"gateways: [{gateways}]" if gateways else ""}
  http:
  - route:
    - {{destination: {{host: {host}, subset: {subset}}}, weight: 90}}
    - {{destination: {{host: reviews}}, weight: 10}}
    {f"mirror: {{host: reviews, subset: {mirror}}}" if mirror else ""}
"""


def items(*texts: str) -> list[Sourced]:
    return [item for text in texts for item in load_text(text, "test.yaml")]


def codes(warnings: list[AnalysisWarning]) -> list[tuple[str, str, str]]:
    return [(w.code, w.resource, w.field) for w in warnings]


def test_consistent_config_has_no_warning() -> None:
    assert analyze(items(route(gateways="bookinfo-gateway, mesh"), RULE, GATEWAY), items(WORKLOADS)) == []


def test_subset_no_destination_rule_defines() -> None:
    [warning] = analyze(items(route(subset="v3"), RULE), items(WORKLOADS))
    assert (warning.code, warning.name) == ("IST0101", "ReferencedResourceNotFound")
    assert warning.field == "spec.http[0].route[0].destination.subset"
    assert '"v3"' in warning.message and "reviews.default.svc.cluster.local" in warning.message
    assert str(warning).startswith("Error [IST0101] (VirtualService default/reviews test.yaml) ")


def test_subset_without_any_destination_rule_and_in_a_mirror() -> None:
    found = analyze(items(route(subset="v1", mirror="v9")))
    assert codes(found) == [("IST0101", "reviews", "spec.http[0].route[0].destination.subset"),
                            ("IST0101", "reviews", "spec.http[0].mirror.subset")]


def test_destination_rule_for_another_host_or_namespace_does_not_count() -> None:
    other = RULE.replace("host: reviews", "host: ratings")
    assert codes(analyze(items(route(), other))) == [("IST0101", "reviews", "spec.http[0].route[0].destination.subset")]
    elsewhere = RULE.replace("namespace: default", "namespace: prod")  # reviews.prod is another host
    assert len(analyze(items(route(), elsewhere))) == 1
    fully_qualified = RULE.replace("host: reviews", "host: reviews.default.svc.cluster.local")
    assert analyze(items(route(), fully_qualified)) == []
    wildcard = RULE.replace("host: reviews", 'host: "*.default.svc.cluster.local"')
    assert analyze(items(route(), wildcard)) == []


def test_gateway_that_does_not_exist() -> None:
    found = analyze(items(route(gateways="bookinfo-gatewy, mesh, istio-system/ingress"), RULE, GATEWAY))
    assert codes(found) == [("IST0101", "reviews", "spec.gateways[0]"), ("IST0101", "reviews", "spec.gateways[2]")]
    assert '"default/bookinfo-gatewy"' in found[0].message and '"istio-system/ingress"' in found[1].message


def test_gateway_in_another_namespace_by_reference() -> None:
    gateway = GATEWAY.replace("namespace: default", "namespace: istio-system")
    assert analyze(items(route(gateways="istio-system/bookinfo-gateway"), RULE, gateway)) == []
    assert len(analyze(items(route(gateways="bookinfo-gateway"), RULE, gateway))) == 1


def test_context_counts_and_new_versions_replace_it() -> None:
    # The DestinationRule is already on the platform: no warning for a VirtualService applied later.
    assert analyze(items(route()), context=items(RULE, WORKLOADS)) == []
    # The version being applied replaces the one on the platform: removing subset v1 breaks the
    # route already there, which is warned about as a consequence of this apply.
    without_v1 = RULE.replace("  - {name: v1, labels: {version: v1}}\n", "")
    found = analyze(items(without_v1), context=items(RULE, route(), WORKLOADS))
    assert codes(found) == [("IST0101", "reviews", "spec.http[0].route[0].destination.subset")]
    # A problem already there before, on something not applied now, is not repeated...
    assert analyze(items(GATEWAY), context=items(route(subset="v7"))) == []
    # ... but applying the broken resource again warns again.
    assert len(analyze(items(route(subset="v7")), context=items(route(subset="v7")))) == 1


def test_subset_whose_labels_select_no_pod() -> None:
    rule = RULE + "  - {name: v4, labels: {version: v4}}\n  - {name: mixed, labels: {version: v1, track: canary}}\n"
    found = analyze(items(rule), items(WORKLOADS))
    assert codes(found) == [("IST0173", "reviews", "spec.subsets[2].labels"),
                            ("IST0173", "reviews", "spec.subsets[3].labels")]
    assert found[0].name == "DestinationRuleSubsetNotSelectPods" and '"v4"' in found[0].message
    # Without the service and its Deployments known, pods are not judged (no guess).
    assert analyze(items(rule)) == []


def test_host_resolution() -> None:
    assert fqdn("reviews", "default") == "reviews.default.svc.cluster.local"
    assert fqdn("reviews.prod", "default") == "reviews.prod.svc.cluster.local"
    assert fqdn("reviews.prod.svc.cluster.local", "default") == "reviews.prod.svc.cluster.local"
    assert fqdn("*.example.com", "default") == "*.example.com"


def destination(host: str, port: str = "", mirror: str = "", namespace: str = "default", export_to: str = "") -> str:
    return f"""
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: front, namespace: {namespace}}}
spec:
  hosts: [front.example.com]
  {f"exportTo: [{export_to}]" if export_to else ""}
  http:
  - route: [{{destination: {{host: {host}{f", port: {{number: {port}}}" if port else ""}}}}}]
    {f"mirror: {{host: {mirror}}}" if mirror else ""}
"""


def entry(hosts: str, namespace: str = "default", export_to: str = "", ports: str = "[{number: 80, name: http}]"
          ) -> str:
    return f"""
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: outside, namespace: {namespace}}}
spec:
  hosts: [{hosts}]
  ports: {ports}
  {f"exportTo: [{export_to}]" if export_to else ""}
"""


def hosts_found(*texts: str, context: tuple[str, ...] = (WORKLOADS,)) -> list[tuple[str, str]]:
    return [(w.field, w.message) for w in analyze(items(*texts), items(*context), registry_known=True)]


def test_route_to_a_host_no_service_provides() -> None:
    """istioctl's DestinationHostAnalyzer: a route's or a mirror's host must be a Service or a ServiceEntry host
    visible to the VirtualService, and a port it names must be one of that host's ports."""
    assert hosts_found(destination("reviews")) == []
    assert hosts_found(destination("reviews.default.svc.cluster.local", port="9080")) == []
    [warning] = analyze(items(destination("httpbin", port="8000")), items(WORKLOADS), registry_known=True)
    assert (warning.code, warning.level, warning.name) == ("IST0101", "Error", "ReferencedResourceNotFound")
    assert str(warning) == ('Error [IST0101] (VirtualService default/front test.yaml) '
                            'spec.http[0].route[0].destination.host: Referenced host not found: "httpbin"')
    assert hosts_found(destination("reviews", mirror="reviews-shadow")) == [
        ("spec.http[0].mirror.host", 'Referenced mirror host not found: "reviews-shadow"')]
    assert hosts_found(destination("reviews", port="8000")) == [
        ("spec.http[0].route[0].destination.port.number", 'Referenced host:port not found: "reviews:8000"')]
    # Another namespace's service by its short name is another host.
    assert hosts_found(destination("reviews", namespace="prod"), context=(WORKLOADS, NAMESPACES)) == [
        ("spec.http[0].route[0].destination.host", 'Referenced host not found: "reviews"')]


def test_service_entry_hosts_count_where_they_are_exported() -> None:
    assert hosts_found(destination("api.example.com"), entry("api.example.com")) == []
    assert hosts_found(destination("api.example.com", port="443"), entry("api.example.com")) == [
        ("spec.http[0].route[0].destination.port.number", 'Referenced host:port not found: "api.example.com:443"')]
    assert hosts_found(destination("api.example.com"), entry('"*.example.com"')) == []
    # exportTo ".": visible in its own namespace only.
    hidden = entry("api.example.com", namespace="prod", export_to='"."')
    assert hosts_found(destination("api.example.com"), hidden, context=(WORKLOADS, NAMESPACES)) == [
        ("spec.http[0].route[0].destination.host", 'Referenced host not found: "api.example.com"')]
    assert hosts_found(destination("api.example.com", namespace="prod"), hidden, context=(WORKLOADS, NAMESPACES)) == []
    # A Service hidden by its exportTo annotation is not found from another namespace.
    private = WORKLOADS.replace("metadata: {name: reviews, namespace: default}",
                                'metadata: {name: reviews, namespace: default, annotations: '
                                '{networking.istio.io/exportTo: "."}}')
    assert hosts_found(destination("reviews.default.svc.cluster.local", namespace="prod"),
                       context=(private, NAMESPACES)) == [
        ("spec.http[0].route[0].destination.host", 'Referenced host not found: "reviews.default.svc.cluster.local"')]


def test_hosts_are_not_judged_without_the_platform_registry() -> None:
    """On a cluster the Services are not among what meshconform applied: a host is not called missing there."""
    assert analyze(items(destination("httpbin")), items(WORKLOADS)) == []
    assert analyze(items(destination("httpbin"))) == []


def test_empty_file_is_an_error(tmp_path: Path) -> None:
    empty, comments = tmp_path / "empty.yaml", tmp_path / "comments.yaml"
    empty.write_text("")
    comments.write_text("# nothing here\n---\n")
    for path in (empty, comments):
        with pytest.raises(ConfigError, match=f"^no resources in {path}$") as caught:
            load_files([path])
        assert caught.value.source == str(path)
    with pytest.raises(ConfigError, match="no resources in <test>"):
        load_text("\n", "<test>")


def test_cli_apply_of_an_empty_file_says_so(tmp_path: Path) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text("---\n")
    run = subprocess.run([sys.executable, "-c", "from meshconform.cli import main; main()", "apply", "-f", str(empty)],
                         capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert run.returncode == 1 and run.stderr.strip() == f"error: no resources in {empty}", run.stderr


class _Platform:
    """The CLI's view of a running platform: what it holds, listed through the declared capability
    (`SupportsListing`; the CLI and the evidence asked for a `resources()` only the local platform has), and what
    it was asked to apply."""

    def __init__(self, holds: list[Sourced]) -> None:
        self.holds = holds
        self.asked: list[Sourced] = []

    def applied(self) -> list[Applied]:
        return [Applied(item, 0.0) for item in self.holds]

    def apply(self, resources: list[Sourced]) -> None:
        self.asked.extend(resources)


def test_a_tests_config_warnings_are_judged_with_what_a_listing_platform_holds() -> None:
    from meshconform.fixtures.evidence import config_warnings
    found = config_warnings(_Platform(items(WORKLOADS)), items(destination("httpbin")))  # type: ignore[arg-type]
    assert [(w["code"], w["message"]) for w in found] == [("IST0101", 'Referenced host not found: "httpbin"')]


def test_cli_apply_warns_on_stderr_and_applies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    manifest = tmp_path / "vs.yaml"
    manifest.write_text(route(subset="v3", gateways="missing-gateway"))
    platform = _Platform(items(RULE, WORKLOADS))
    monkeypatch.setattr(cli, "_attached", lambda name: platform)
    result = CliRunner().invoke(cli.cli, ["apply", "-f", str(manifest)])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "VirtualService default/reviews applied"
    warnings = result.stderr.strip().splitlines()
    assert len(warnings) == 2
    assert all(w.startswith(f"Error [IST0101] (VirtualService default/reviews {manifest}:") for w in warnings)
    # The lines of `gateways:` (a flow list: its key's line) and of the route's `subset`, as istioctl points at them.
    lines = route(subset="v3", gateways="missing-gateway").splitlines()
    expected = [next(i for i, text in enumerate(lines, 1) if word in text) for word in ("gateways:", "subset: v3")]
    assert [int(w.split(f"{manifest}:")[1].split(")")[0]) for w in warnings] == expected
    assert "gateway" in warnings[0] and 'subset "v3"' in warnings[1]
    assert [item.resource.ref for item in platform.asked] == ["VirtualService default/reviews"]


def test_cli_apply_of_httpbin_gateway_where_there_is_no_httpbin_gives_istioctls_error(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Istio's httpbin-gateway.yaml on a platform without httpbin: applied (Istio accepts it), with the finding
    `istioctl analyze` prints for it."""
    from meshconform.platform.local.platform import base_manifests
    manifest = Path(__file__).parent / "samples" / "httpbin-gateway.yaml"
    platform = _Platform(load_files(base_manifests()))
    monkeypatch.setattr(cli, "_attached", lambda name: platform)
    result = CliRunner().invoke(cli.cli, ["apply", "-f", str(manifest)])
    assert result.exit_code == 0, result.output
    # As istioctl prints it: the line of the route's `host` in the file (26), then its details.
    assert result.stderr.strip() == (f"Error [IST0101] (VirtualService default/httpbin {manifest}:26) "
                                     'Referenced host not found: "httpbin"')
    assert [item.resource.ref for item in platform.asked] == ["Gateway default/httpbin-gateway",
                                                                "VirtualService default/httpbin"]


def test_a_binary_file_is_named_and_nothing_is_applied(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    picture = tmp_path / "diagram.png"
    picture.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    with pytest.raises(ConfigError, match=r"not a text file \(a PNG image\): byte 0x89 at offset 0") as caught:
        load_files([picture])
    assert caught.value.source == str(picture)
    # Through the CLI: one line naming the file, no traceback, and nothing applied although the first file is fine.
    good = tmp_path / "vs.yaml"
    good.write_text(route())
    run = subprocess.run([sys.executable, "-m", "meshconform.cli", "apply", "-f", str(good), "-f", str(picture)],
                         capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert run.returncode == 1 and run.stdout == "", run.stdout
    assert run.stderr == (f"error: {picture}: not a text file (a PNG image): byte 0x89 at offset 0 is not UTF-8; "
                          "give a YAML manifest\n"), run.stderr
    platform = _Platform([])
    monkeypatch.setattr(cli, "_attached", lambda name: platform)
    result = CliRunner().invoke(cli.cli, ["apply", "-f", str(good), "-f", str(picture)])
    assert isinstance(result.exception, ConfigError) and platform.asked == []


def test_a_findings_line_is_where_its_field_is_written(tmp_path: Path) -> None:
    manifest = Path(__file__).parent / "samples" / "httpbin-gateway.yaml"
    host = "spec.http[0].route[0].destination.host"
    assert line_of(str(manifest), "VirtualService", "default", "httpbin", host) == 26
    assert line_of(str(manifest), "VirtualService", "default", "httpbin", "spec.gateways[0]") == 22
    # A field not written there (a default): the resource's first line; a resource or file not there: no line.
    assert line_of(str(manifest), "VirtualService", "default", "httpbin", "spec.http[0].timeout") == 16
    assert line_of(str(manifest), "VirtualService", "prod", "httpbin", "spec.gateways[0]") is None
    assert line_of(str(tmp_path / "gone.yaml"), "VirtualService", "default", "httpbin", "spec.gateways[0]") is None
    assert line_of("<test>", "VirtualService", "default", "httpbin", "spec") is None


def test_apply_takes_a_folder_and_standard_input_as_kubectl_does(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """`apply -f bookinfo/networking/` and `... | apply -f -` (kubectl habits) were refused by click ("is a
    directory", "'-' does not exist"). A folder gives its .yaml/.yml/.json files in name order, not its subfolders'."""
    folder = tmp_path / "rules"
    (folder / "nested").mkdir(parents=True)
    (folder / "b.yml").write_text(RULE)
    (folder / "a.yaml").write_text(route(subset="v1"))
    (folder / "notes.txt").write_text("not a manifest")
    (folder / "nested" / "c.yaml").write_text(destination("reviews"))
    platform = _Platform(items(WORKLOADS))
    monkeypatch.setattr(cli, "_attached", lambda name: platform)
    result = CliRunner().invoke(cli.cli, ["apply", "-f", str(folder), "-f", "-"], input=destination("reviews"))
    assert result.exit_code == 0, result.output
    assert [(item.resource.ref, Path(item.source).name) for item in platform.asked] == [
        ("VirtualService default/reviews", "a.yaml"), ("DestinationRule default/reviews", "b.yml"),
        ("VirtualService default/front", "<stdin>")]
    empty = tmp_path / "empty"
    empty.mkdir()
    refused = CliRunner().invoke(cli.cli, ["apply", "-f", str(empty)])
    assert refused.exit_code == 1 and isinstance(refused.exception, ConfigError)
    assert str(refused.exception) == f"{empty}: no .yaml, .yml, .json file in this folder"


def test_a_platform_with_an_attribute_named_applied_is_not_taken_for_one_that_lists() -> None:
    """runtime_checkable's isinstance sees only the name: a platform keeping a dict called `applied` passed for
    SupportsListing, and `up -f` then failed with "'dict' object is not callable"."""
    from meshconform.platform.api import everything_applied

    class KeepsADict:
        applied: dict[str, object] = {}
    assert everything_applied(KeepsADict()) is None
    assert everything_applied(_Platform(items(RULE))) == items(RULE)
