"""The traffic event loop: uvloop where installed (the local extra), asyncio's own otherwise."""

from __future__ import annotations

import asyncio
import builtins

import pytest

from meshconform.traffic import loop


@pytest.fixture
def restored_policy():
    before = asyncio.get_event_loop_policy()
    yield
    asyncio.set_event_loop_policy(before)


def test_asyncio_run_goes_on_uvloop_once_chosen(restored_policy) -> None:
    uvloop = pytest.importorskip("uvloop")
    loop.use_fast_loop()
    loop.use_fast_loop()  # twice is harmless
    assert isinstance(asyncio.run(_running_loop()), uvloop.Loop)


def test_without_uvloop_the_loop_is_asyncios(restored_policy, monkeypatch) -> None:
    asyncio.set_event_loop_policy(None)
    real_import = builtins.__import__

    def no_uvloop(name, *args, **kwargs):
        if name == "uvloop":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)
    monkeypatch.setattr(builtins, "__import__", no_uvloop)
    loop.use_fast_loop()
    assert type(asyncio.run(_running_loop())).__module__.startswith("asyncio")


async def _running_loop() -> asyncio.AbstractEventLoop:
    return asyncio.get_running_loop()
