"""reviews: book reviews, v1 without ratings, v2 black stars, v3 red stars (Bookinfo's Java service, re-implemented)."""

from __future__ import annotations

import json
import os

from aiohttp import web

from meshconform.bookinfo.apps.common import POD, Outbound, make_app, serve

ENABLE_RATINGS = os.environ.get("ENABLE_RATINGS", "false").lower() == "true"
STAR_COLOR = os.environ.get("STAR_COLOR", "black")
# The timeout to ratings follows the colour, not the version: black 10 s, anything else 2.5 s.
RATINGS_TIMEOUT = 10.0 if STAR_COLOR == "black" else 2.5
RATINGS_HOST = os.environ.get("RATINGS_HOSTNAME", "ratings") + (
    f".{os.environ['SERVICES_DOMAIN']}" if os.environ.get("SERVICES_DOMAIN") else "")
RATINGS_PORT = os.environ.get("RATINGS_SERVICE_PORT", "9080")
FORWARDED = ("x-request-id", "x-ot-span-context", "x-datadog-trace-id", "x-datadog-parent-id",
             "x-datadog-sampling-priority", "traceparent", "tracestate", "x-cloud-trace-context",
             "grpc-trace-bin", "x-b3-traceid", "x-b3-spanid", "x-b3-parentspanid", "x-b3-sampled",
             "x-b3-flags", "sw8", "end-user", "user-agent", "cookie", "authorization", "jwt")
REVIEWS = [("Reviewer1", "An extremely entertaining play by Shakespeare. The slapstick humour is refreshing!"),
           ("Reviewer2", "Absolutely fun and entertaining. The play lacks thematic depth when compared "
                         "to other plays by Shakespeare.")]
UNAVAILABLE = "Ratings service is currently unavailable"
outbound = Outbound()


async def reviews(request: web.Request) -> web.Response:
    try:
        product = int(request.match_info["product"])
    except ValueError:
        raise web.HTTPNotFound() from None
    ratings: dict | None = None
    if ENABLE_RATINGS:
        headers = {k: v for k, v in request.headers.items() if k.lower() in FORWARDED}
        headers["Accept"] = "application/json"
        status, body = await outbound.get(f"{RATINGS_HOST}:{RATINGS_PORT}", f"/ratings/{product}", headers,
                                          RATINGS_TIMEOUT)
        if status == 200:
            try:
                ratings = json.loads(body).get("ratings", {})
            except ValueError:
                ratings = None
    items = []
    for reviewer, text in REVIEWS:
        item: dict = {"reviewer": reviewer, "text": text}
        if ENABLE_RATINGS:
            stars = (ratings or {}).get(reviewer)
            item["rating"] = {"stars": stars, "color": STAR_COLOR} if stars is not None else {"error": UNAVAILABLE}
        items.append(item)
    data = {"id": str(product), "podname": POD, "clustername": os.environ.get("CLUSTER_NAME", "null"),
            "reviews": items}
    return web.Response(text=json.dumps(data), content_type="application/json")


async def health(_: web.Request) -> web.Response:
    return web.Response(text=json.dumps({"status": "Reviews is healthy"}), content_type="application/json")


def main() -> None:
    app = make_app()
    app.router.add_get("/health", health)
    app.router.add_get("/reviews/{product}", reviews)
    serve(app)


if __name__ == "__main__":
    main()
