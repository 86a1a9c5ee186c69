"""productpage: the Bookinfo front end (Bookinfo's Python service, re-implemented).

Calls details once and reviews up to twice, each with a 3 s application timeout, one after the
other; the page is always 200, with failures shown inside it."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
from html import escape

from aiohttp import web

from meshconform.bookinfo.apps.common import Outbound, make_app, serve

DOMAIN = f".{os.environ['SERVICES_DOMAIN']}" if os.environ.get("SERVICES_DOMAIN") else ""
DETAILS = f"{os.environ.get('DETAILS_HOSTNAME', 'details')}{DOMAIN}:{os.environ.get('DETAILS_SERVICE_PORT', '9080')}"
REVIEWS = f"{os.environ.get('REVIEWS_HOSTNAME', 'reviews')}{DOMAIN}:{os.environ.get('REVIEWS_SERVICE_PORT', '9080')}"
RATINGS = f"{os.environ.get('RATINGS_HOSTNAME', 'ratings')}{DOMAIN}:{os.environ.get('RATINGS_SERVICE_PORT', '9080')}"
TIMEOUT = 3.0
SESSION_KEY = b"meshconform-bookinfo-not-a-secret"  # the sample's login is not real authentication
COPIED = ("x-request-id", "x-ot-span-context", "x-datadog-trace-id", "x-datadog-parent-id",
          "x-datadog-sampling-priority", "traceparent", "tracestate", "x-cloud-trace-context",
          "grpc-trace-bin", "sw8", "user-agent", "cookie", "authorization", "jwt")
PRODUCT = {"id": 0, "title": "The Comedy of Errors", "descriptionHtml":
           "<a href=\"https://en.wikipedia.org/wiki/The_Comedy_of_Errors\">Wikipedia Summary</a>: The Comedy of "
           "Errors is one of <b>William Shakespeare's</b> early plays. It is his shortest and one of his most "
           "farcical comedies, with a major part of the humour coming from slapstick and mistaken identity, in "
           "addition to puns and word play."}
DETAILS_ERROR = "Sorry, product details are currently unavailable for this book."
REVIEWS_ERROR = "Sorry, product reviews are currently unavailable for this book."
RATINGS_ERROR = "Sorry, product ratings are currently unavailable for this book."
B3_HEX = re.compile(r"^[0-9a-f]{16}([0-9a-f]{16})?$")
outbound = Outbound()
counters: dict[tuple[str, int], int] = {}


def _dumps(data: object) -> str:
    return json.dumps(data)  # simplejson's default separators are json's: ", " and ": "


def _user(request: web.Request) -> str | None:
    raw = request.cookies.get("session", "")
    payload, _, signature = raw.rpartition(".")
    if not payload:
        return None
    expected = hmac.new(SESSION_KEY, payload.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature):
        return None
    try:
        return json.loads(base64.urlsafe_b64decode(payload.encode())).get("user")
    except ValueError:
        return None


def _session_cookie(user: str) -> str:
    payload = base64.urlsafe_b64encode(json.dumps({"user": user}).encode()).decode()
    return f"{payload}.{hmac.new(SESSION_KEY, payload.encode(), hashlib.sha256).hexdigest()}"


def forward_headers(request: web.Request) -> dict[str, str]:
    headers = {k: v for k, v in request.headers.items() if k.lower() in COPIED}
    trace, span = request.headers.get("x-b3-traceid", ""), request.headers.get("x-b3-spanid", "")
    if B3_HEX.match(trace) and B3_HEX.match(span):
        headers.update({"x-b3-traceid": trace, "x-b3-spanid": span,
                        "x-b3-sampled": "0" if request.headers.get("x-b3-sampled") == "0" else "1"})
    user = _user(request)
    if user:
        headers["end-user"] = user
    return headers


async def _call(service: str, host: str, path: str, headers: dict[str, str], tries: int = 1) -> tuple[int, bytes]:
    status: int | None = None
    body = b""
    for _ in range(tries):  # reviews is tried twice, with no pause (an intentional sample "bug")
        status, body = await outbound.get(host, path, headers, TIMEOUT)
        if status == 200:
            break
    final = status if status is not None else 500
    counters[(service, final)] = counters.get((service, final), 0) + 1
    return final, body


async def get_details(product: str, headers: dict[str, str]) -> tuple[int, dict]:
    status, body = await _call("details", DETAILS, f"/details/{product}", headers)
    return (status, json.loads(body)) if status == 200 else (status, {"error": DETAILS_ERROR})


async def get_reviews(product: str, headers: dict[str, str]) -> tuple[int, dict]:
    status, body = await _call("reviews", REVIEWS, f"/reviews/{product}", headers, tries=2)
    return (status, json.loads(body)) if status == 200 else (status, {"error": REVIEWS_ERROR})


async def get_ratings(product: str, headers: dict[str, str]) -> tuple[int, dict]:
    status, body = await _call("ratings", RATINGS, f"/ratings/{product}", headers)
    return (status, json.loads(body)) if status == 200 else (status, {"error": RATINGS_ERROR})


def _star(full: bool) -> str:
    marker = ' id="glyphicon glyphicon-star"' if full else ' id="glyphicon glyphicon-star-empty"'
    fill = "currentColor" if full else "none"
    return (f'<svg{marker} class="w-5 h-5 inline" viewBox="0 0 24 24" fill="{fill}" stroke="currentColor">'
            '<path d="M12 2l3 7h7l-5.5 4.5L18 21l-6-4-6 4 1.5-7.5L2 9h7z"/></svg>')


def render_page(user: str | None, details_status: int, details: dict, reviews_status: int, reviews: dict) -> str:
    parts = ["<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>Simple Bookstore App</title></head><body>",
             "<nav>BookInfo Sample</nav>"]
    parts.append(f"<div>{escape(user)} <a href=\"logout\">Sign out</a></div>" if user
                 else "<form method=\"post\" action=\"login\"><input name=\"username\"><input name=\"passwd\" "
                      "type=\"password\"><button>Sign in</button></form>")
    parts.append(f"<h1>{escape(PRODUCT['title'])}</h1><p>{PRODUCT['descriptionHtml']}</p>")
    if details_status == 200:
        parts.append("<h2>Book Details</h2><table><tr><th>ISBN-10</th><th>Publisher</th><th>Pages</th><th>Type</th>"
                     "<th>Language</th></tr><tr>" + "".join(
                         f"<td>{escape(str(details.get(k, '')))}</td>"
                         for k in ("ISBN-10", "publisher", "pages", "type", "language")) + "</tr></table>")
    else:
        parts.append(f"<h2>Error fetching product details</h2><p>{escape(details['error'])}</p>")
    if reviews_status == 200:
        parts.append("<h2>Book Reviews</h2>")
        for review in reviews.get("reviews", []):
            rating = review.get("rating") or {}
            block = ""
            if rating.get("stars"):
                stars = int(rating["stars"])
                block = (f'<div class="text-{escape(str(rating.get("color", "black")))}-500">'
                         + _star(True) * stars + _star(False) * (5 - stars) + "</div>")
            elif rating.get("error"):
                block = f'<p class="text-red-500">{escape(rating["error"])}</p>'
            parts.append(f"<blockquote>{block}<p>{escape(review['text'])}</p>"
                         f"<small>{escape(review['reviewer'])}</small></blockquote>")
        cluster = reviews.get("clustername", "null")
        where = f" on cluster {escape(cluster)}" if cluster != "null" else ""
        parts.append(f"<p>Reviews served by: <u>{escape(str(reviews.get('podname', '')))}</u>{where}</p>")
    else:
        parts.append(f"<h2>Error fetching product reviews</h2><p>{escape(reviews['error'])}</p>")
    parts.append("</body></html>")
    return "".join(parts)


async def productpage(request: web.Request) -> web.Response:
    headers = forward_headers(request)
    details_status, details = await get_details("0", headers)
    reviews_status, reviews = await get_reviews("0", headers)
    html = render_page(_user(request), details_status, details, reviews_status, reviews)
    return web.Response(text=html, content_type="text/html")


async def index(_: web.Request) -> web.Response:
    return web.Response(content_type="text/html", text=(
        "<html><head><title>Simple Bookstore App</title></head><body><p>Hello! This is a simple bookstore "
        "application consisting of three services as shown below</p><table><tr><td>productpage</td><td>details, "
        "reviews (ratings)</td></tr></table><a href=\"/productpage?u=normal\">Normal user</a> "
        "<a href=\"/productpage?u=test\">Test user</a></body></html>"))


async def health(_: web.Request) -> web.Response:
    return web.Response(text="Product page is healthy", content_type="text/html")


async def login(request: web.Request) -> web.Response:
    form = await request.post()
    response = web.HTTPFound(request.headers.get("Referer", "/productpage"))
    response.set_cookie("session", _session_cookie(str(form.get("username", ""))), httponly=True)
    raise response


async def logout(request: web.Request) -> web.Response:
    response = web.HTTPFound(request.headers.get("Referer", "/productpage"))
    response.del_cookie("session")
    raise response


async def products(_: web.Request) -> web.Response:
    return web.Response(text=_dumps([PRODUCT]), content_type="application/json")


def _api(fetch):  # type: ignore[no-untyped-def]
    async def handler(request: web.Request) -> web.Response:
        status, data = await fetch(request.match_info["product"], forward_headers(request))
        return web.Response(text=_dumps(data), status=status, content_type="application/json")
    return handler


async def metrics(_: web.Request) -> web.Response:
    lines = ["# TYPE request_result_total counter"] + [
        f'request_result_total{{destination_app="{app}",response_code="{code}"}} {count}'
        for (app, code), count in sorted(counters.items())]
    return web.Response(text="\n".join(lines) + "\n", content_type="text/plain")


async def static(_: web.Request) -> web.Response:
    return web.Response(text="/* bookinfo static */", content_type="text/css")


def main() -> None:
    app = make_app()
    app.router.add_get("/", index)
    app.router.add_get("/index.html", index)
    app.router.add_get("/health", health)
    app.router.add_post("/login", login)
    app.router.add_get("/logout", logout)
    app.router.add_get("/productpage", productpage)
    app.router.add_get("/api/v1/products", products)
    app.router.add_get("/api/v1/products/{product}", _api(get_details))
    app.router.add_get("/api/v1/products/{product}/reviews", _api(get_reviews))
    app.router.add_get("/api/v1/products/{product}/ratings", _api(get_ratings))
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/static/{tail:.*}", static)
    serve(app)


if __name__ == "__main__":
    main()
