"""details: book details (Bookinfo's Ruby service, re-implemented)."""

from __future__ import annotations

import json

from aiohttp import web

from meshconform.bookinfo.apps.common import make_app, serve

DETAILS = {"author": "William Shakespeare", "year": 1595, "type": "paperback", "pages": 200,
           "publisher": "PublisherA", "language": "English", "ISBN-10": "1234567890", "ISBN-13": "123-1234567890"}


def _json(data: dict, status: int = 200) -> web.Response:
    return web.Response(text=json.dumps(data, separators=(",", ":")), status=status, content_type="application/json")


async def health(_: web.Request) -> web.Response:
    return _json({"status": "Details is healthy"})


async def details(request: web.Request) -> web.Response:
    # WEBrick prefix mount: the id is the last path segment.
    last = request.path.rstrip("/").rsplit("/", 1)[-1]
    if request.path.rstrip("/") == "/details" or not last.lstrip("-").isdigit():
        return _json({"error": "please provide numeric product id"}, 400)
    return _json({"id": int(last), **DETAILS})


def main() -> None:
    app = make_app()
    app.router.add_route("*", "/health", health)
    app.router.add_route("GET", "/details{tail:.*}", details)
    app.router.add_route("HEAD", "/details{tail:.*}", details)
    app.router.add_route("POST", "/details{tail:.*}", details)
    serve(app)


if __name__ == "__main__":
    main()
