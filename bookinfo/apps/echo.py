"""echo: answers with what it received and who it is, for precise checks.

`/status/<code>` answers that code; `/delay/<ms>` waits first. Every request is logged with its id."""

from __future__ import annotations

import asyncio
import json
import os

from aiohttp import web

from meshconform.bookinfo.apps.common import NAMESPACE, POD, VERSION, make_app, serve

SERVICE = os.environ.get("MESHCONFORM_SERVICE", "echo")
# A testbed workload may answer every request with one status (the mirror answers 500 so that
# any leak of its answers to callers is visible).
FORCED_STATUS = int(os.environ.get("ECHO_STATUS", "0")) or None


async def echo(request: web.Request) -> web.Response:
    status = FORCED_STATUS or 200
    parts = request.path.strip("/").split("/")
    if len(parts) >= 2 and parts[-2] == "status" and parts[-1].isdigit():
        status = int(parts[-1])
    if len(parts) >= 2 and parts[-2] == "delay" and parts[-1].isdigit():
        await asyncio.sleep(int(parts[-1]) / 1000)
    body = await request.read()
    data = {"pod": POD, "namespace": NAMESPACE, "service": SERVICE, "version": VERSION,
            "method": request.method, "path": request.path_qs, "host": request.host,
            "proto": f"HTTP/{request.version.major}.{request.version.minor}",
            "headers": {k.lower(): v for k, v in request.headers.items()}, "body_bytes": len(body)}
    return web.Response(text=json.dumps(data), status=status, content_type="application/json")


def main() -> None:
    app = make_app()
    app.router.add_route("*", "/{tail:.*}", echo)
    serve(app)


if __name__ == "__main__":
    main()
