"""Checksum-verified binaries: the release's own checksum file beside each asset gives the expected SHA-256, the
pinned table and --<tool>-sha256 cross-check it (a disagreement names both values and downloads nothing), a
corrupted or substituted download is refused before anything runs, a version with no checksum anywhere is never
fetched, concurrent workers download once, and a cached copy changed behind our back is fetched again. Downloads
come from a file server on loopback (the mirror option) or a file:// folder: never from the network."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
import tarfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from meshconform.platform.kind import binaries, tools


class FileServer:
    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.hits: Counter[str] = Counter()
        self.delay = 0.0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                server.hits[self.path] += 1
                time.sleep(server.delay)
                body = server.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def serve(self, art: binaries.Artifact, body: bytes, checksum: str | None = None) -> str:
        """Serve `body` as the asset and, if given, `checksum` as the release's checksum file beside it
        (in the release's own layout: `<hex>  <asset>`)."""
        path = art.url.removeprefix(self.url)
        self.files[path] = body
        if checksum is not None:
            self.files[art.checksum_url.removeprefix(self.url)] = f"{checksum}  {art.asset}\n".encode()
        return path


@pytest.fixture
def server() -> Iterator[FileServer]:
    found = FileServer()
    yield found
    found.httpd.shutdown()
    found.httpd.server_close()


def script(marker: Path, prints: str) -> bytes:
    """An executable that leaves `marker` when it runs, so a test can prove it never ran."""
    return (f"#!{sys.executable}\nimport pathlib\npathlib.Path({str(marker)!r}).write_text('ran')\n"
            f"print({prints!r})\n").encode()


def targz(member: str, body: bytes) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo(member)
        info.size = len(body)
        info.mode = 0o755
        tar.addfile(info, io.BytesIO(body))
    return buffer.getvalue()


def sha(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def test_a_good_download_is_verified_cached_and_runs(standins, server: FileServer, tmp_path: Path) -> None:
    body = script(tmp_path / "ran", "kind v0.33.0 go1.24.6 linux/amd64")
    art = binaries.artifact("kind", "v0.33.0", sha256=sha(body), mirror=server.url)
    path = server.serve(art, body)
    assert path == f"/kind/v0.33.0/kind-{binaries.host_platform()}"  # <mirror>/<tool>/<version>/<asset>
    binary = binaries.ensure(art)
    assert binary.read_bytes() == body and binary.stat().st_mode & 0o111
    assert binaries.reported_version("kind", binary) == "v0.33.0"
    assert binaries.ensure(art) == binary and server.hits[path] == 1  # cached: not fetched again
    record = json.loads((binary.parent / "verified.json").read_text())
    assert record["asset_sha256"] == sha(body) and record["source"].startswith("--kind-sha256 (checksum file "
                                                                             "unavailable: cannot read")


def test_the_releases_checksum_file_is_enough_for_any_version(standins, server: FileServer, tmp_path: Path) -> None:
    """istioctl 1.30.5 has no pinned value: its release's `.sha256` file (hex, two spaces, the asset's name)
    decides, on every platform Istio publishes (Intel macOS and linux-arm64 included)."""
    exe = script(tmp_path / "ran", "ok")
    for platform in binaries.PUBLISHED["istioctl"]:
        art = binaries.artifact("istioctl", "1.30.5", mirror=server.url, platform=platform)
        assert art.sha256 is None and art.checksum_url == art.url + ".sha256"
    art = binaries.artifact("istioctl", "1.30.5", mirror=server.url)
    archive = targz("istioctl", exe)
    server.serve(art, archive, checksum=sha(archive))
    binary = binaries.ensure(art)
    assert binary.read_bytes() == exe
    record = json.loads((binary.parent / "verified.json").read_text())
    assert record["asset_sha256"] == sha(archive) and record["source"].startswith("the release's checksum file")


def test_a_checksum_file_disagreeing_with_the_pinned_value_stops_before_the_download(
        standins, server: FileServer, tmp_path: Path) -> None:
    art = binaries.artifact("kind", mirror=server.url)
    if art.pinned is None:
        pytest.skip(f"no kind checksum is pinned for {art.platform}")
    body = script(tmp_path / "ran", "kind v0.33.0")
    path = server.serve(art, body, checksum=sha(body))  # a re-published release, or a wrong pinned value
    with pytest.raises(binaries.ChecksumConflict) as caught:
        binaries.ensure(art)
    message = str(caught.value)
    assert sha(body) in message and art.pinned in message and art.checksum_url in message
    assert server.hits[path] == 0 and not (tmp_path / "ran").exists()


def test_a_given_value_disagreeing_with_the_checksum_file_is_refused(standins, server: FileServer,
                                                                     tmp_path: Path) -> None:
    body = script(tmp_path / "ran", "x")
    art = binaries.artifact("kind", "v0.33.0", sha256="0" * 64, mirror=server.url, platform="linux-amd64")
    server.serve(art, body, checksum=sha(body))
    with pytest.raises(binaries.ChecksumConflict, match="--kind-sha256 says 0000"):
        binaries.ensure(art)


@pytest.mark.parametrize("tool", ["istioctl", "helm"])
def test_archives_yield_only_the_executable(standins, server: FileServer, tmp_path: Path, tool: str) -> None:
    exe = script(tmp_path / "ran", "ok")
    art = binaries.artifact(tool, None, sha256="0" * 64, mirror=server.url)
    archive = targz(art.member or "", exe)
    art = binaries.artifact(tool, None, sha256=sha(archive), mirror=server.url)
    server.serve(art, archive)
    binary = binaries.ensure(art)
    assert binary.name == tool and binary.read_bytes() == exe


def test_a_corrupted_download_is_refused_and_never_runs(standins, server: FileServer, tmp_path: Path) -> None:
    good = script(tmp_path / "ran", "kind v0.33.0 go1.24.6 linux/amd64")
    art = binaries.artifact("kind", "v0.33.0", sha256=sha(good), mirror=server.url)
    server.serve(art, good[:-1] + b"#")  # one byte differs
    with pytest.raises(binaries.ChecksumMismatch) as caught:
        binaries.ensure(art)
    assert f"expected {sha(good)}" in str(caught.value) and "nothing was run" in str(caught.value)
    folder = binaries.cache_root() / "bin" / "kind" / "v0.33.0"
    assert not [p for p in folder.rglob("*") if p.is_file() and p.name not in (".lock",)], "a refused file stayed"
    assert not (tmp_path / "ran").exists()


def test_the_pinned_table_is_what_a_substituted_binary_is_checked_against(standins, server: FileServer,
                                                                         tmp_path: Path) -> None:
    art = binaries.artifact("kind", mirror=server.url)  # the default: v0.33.0, checksum from the pinned table
    if art.sha256 is None:
        pytest.skip(f"no kind checksum is pinned for {art.platform}")
    assert art.sha_source.startswith("pinned (kind's published <asset>.sha256sum files")
    server.serve(art, script(tmp_path / "ran", "kind v0.33.0"))
    with pytest.raises(binaries.ChecksumMismatch, match=art.sha256):
        binaries.ensure(art)
    assert not (tmp_path / "ran").exists()


def test_no_known_checksum_means_no_download(standins, server: FileServer) -> None:
    art = binaries.artifact("istioctl", "1.30.5", mirror=server.url)
    assert art.sha256 is None
    with pytest.raises(binaries.ChecksumUnknown) as caught:
        binaries.ensure(art)
    assert "Pass --istioctl-sha256" in str(caught.value) and art.checksum_url in str(caught.value)
    assert list(server.hits) == [art.checksum_url.removeprefix(server.url)]  # the asset itself was never asked


def test_a_cached_binary_changed_behind_our_back_is_fetched_again(standins, server: FileServer,
                                                                  tmp_path: Path) -> None:
    body = script(tmp_path / "ran", "x")
    art = binaries.artifact("kind", "v0.33.0", sha256=sha(body), mirror=server.url)
    path = server.serve(art, body)
    binary = binaries.ensure(art)
    binary.write_bytes(b"#!/bin/sh\necho substituted\n")
    assert binaries.ensure(art).read_bytes() == body and server.hits[path] == 2


def test_file_urls_work_as_a_mirror(standins, tmp_path: Path) -> None:
    body = script(tmp_path / "ran", "x")
    mirror = tmp_path / "mirror"
    art = binaries.artifact("kind", "v0.32.0", sha256=sha(body), mirror=mirror.as_uri())
    target = mirror / "kind" / "v0.32.0" / art.asset
    target.parent.mkdir(parents=True)
    target.write_bytes(body)
    assert binaries.ensure(art).read_bytes() == body


def test_concurrent_workers_download_once(standins, server: FileServer, tmp_path: Path) -> None:
    body = script(tmp_path / "ran", "x")
    art = binaries.artifact("kind", "v0.33.0", sha256=sha(body), mirror=server.url)
    path = server.serve(art, body)
    server.delay = 1.0  # both workers are waiting while the first download is in flight
    code = ("import sys; from meshconform.platform.kind import binaries; "
            f"art = binaries.artifact('kind', 'v0.33.0', sha256={sha(body)!r}, mirror={server.url!r}); "
            "print(binaries.ensure(art))")
    workers = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [w.communicate(timeout=60)[0].strip() for w in workers]
    assert all(w.returncode == 0 for w in workers)
    assert outputs[0] == outputs[1] and server.hits[path] == 1


def test_archive_without_the_executable_is_refused(standins, server: FileServer) -> None:
    archive = targz("../istioctl", b"x")  # not the member we take, and outside the folder
    art = binaries.artifact("istioctl", None, sha256=sha(archive), mirror=server.url)
    server.serve(art, archive)
    with pytest.raises(Exception, match="has no istioctl inside"):
        binaries.ensure(art)


def test_a_bad_checksum_option_is_named() -> None:
    with pytest.raises(Exception, match="--kind-sha256: 'abc' is not a SHA-256"):
        binaries.artifact("kind", sha256="abc")


def test_official_urls_follow_the_release_layouts() -> None:
    assert binaries.official_url("kind", "v0.33.0", "darwin-arm64") == \
        "https://github.com/kubernetes-sigs/kind/releases/download/v0.33.0/kind-darwin-arm64"
    assert binaries.official_url("istioctl", "1.31.1", "darwin-arm64") == \
        "https://github.com/istio/istio/releases/download/1.31.1/istioctl-1.31.1-osx-arm64.tar.gz"
    assert binaries.official_url("helm", "v4.2.4", "linux-amd64") == "https://get.helm.sh/helm-v4.2.4-linux-amd64.tar.gz"
    for (tool, version, platform), (value, source) in binaries.PINNED.items():
        assert len(value) == 64 and int(value, 16) >= 0 and source, (tool, version, platform)
    # CI runs on linux-amd64: every default version has a pinned value there to cross-check the checksum file.
    assert all(binaries.artifact(t, platform="linux-amd64").sha256 for t in binaries.TOOLS)
    assert binaries.artifact("kind", "v0.33.0", platform="darwin-amd64").checksum_url == \
        "https://github.com/kubernetes-sigs/kind/releases/download/v0.33.0/kind-darwin-amd64.sha256sum"
    with pytest.raises(Exception, match="kind publishes no release for windows-arm64"):
        binaries.artifact("kind", platform="windows-arm64")


def test_a_binary_the_user_has_is_version_checked(standins) -> None:
    standins.tool("kind", [{"args": ["version"], "stdout": "kind v0.32.0 go1.24.2 linux/amd64\n"}])
    standins.tool("helm", [{"args": ["version", "--short"], "stdout": "v4.2.4+g3900f43\n"}])
    standins.tool("istioctl", [{"args": ["version", "--remote=false", "-o", "json"],
                                "stdout": json.dumps({"clientVersion": {"version": "1.31.1"}})}])
    assert binaries.user_binary("kind", "kind", "v0.32.0") == standins.bin / "kind"
    assert binaries.user_binary("helm", "helm", "4.2.4").name == "helm"
    assert binaries.user_binary("istioctl", str(standins.bin / "istioctl"), "1.31.1").name == "istioctl"
    with pytest.raises(binaries.VersionMismatch, match="is kind v0.32.0, not v0.33.0"):
        binaries.user_binary("kind", "kind", "v0.33.0")
    with pytest.raises(tools.ToolMissing, match="--kind-binary kind9: not found on PATH"):
        binaries.user_binary("kind", "kind9", None)


def test_unreadable_version_output_is_named(standins) -> None:
    standins.tool("kind", [{"args": ["version"], "stdout": "kin"}])  # cut short
    with pytest.raises(tools.ToolOutputError, match="printed no version"):
        binaries.reported_version("kind", "kind")
