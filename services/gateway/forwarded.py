"""Quay's PROXY_COUNT: the client address behind the operator's reverse proxies (werkzeug's ProxyFix
with x_for=PROXY_COUNT, which Quay uses). Each proxy appends the address it received the request from
to X-Forwarded-For, so with N proxies the N-th entry from the right is the one the first proxy wrote:
the client's. Entries further left were written by the client itself and are never trusted."""
from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware


def forwarded_address(values: Sequence[str], proxy_count: int) -> str | None:
    """The client address the proxy_count-th X-Forwarded-For entry from the right names (values: every
    X-Forwarded-For header of the request, in order), or None when there is no such entry or it is not
    an IP address (the socket peer stands then)."""
    if proxy_count < 1 or not values:
        return None
    entries = ",".join(values).split(",")
    if len(entries) < proxy_count:
        return None
    try:
        return str(ipaddress.ip_address(entries[-proxy_count].strip()))
    except ValueError:
        return None


def proxy_middleware(proxy_count: int) -> Middleware:
    """The first middleware of a gateway with PROXY_COUNT > 0: every later middleware and handler sees
    the forwarded client as request.remote (usage logs, login throttling). With PROXY_COUNT 0 it is
    not installed at all: X-Forwarded-For is then never trusted and costs nothing."""

    @web.middleware
    async def client_address(request: web.Request, handler: Handler) -> web.StreamResponse:
        values = request.headers.getall("X-Forwarded-For", None)
        if values:
            address = forwarded_address(values, proxy_count)
            if address is not None and address != request.remote:
                return await handler(request.clone(remote=address))
        return await handler(request)

    return client_address
