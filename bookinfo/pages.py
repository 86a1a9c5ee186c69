"""What a Bookinfo product page says, read from its HTML: which reviews pod (and so which version)
served the reviews, and the documented error texts. Bookinfo's own format, so it lives next to Bookinfo,
not in the platform-neutral traffic model."""

from __future__ import annotations

import re

from meshconform.traffic.model import Response, version_of_pod

_REVIEWS_POD = re.compile(r"Reviews served by:\s*(?:<[^>]+>\s*)*([A-Za-z0-9.-]+)")
# The product page's documented messages (istio.io Bookinfo tasks).
REVIEWS_UNAVAILABLE = "Sorry, product reviews are currently unavailable for this book."
RATINGS_UNAVAILABLE = "Ratings service is currently unavailable"


def reviews_pod(body: str) -> str | None:
    """The reviews pod a product page names ("Reviews served by: reviews-v2-...")."""
    match = _REVIEWS_POD.search(body)
    return match.group(1) if match else None


def version(reply: Response) -> str | None:
    """The version that answered: a JSON answer's own (echo, reviews), else the reviews version a
    product page names."""
    return reply.version or version_of_pod(reviews_pod(reply.body))
