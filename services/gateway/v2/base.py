"""Helpers every /v2 handler uses: the gateway state, authorisation, digests, request bodies."""
from __future__ import annotations

from typing import AsyncIterator

from aiohttp import web

from shared.digest import Digest, InvalidDigest, parse_digest
from shared.errors import RegistryError
from shared.model.repositories import name_problem

from ..auth import Action, Identity
from ..state import Gateway

GATEWAY = web.AppKey("gateway", Gateway)
ROUTE = web.RequestKey("route", str)
BODY_BLOCK = 1 << 20


def gateway(request: web.Request) -> Gateway:
    return request.app[GATEWAY]


async def authorize(request: web.Request, name: str, action: Action) -> Identity:
    problem = name_problem(name)
    if problem:
        raise RegistryError("NAME_INVALID", problem, detail={"name": name})
    gw = gateway(request)
    identity = await gw.authorizer.authenticate(request)
    if await gw.authorizer.allowed(identity, name, action):
        return identity
    if action is Action.PULL or not await gw.authorizer.allowed(identity, name, Action.PULL):
        # Whoever may not read a repository must not learn that it exists.
        raise RegistryError("NAME_UNKNOWN", detail={"name": name})
    raise RegistryError("DENIED", f"requested access to {name} is denied")


def digest_param(value: str | None, *, code: str = "DIGEST_INVALID") -> Digest:
    if not value:
        raise RegistryError(code, "a digest is required", detail={"digest": value})
    try:
        return parse_digest(value)
    except InvalidDigest as exc:
        raise RegistryError(code, str(exc), detail={"digest": value}) from None


async def body_blocks(request: web.Request, block: int = BODY_BLOCK) -> AsyncIterator[bytes]:
    """The request body in blocks of about `block` bytes; never more than one block in memory."""
    buffer = bytearray()
    async for chunk in request.content.iter_chunked(256 * 1024):
        buffer += chunk
        if len(buffer) >= block:
            yield bytes(buffer)
            buffer.clear()
    if buffer:
        yield bytes(buffer)


def content_length(request: web.Request) -> int | None:
    value = request.headers.get("Content-Length")
    if value is None:
        return None
    try:
        length = int(value)
    except ValueError:
        raise RegistryError("SIZE_INVALID", f"invalid Content-Length {value!r}") from None
    if length < 0:
        raise RegistryError("SIZE_INVALID", f"invalid Content-Length {value!r}")
    return length
