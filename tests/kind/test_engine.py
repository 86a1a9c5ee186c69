"""Container engine detection: the engine, not the client (this machine has a docker CLI and no engine)."""

from __future__ import annotations

import pytest
import recorded_output as rec

from meshconform.platform.kind import engine
from meshconform.platform.kind.timeouts import TIMEOUTS


def _docker_without_engine(standins) -> None:
    standins.tool("docker", [{"args": ["info", "--format", "{{.ServerVersion}}"], "stdout": "\n",
                              "stderr": rec.DOCKER_NO_ENGINE_STDERR, "exit": 1}])


def test_no_engine_names_docker_and_podman_and_how_to_get_one(standins) -> None:
    _docker_without_engine(standins)
    with pytest.raises(engine.NoContainerEngine) as caught:
        engine.detect()
    text = str(caught.value)
    assert "needs a running container engine (docker or podman)" in text
    assert "docker: the client is installed but its engine is not reachable: Cannot connect to the Docker" in text
    assert "podman: not installed (not on PATH)" in text
    assert "https://docs.docker.com/engine/install/" in text and "--platform cluster" in text
    assert standins.argvs() == [["docker", "info", "--format", "{{.ServerVersion}}"]]


def test_running_docker_is_chosen_and_kind_told(standins) -> None:
    standins.tool("docker", [{"args": ["info"], "stdout": rec.DOCKER_SERVER_VERSION}])
    found = engine.detect()
    assert (found.name, found.version) == ("docker", "28.2.2")
    assert dict(found.env) == {"KIND_EXPERIMENTAL_PROVIDER": "docker"}


def test_podman_when_docker_has_no_engine(standins) -> None:
    _docker_without_engine(standins)
    standins.tool("podman", [{"args": ["info", "--format", "{{.Version.Version}}"], "stdout": rec.PODMAN_VERSION}])
    found = engine.detect()
    assert (found.name, found.version, found.env["KIND_EXPERIMENTAL_PROVIDER"]) == ("podman", "5.4.2", "podman")
    assert standins.argvs()[-1] == ["podman", "info", "--format", "{{.Version.Version}}"]


def test_explicit_engine_and_environment(standins) -> None:
    standins.tool("docker", [{"args": ["info"], "stdout": rec.DOCKER_SERVER_VERSION}])
    standins.tool("podman", [{"args": ["info"], "stdout": rec.PODMAN_VERSION}])
    assert engine.detect("podman").name == "podman"
    assert engine.detect(environ={"KIND_EXPERIMENTAL_PROVIDER": "podman"}).name == "podman"
    assert engine.detect(environ={"KIND_EXPERIMENTAL_PROVIDER": "nerdctl"}).name == "docker"  # not ours: auto
    with pytest.raises(Exception, match="must be one of docker, podman"):
        engine.detect("nerdctl")


def test_a_hanging_engine_is_a_clear_reason(standins, monkeypatch) -> None:
    monkeypatch.setattr(engine, "TIMEOUTS", TIMEOUTS.__class__(engine_probe=1))
    standins.tool("docker", [{"args": ["info"], "sleep": 30}])
    with pytest.raises(engine.NoContainerEngine, match="did not answer within 1 s"):
        engine.detect("docker")


@pytest.mark.parametrize(("engine_name", "answer", "fits"), [
    ("docker", rec.DOCKER_CAPACITY, True), ("docker", rec.DOCKER_CAPACITY_SMALL, False),
    ("docker", "1 16777216000\n", False), ("podman", "4 8589934592\n", True)])
def test_the_engine_s_size_is_checked_against_the_stated_minimum(standins, engine_name: str, answer: str,
                                                                 fits: bool) -> None:
    standins.tool(engine_name, [{"args": ["info"], "stdout": answer}])
    found = engine.Engine(engine_name, "x")
    if fits:
        assert engine.check_capacity(found) == tuple(int(v) for v in answer.split())
    else:
        with pytest.raises(engine.TooSmall) as caught:
            engine.check_capacity(found)
        cpus, memory = answer.split()
        assert f"gives its containers {cpus} CPUs and {int(memory) / 2**30:.1f} GiB" in str(caught.value)
        assert "needs at least 2 CPUs and 4 GiB" in str(caught.value)
    formats = {"docker": "{{.NCPU}} {{.MemTotal}}", "podman": "{{.Host.CPUs}} {{.Host.MemTotal}}"}
    assert standins.argvs() == [[engine_name, "info", "--format", formats[engine_name]]]


@pytest.mark.parametrize("asked, other", [("podman", "docker"), ("docker", "podman")])
def test_an_engine_asked_for_and_missing_gets_advice_for_that_engine(standins, asked: str, other: str) -> None:
    # Asked for podman (which is not installed here), the advice used to begin with Docker and end with "pass
    # --container-engine podman", the option already given.
    if asked == "docker":
        _docker_without_engine(standins)
    with pytest.raises(engine.NoContainerEngine) as caught:
        engine.detect(preferred=asked)
    advice = str(caught.value).split("what to do: ", 1)[1]
    assert advice.lower().startswith(f"start {asked}")
    assert f"--container-engine {asked}" not in advice
    assert f"--container-engine {other}" in advice and "--platform cluster" in advice
