"""The event loop traffic runs on: uvloop where it is installed (the `local` extra), else asyncio's own.

The local platform's apps and senders are Python processes on one machine with the Envoys: the event loop's own
cost is a share of every request's, and uvloop's is about half asyncio's."""

from __future__ import annotations

import asyncio


def use_fast_loop() -> None:
    """Make uvloop the loop of asyncio.run and aiohttp's run_app in this process, when it is installed."""
    try:
        import uvloop
    except ImportError:  # the agent image and a bare install run on asyncio's loop
        return
    if not isinstance(asyncio.get_event_loop_policy(), uvloop.EventLoopPolicy):
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
