"""The external binaries (kind, istioctl, helm): pinned versions, official release URLs, a cache in the user
cache directory, and a SHA-256 check BEFORE anything is extracted, made executable or run (a mismatch deletes
the download and raises `ChecksumMismatch`). Concurrent workers download once (a file lock per artifact). A
binary the user names instead (`--kind-binary kind`, a path) is used as it is, after its reported version is
checked.

Where the expected SHA-256 comes from: the checksum file each release publishes beside its asset (kind and helm
`<asset>.sha256sum`, istioctl `<asset>.sha256`), fetched from the same host as the asset. Another value
cross-checks it: `--<tool>-sha256` if given, else the value pinned below for the default versions. When two of
them disagree nothing is downloaded and the error names both (`ChecksumConflict`): a pinned value copied from a
third-party record (istioctl 1.31.1's were) can then never strand a user silently, nor can a substituted
checksum file pass. Without a reachable checksum file, a pinned or given value is used alone; with none of the
three, the download is refused."""

from __future__ import annotations

import hashlib
import json
import os
import platform as host
import re
import shutil
import tarfile
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock, Timeout

from meshconform.errors import PlatformError
from meshconform.platform.kind import tools
from meshconform.platform.kind.timeouts import TIMEOUTS

TOOLS = ("kind", "istioctl", "helm")
DEFAULT_VERSIONS = {"kind": "v0.33.0", "istioctl": "1.31.1", "helm": "v4.2.4"}
MAX_DOWNLOAD = 512 * 1024 * 1024  # bytes; a larger answer is not one of these binaries
MAX_CHECKSUM_FILE = 4096  # bytes; one line naming a digest and the asset
CACHE_ENV = "MESHCONFORM_CACHE_DIR"  # overrides the user cache directory (tests, CI caches)
# The platforms each release publishes assets for (kind hack/release/build/cross.sh; istioctl
# release/downloadIstioCtl.sh and the release's assets; helm's release page).
PUBLISHED = {"kind": ("linux-amd64", "linux-arm64", "darwin-amd64", "darwin-arm64"),
             "istioctl": ("linux-amd64", "linux-arm64", "linux-armv7", "darwin-amd64", "darwin-arm64"),
             "helm": ("linux-amd64", "linux-arm64", "darwin-amd64", "darwin-arm64")}

# Where the pinned values were read. Each is the content of the release's own checksum file (its URL is the
# artifact's `checksum_url`), recorded here to cross-check the file fetched at run time.
_KIND_SRC = ("kind's published <asset>.sha256sum files (copied by kubernetes-sigs/cluster-api "
             "hack/scripts/ensure/ensure-kind.sh)")
_KIND_SRC_32 = "kind's published <asset>.sha256sum files (the same values pinned by several independent projects)"
_ISTIO_SRC = ("a third-party copy of istioctl's published <asset>.sha256 files (not confirmed against the release "
              "itself: the file fetched at run time decides, and a disagreement stops the run)")
_HELM_SRC = "helm's published <asset>.sha256sum files (https://github.com/helm/helm/releases/tag/v4.2.4)"

# (tool, version, os-arch) -> (sha256 of the downloaded asset, where the value comes from)
PINNED: dict[tuple[str, str, str], tuple[str, str]] = {
    ("kind", "v0.33.0", "linux-amd64"): ("aee6151561422756b764a4ae28e7f44cda5af5a9eead3cc9985112b1de8d8e0d", _KIND_SRC),
    ("kind", "v0.33.0", "linux-arm64"): ("20022bee6cfcd5086cb7234d218e3454e6090022f2a8f55d1fa7fcf42c3867a2", _KIND_SRC),
    ("kind", "v0.33.0", "darwin-amd64"): ("5a99f26f57246dc9319dd294803313197a0f34d33c525b3ea8b655db5916ece0",
                                          _KIND_SRC),
    ("kind", "v0.33.0", "darwin-arm64"): ("0c8c7dbe5e23594a198b786c4bc13dacc101fa6196b0cb0b23a1ca44e61f4b4f",
                                          _KIND_SRC),
    ("kind", "v0.32.0", "linux-amd64"): ("50030de23cf40a18505f20426f6a8506bedf13c6e509244bd1fa9463721b0f54",
                                         _KIND_SRC_32),
    ("kind", "v0.32.0", "linux-arm64"): ("b92cd615e97585de8ddade28ed5cd7feb4248d717c233eea5b03c37298900f5d",
                                         _KIND_SRC_32),
    ("kind", "v0.32.0", "darwin-amd64"): ("295ac6d0d634c9819c9907df45e3017d1f13166bd13c3404c45e79f7faa47498",
                                          _KIND_SRC_32),
    ("kind", "v0.32.0", "darwin-arm64"): ("dca67911095a110c2b5c36e26df6cac860c602033e456c0db47be498cdef1ebb",
                                          _KIND_SRC_32),
    ("istioctl", "1.31.1", "linux-amd64"): ("a44563904f22f2a8bf6ac4fff1b0bad9f718587c2be6aa807b83fe9049910639",
                                            _ISTIO_SRC),
    ("istioctl", "1.31.1", "darwin-arm64"): ("3f37edda91e51a5948d688681c9db64971ee3abb38cda65d797dec51f46fecd1",
                                             _ISTIO_SRC),
    ("helm", "v4.2.4", "linux-amd64"): ("c306b46f719b0a4da32d0f78ee21bf90ce8d602f15b22ab753f0674d1670a7f3", _HELM_SRC),
    ("helm", "v4.2.4", "linux-arm64"): ("564de2191b881e9f71b5606b25345821ea1682f06ab90499d3ab22b530176da1", _HELM_SRC),
    ("helm", "v4.2.4", "darwin-amd64"): ("6c163d687ca03c3b5c01928e53bbbcf9518278f47ce7a2f249a5a08e8bdaa2bc",
                                         _HELM_SRC),
    ("helm", "v4.2.4", "darwin-arm64"): ("d747eb4e28bd2727173d15b759fa0a17822291ec09db7ced3d55af290a3661a2",
                                         _HELM_SRC),
}

_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class ChecksumMismatch(PlatformError):
    """A download does not have the expected SHA-256: it was deleted and nothing ran."""


class ChecksumConflict(PlatformError):
    """Two sources of the expected SHA-256 (the release's checksum file, the pinned table, --<tool>-sha256)
    disagree: nothing was downloaded."""


class ChecksumUnknown(PlatformError):
    """No checksum file could be read for this version/platform, and no SHA-256 is pinned or given."""


class VersionMismatch(PlatformError):
    """A user-provided binary reports another version than the one asked for."""


def host_platform() -> str:
    """`linux-amd64`, `darwin-arm64`, ... (the asset naming of kind and helm; istioctl says `osx`)."""
    system = host.system().lower()
    machine = host.machine().lower()
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64",
            "armv7l": "armv7"}.get(machine, machine)
    return f"{system}-{arch}"


def normalise_version(tool: str, version: str) -> str:
    """kind and helm tag with a leading `v`, Istio without: accept either spelling from the user."""
    bare = version.strip().lstrip("v")
    return bare if tool == "istioctl" else f"v{bare}"


@dataclass(frozen=True)
class Artifact:
    """One binary to fetch: where from, the release's checksum file beside it, the values that cross-check
    that file (pinned, given), and what to take out of the download."""

    tool: str
    version: str
    platform: str
    url: str
    checksum_url: str  # the release's own checksum file for this asset
    pinned: str | None  # the value recorded in PINNED, if any
    pinned_source: str
    given: str | None  # --<tool>-sha256
    member: str | None  # the executable's path inside a .tar.gz; None: the download is the executable

    @property
    def asset(self) -> str:
        return self.url.rsplit("/", 1)[-1]

    @property
    def sha256(self) -> str | None:
        """The value known before anything is fetched: given, else pinned (the checksum file may add one)."""
        return self.given or self.pinned

    @property
    def sha_source(self) -> str:
        if self.given:
            return f"--{self.tool}-sha256"
        if self.pinned:
            return f"pinned ({self.pinned_source})"
        return f"the release's checksum file {self.checksum_url}"


def official_url(tool: str, version: str, platform: str) -> str:
    os_name, arch = platform.split("-", 1)
    if tool == "kind":  # kind.sigs.k8s.io/dl/<v>/... redirects here (kind site/layouts/index.redirects)
        return f"https://github.com/kubernetes-sigs/kind/releases/download/{version}/kind-{os_name}-{arch}"
    if tool == "istioctl":  # release/downloadIstioCtl.sh: <os> is linux or osx
        istio_os = "osx" if os_name == "darwin" else os_name
        return f"https://github.com/istio/istio/releases/download/{version}/istioctl-{version}-{istio_os}-{arch}.tar.gz"
    if tool == "helm":  # scripts/get-helm-4: https://get.helm.sh/helm-$TAG-$OS-$ARCH.tar.gz
        return f"https://get.helm.sh/helm-{version}-{os_name}-{arch}.tar.gz"
    raise PlatformError(f"unknown tool {tool!r}")


def checksum_suffix(tool: str) -> str:
    """What each release appends to an asset's name for its checksum file: istioctl `.sha256` (hex, then the
    asset name), kind and helm `.sha256sum` (`shasum -a 256` output: hex, two spaces, the asset name)."""
    return ".sha256" if tool == "istioctl" else ".sha256sum"


def artifact(tool: str, version: str | None = None, *, sha256: str = "", mirror: str = "",
             platform: str | None = None) -> Artifact:
    """The artifact for `tool` at `version` (default: the pinned one) on this host. `sha256` adds a value the
    download must have; `mirror` replaces the official hosts by `<mirror>/<tool>/<version>/<asset>` (and its
    checksum file beside it)."""
    version = normalise_version(tool, version or DEFAULT_VERSIONS[tool])
    platform = platform or host_platform()
    if platform not in PUBLISHED.get(tool, ()):
        raise PlatformError(f"{tool} publishes no release for {platform} (it does for "
                            f"{', '.join(PUBLISHED.get(tool, ()))}): install one yourself and pass --{tool}-binary")
    url = official_url(tool, version, platform)
    if mirror:
        url = f"{mirror.rstrip('/')}/{tool}/{version}/{url.rsplit('/', 1)[-1]}"
    given = sha256.strip().lower()
    if given and not _HEX64.match(given):
        raise PlatformError(f"--{tool}-sha256: {sha256!r} is not a SHA-256 (64 hexadecimal digits)")
    pinned, source = PINNED.get((tool, version, platform), (None, ""))
    member = {"kind": None, "istioctl": "istioctl", "helm": f"{platform}/helm"}[tool]
    return Artifact(tool, version, platform, url, url + checksum_suffix(tool), pinned, source, given or None,
                    member)


def published_sha256(text: str, asset: str, url: str) -> str:
    """The digest in a release checksum file: `<hex>` alone, or `<hex>  <asset>` lines (`shasum` output); the
    line naming another asset is never taken."""
    for line in text.strip().splitlines():
        fields = line.split()
        if not fields:
            continue
        name = fields[1].lstrip("*") if len(fields) > 1 else asset
        if _HEX64.match(fields[0].lower()) and name.rsplit("/", 1)[-1] == asset:
            return fields[0].lower()
    raise PlatformError(f"{url} names no SHA-256 for {asset} (it reads {text.strip()[:120]!r})")


def expected_sha256(art: Artifact) -> tuple[str, str]:
    """(the SHA-256 the download must have, where it comes from): the release's checksum file, cross-checked
    against the pinned and given values. Raises ChecksumConflict naming both values when two disagree, and
    ChecksumUnknown when no value is available at all."""
    try:
        published: str | None = published_sha256(_read_small(art.checksum_url), art.asset, art.checksum_url)
        unread = ""
    except PlatformError as exc:
        published, unread = None, str(exc)
    sources = [(value, where) for value, where in ((published, f"the release's checksum file {art.checksum_url}"),
                                                   (art.given, f"--{art.tool}-sha256"),
                                                   (None if art.given else art.pinned,  # a given value overrides it
                                                    f"meshconform's pinned value ({art.pinned_source})"))
               if value]
    if not sources:
        raise ChecksumUnknown(
            f"no SHA-256 for {art.tool} {art.version} on {art.platform}: {unread}; no value is pinned and none was "
            f"given, so it will not be downloaded. Pass --{art.tool}-sha256 with the value from {art.checksum_url}, "
            f"or use a binary you installed (--{art.tool}-binary)")
    first, first_source = sources[0]
    for value, where in sources[1:]:
        if value != first:
            raise ChecksumConflict(
                f"{art.asset}: {first_source} says {first}, but {where} says {value}; nothing was downloaded. If the "
                f"release was re-published, check {art.checksum_url} yourself and pass the value you trust with "
                f"--{art.tool}-sha256 (a pinned value that is wrong is a meshconform bug: please report it)")
    return first, ("; ".join(where for _, where in sources)
                   + (f" (checksum file unavailable: {unread})" if published is None else ""))


def cache_root() -> Path:
    """The user cache directory (platformdirs: ~/.cache/meshconform on Linux, ~/Library/Caches on macOS),
    so that every run and every checkout shares one verified copy."""
    given = os.environ.get(CACHE_ENV)
    if given:
        return Path(given)
    import platformdirs
    return Path(platformdirs.user_cache_dir("meshconform"))


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def ensure(art: Artifact) -> Path:
    """The verified executable for `art`, downloaded once into the cache (under a lock). A cached copy
    is re-hashed before every use: a binary changed in the cache is refused like a bad download."""
    folder = cache_root() / "bin" / art.tool / art.version / art.platform
    folder.mkdir(parents=True, exist_ok=True)
    try:
        with FileLock(str(folder / ".lock"), timeout=TIMEOUTS.download_lock):
            for cached in sorted(folder.glob("*/verified.json")):
                binary = cached.parent / art.tool
                record = json.loads(cached.read_text())
                if art.sha256 and record.get("asset_sha256") != art.sha256:
                    continue  # verified against another value than the one now pinned or given
                if binary.exists() and _sha256_file(binary) == record["executable_sha256"]:
                    return binary
                binary.unlink(missing_ok=True)  # changed since it was verified: fetch it again
                cached.unlink()
            expected, source = expected_sha256(art)
            target = folder / expected[:16]
            target.mkdir(exist_ok=True)
            binary = target / art.tool
            _download_verified(art, expected, source, target, binary)
            (target / "verified.json").write_text(json.dumps(
                {"asset": art.asset, "url": art.url, "asset_sha256": expected, "source": source,
                 "executable_sha256": _sha256_file(binary)}))
            return binary
    except Timeout:
        raise PlatformError(f"another process has held the download lock for {art.tool} {art.version} for "
                            f"{TIMEOUTS.download_lock:g} s ({folder / '.lock'}); if none is running, delete "
                            "that file") from None


def _download_verified(art: Artifact, expected: str, source: str, folder: Path, binary: Path) -> None:
    with tempfile.TemporaryDirectory(dir=folder, prefix=".download-") as scratch:
        download = Path(scratch) / art.asset
        _fetch(art.url, download)
        actual = _sha256_file(download)
        if actual != expected:
            download.unlink()
            raise ChecksumMismatch(
                f"{art.asset} from {art.url} has SHA-256 {actual}, expected {expected} ({source}); "
                "it was deleted and nothing was run. A corrupted or substituted download: retry, or check the "
                "mirror")
        staged = Path(scratch) / f"{art.tool}.staged"
        if art.member is None:
            shutil.move(str(download), staged)
        else:
            _extract_member(download, art.member, staged)
        staged.chmod(0o755)
        os.replace(staged, binary)  # atomic: a reader sees the old file or the whole new one


def _read_small(url: str) -> str:
    """A checksum file: a few bytes of text, within the download deadline."""
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUTS.download) as answer:  # noqa: S310 (https or a mirror)
            data: bytes = answer.read(MAX_CHECKSUM_FILE + 1)
    except OSError as exc:
        raise PlatformError(f"cannot read {url}: {exc}") from None
    if len(data) > MAX_CHECKSUM_FILE:
        raise PlatformError(f"{url}: more than {MAX_CHECKSUM_FILE} bytes, not a checksum file")
    return data.decode(errors="replace")


def _fetch(url: str, target: Path) -> None:
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUTS.download) as answer, target.open("wb") as out:
            size = 0
            for block in iter(lambda: answer.read(1 << 20), b""):
                size += len(block)
                if size > MAX_DOWNLOAD:
                    raise PlatformError(f"{url}: more than {MAX_DOWNLOAD} bytes, not a release binary")
                out.write(block)
    except OSError as exc:  # URLError, HTTPError, timeouts, refused connections
        raise PlatformError(f"cannot download {url}: {exc}. Check the network (or --download-mirror)") from None


def _extract_member(archive: Path, member: str, target: Path) -> None:
    """Only the one regular file we want, never a path outside the scratch folder."""
    try:
        with tarfile.open(archive, "r:gz") as tar:
            # Release tarballs may or may not prefix entries with "./".
            found = [i for i in tar.getmembers() if i.name.removeprefix("./") == member]
            if not found:
                raise PlatformError(f"{archive.name} has no {member} inside")
            info = found[0]
            if not info.isreg():
                raise PlatformError(f"{archive.name}: {member} is not a regular file")
            source = tar.extractfile(info)
            assert source is not None
            with source, target.open("wb") as out:
                shutil.copyfileobj(source, out)
    except tarfile.TarError as exc:
        raise PlatformError(f"{archive.name} is not a readable .tar.gz: {exc}") from None


# ------------------------------------------------------------------ binaries the user already has

_VERSION_PROBES: dict[str, tuple[list[str], str]] = {
    # kind: `kind version` prints "kind v0.33.0 go1.24.6 linux/amd64" (pkg/cmd/kind/version DisplayVersion)
    "kind": (["version"], r"^kind v(\d+\.\d+\.\d+\S*)"),
    # istioctl: JSON {"clientVersion": {"version": ...}} (pkg/version/cobra.go, cobra_test.go case 3)
    "istioctl": (["version", "--remote=false", "-o", "json"], ""),
    # helm: "v4.2.4+g<commit>" (pkg/cmd/version.go formatVersion(short))
    "helm": (["version", "--short"], r"^v(\d+\.\d+\.\d+\S*?)(\+g[0-9a-f]+)?$"),
}


def reported_version(tool: str, binary: Path | str) -> str:
    """What `binary` says its version is (normalised like `normalise_version`)."""
    args, pattern = _VERSION_PROBES[tool]
    result = tools.run([binary, *args], timeout=TIMEOUTS.version, what=f"read the version of {tool}",
                       hint=f"check that {binary} is a working {tool}")
    text = result.stdout.strip()
    if tool == "istioctl":
        try:
            found = str(json.loads(text)["clientVersion"]["version"])
        except (ValueError, KeyError, TypeError):
            raise tools.ToolOutputError(f"`istioctl version` printed no readable clientVersion: {text[:200]!r}",
                                        argv=result.argv) from None
    else:
        match = re.match(pattern, text.splitlines()[0] if text else "")
        if not match:
            raise tools.ToolOutputError(f"`{tool} {' '.join(args)}` printed no version: {text[:200]!r}",
                                        argv=result.argv)
        found = match.group(1)
    return normalise_version(tool, found)


def user_binary(tool: str, given: str, version: str | None) -> Path:
    """A binary the user installed: a path, or a name looked up on PATH; its version must match."""
    path = Path(given) if os.sep in given else (Path(found) if (found := shutil.which(given)) else None)
    if path is None or not path.exists():
        raise tools.ToolMissing(f"--{tool}-binary {given}: not found" + ("" if os.sep in given else " on PATH"),
                                hint=f"install {tool}, give its path, or leave --{tool}-binary empty to download "
                                     f"the pinned, checksum-verified {tool}")
    wanted = normalise_version(tool, version or DEFAULT_VERSIONS[tool])
    actual = reported_version(tool, path)
    if actual != wanted:
        raise VersionMismatch(f"--{tool}-binary {path} is {tool} {actual}, not {wanted}: pass --{tool}-version "
                              f"{actual} to use it, or leave --{tool}-binary empty to download {wanted}")
    return path
