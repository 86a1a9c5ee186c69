"""ratings: star ratings per reviewer (Bookinfo's Node.js service, v1, re-implemented)."""

from __future__ import annotations

import json

from aiohttp import web

from meshconform.bookinfo.apps.common import make_app, serve

STORED: dict[int, dict] = {}


def _json(data: dict, status: int = 200) -> web.Response:
    return web.Response(text=json.dumps(data, separators=(",", ":")), status=status, content_type="application/json")


def _product_id(request: web.Request) -> int | None:
    # parseInt of the last '/'-separated piece of the raw URL (query included).
    piece = request.raw_path.rsplit("/", 1)[-1]
    digits = ""
    for char in piece.lstrip():
        if char.isdigit() or (char == "-" and not digits):
            digits += char
        else:
            break
    try:
        return int(digits)
    except ValueError:
        return None


async def get_ratings(request: web.Request) -> web.Response:
    product = _product_id(request)
    if product is None:
        return _json({"error": "please provide numeric product ID"}, 400)
    return _json({"id": product, "ratings": STORED.get(product, {"Reviewer1": 5, "Reviewer2": 4})})


async def post_ratings(request: web.Request) -> web.Response:
    product = _product_id(request)
    if product is None:
        return _json({"error": "please provide numeric product ID"}, 400)
    try:
        body = json.loads(await request.text())
    except ValueError:
        return _json({"error": "please provide valid ratings JSON"}, 400)
    STORED[product] = body
    return _json({"id": product, "ratings": body})


async def health(_: web.Request) -> web.Response:
    return _json({"status": "Ratings is healthy"})


def main() -> None:
    app = make_app()
    app.router.add_get("/health", health)
    app.router.add_get("/ratings/{tail:.*}", get_ratings)
    app.router.add_post("/ratings/{tail:.*}", post_ratings)
    serve(app)


if __name__ == "__main__":
    main()
