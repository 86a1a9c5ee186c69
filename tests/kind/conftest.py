"""Fixtures for the kind/cluster contract tests: stand-in executables on a PATH that holds nothing else
(so a real docker, podman or kind on the machine is never reached), and a private binary cache."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from meshconform.platform.kind.settings import kind_settings, mesh_settings

HERE = Path(__file__).parent
STANDIN = HERE / "standin.py"
if str(HERE) not in sys.path:  # the test modules import recorded_output (outputs with their sources)
    sys.path.insert(0, str(HERE))


class Standins:
    def __init__(self, root: Path) -> None:
        self.dir = root
        self.bin = root / "bin"
        self.bin.mkdir(parents=True, exist_ok=True)

    def tool(self, name: str, rules: list[dict[str, Any]]) -> Path:
        """Put a stand-in `name` on PATH replaying `rules` (see standin.py)."""
        (self.dir / f"{name}.json").write_text(json.dumps(rules))
        (self.dir / f"{name}.used.json").unlink(missing_ok=True)
        path = self.bin / name
        path.write_text(f"#!{sys.executable}\n" + STANDIN.read_text())
        path.chmod(0o755)
        return path

    def calls(self, tool: str | None = None) -> list[dict[str, Any]]:
        log = self.dir / "calls.jsonl"
        if not log.exists():
            return []
        calls = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
        return [c for c in calls if tool is None or c["tool"] == tool]

    def argvs(self, tool: str | None = None) -> list[list[str]]:
        return [[c["tool"], *c["args"]] for c in self.calls(tool)]


@pytest.fixture
def standins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Standins:
    found = Standins(tmp_path / "standins")
    monkeypatch.setenv("STANDIN_DIR", str(found.dir))
    monkeypatch.setenv("PATH", str(found.bin))  # nothing else: no real docker/podman/kind/istioctl/helm
    monkeypatch.setenv("MESHCONFORM_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("KIND_EXPERIMENTAL_PROVIDER", raising=False)
    monkeypatch.delenv("KUBECONFIG", raising=False)
    return found


@pytest.fixture
def make_settings() -> Any:
    """(MeshSettings, KindSettings) from option values keyed by dest."""
    def make(**values: Any) -> tuple[Any, Any]:
        return mesh_settings(values), kind_settings(values)
    return make


class FakeApiServer:
    """A loopback HTTP server answering GET paths with canned Kubernetes JSON (shapes from the API
    reference), and a kubeconfig pointing at it."""

    def __init__(self, folder: Path) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        self.routes: dict[str, Any] = {}
        self.seen: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                server.seen.append(self.path)
                path = self.path.split("?")[0].rstrip("/")
                body = json.dumps(server.routes.get(path, {"kind": "Status", "code": 404})).encode()
                self.send_response(200 if path in server.routes else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.kubeconfig = folder / "fake-apiserver.kubeconfig"
        import yaml
        self.kubeconfig.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "ctx",
            "clusters": [{"name": "c", "cluster": {"server": f"http://127.0.0.1:{self.httpd.server_address[1]}"}}],
            "users": [{"name": "u", "user": {"token": "not-a-real-token"}}],
            "contexts": [{"name": "ctx", "context": {"cluster": "c", "user": "u"}}]}))


@pytest.fixture
def apiserver(tmp_path: Path) -> Any:
    pytest.importorskip("kubernetes")
    server = FakeApiServer(tmp_path)
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()
