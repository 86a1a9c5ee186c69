"""client: a workload that sends batches of requests from where it sits (with or without a sidecar).

The harness posts a batch to its control address (not through the mesh, like an exec into a pod)
and gets typed responses back: one call per batch, never one per request."""

from __future__ import annotations

import os

from aiohttp import web

from meshconform.bookinfo.apps.common import outbound_transport
from meshconform.traffic.loop import use_fast_loop
from meshconform.traffic.model import Request
from meshconform.traffic.sender import send_batch_async


async def batch(request: web.Request) -> web.Response:
    payload = await request.json()
    requests = [Request.from_json(r) for r in payload["requests"]]
    responses = await send_batch_async(requests, outbound_transport(), int(payload.get("concurrency", 10)),
                                       bool(payload.get("reuse_connections", True)))
    return web.json_response({"responses": [r.to_json() for r in responses]})


async def health(_: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def main() -> None:
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/batch", batch)
    app.router.add_get("/health", health)
    host, _, port = os.environ["MESHCONFORM_CONTROL"].rpartition(":")
    use_fast_loop()
    web.run_app(app, host=host, port=int(port), access_log=None, print=None, shutdown_timeout=1)


if __name__ == "__main__":
    main()
