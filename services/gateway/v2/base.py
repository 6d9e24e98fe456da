"""Helpers every /v2 handler uses: the gateway state, authorisation, digests, request bodies."""
from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from shared.digest import Digest, InvalidDigest, parse_digest
from shared.errors import RegistryError
from shared.model import accounts
from shared.model.audit import Entry, record
from shared.registry import actor_for, repositories
from shared.registry.repositories import name_problem

from ..auth import Action, Identity
from ..state import GATEWAY, ROUTE, Gateway, gateway  # noqa: F401  (re-exported for api/)

BODY_BLOCK = 1 << 20


async def authorize(request: web.Request, name: str, action: Action) -> Identity:
    problem = name_problem(name)
    if problem:
        raise RegistryError("NAME_INVALID", problem, detail={"name": name})
    gw = gateway(request)
    identity = await gw.authorizer.authenticate(request)
    if await gw.authorizer.allowed(identity, name, action):
        return identity
    if not identity.token:
        # No token yet: send the client to /v2/auth for one covering this repository.
        raise gw.authorizer.challenge(f"repository:{name}:{'pull' if action is Action.PULL else 'pull,push'}")
    if identity.principal is None and action is not Action.PULL:
        # An anonymous write is refused alike whether the repository exists or not, so asking for
        # credentials reveals nothing, and it tells docker, podman and skopeo to log in (as Quay does).
        raise gw.authorizer.challenge(f"repository:{name}:pull,push", message="authentication required to push or delete")
    if action is Action.PULL or not await gw.authorizer.allowed(identity, name, Action.PULL):
        # Whoever may not read a repository must not learn that it exists.
        raise RegistryError("NAME_UNKNOWN", detail={"name": name})
    raise RegistryError("DENIED", f"requested access to {name} is denied")


async def ensure_repository(request: web.Request, name: str, identity: Identity) -> repositories.Repo:
    """The repository, created on first push: private unless CREATE_PRIVATE_REPO_ON_PUSH is false,
    with the creator's and the namespace's default permissions, logged as create_repo."""
    gw = gateway(request)
    repo = await repositories.get(gw.pool, name)
    if repo is not None:
        return repo
    namespace_name, short = name.split("/", 1)
    namespace = await accounts.namespace_row(gw.pool, namespace_name)
    async with gw.registry.change(actor_for(identity.principal)) as change:
        if namespace is None:
            if gw.switches.access.requires_credentials():
                raise RegistryError("NAME_UNKNOWN", f"namespace {namespace_name} does not exist", detail={"name": name})
            return await repositories.create_with_namespace(change, name)
        visibility = "private" if gw.config.create_private_repo_on_push else "public"
        repo_id, created = await repositories.create(change, namespace["id"], namespace_name, short,
                                                     creator=identity.principal, visibility=visibility)
        if created:
            await record(change.conn, Entry("create_repo", namespace["id"], namespace_name, repo_id, name,
                                            identity.principal, request.remote, {"visibility": visibility, "on_push": True}))
    return repositories.Repo(repo_id, name, namespace["id"])


def audit(request: web.Request, kind: str, identity: Identity, name: str, *, repository_id: int | None = None,
          namespace_id: int | None = None, **metadata) -> None:
    """Log registry traffic (push_repo, pull_repo, ...) through the batching buffer."""
    gateway(request).audit.add(Entry(kind, namespace_id=namespace_id, repository_id=repository_id, repository=name,
                                     performer=identity.principal, ip=request.remote,
                                     metadata={"useragent": request.headers.get("User-Agent", ""), **metadata}))


def digest_param(value: str | None, *, code: str = "DIGEST_INVALID") -> Digest:
    if not value:
        raise RegistryError(code, "a digest is required", detail={"digest": value})
    try:
        return parse_digest(value)
    except InvalidDigest as exc:
        raise RegistryError(code, str(exc), detail={"digest": value}) from None


async def body_blocks(request: web.Request, block: int = BODY_BLOCK) -> AsyncIterator[bytearray]:
    """The request body in blocks of about `block` bytes; never more than one block in memory (plus
    the one the storage driver and the hashing thread are still working on). Each block is a new
    bytearray handed over as it is: no copy of its bytes is made on the way to storage."""
    buffer = bytearray()
    async for chunk in request.content.iter_chunked(256 * 1024):
        buffer += chunk
        if len(buffer) >= block:
            full, buffer = buffer, bytearray()
            yield full
    if buffer:
        yield buffer


def content_length(request: web.Request) -> int | None:
    value = request.headers.get("Content-Length")
    if value is None:
        return None
    try:
        length = int(value) if len(value) <= 19 else -1  # longer cannot fit a bigint (nor int() in bounded time)
    except ValueError:
        raise RegistryError("SIZE_INVALID", f"invalid Content-Length {value!r}") from None
    if length < 0:
        raise RegistryError("SIZE_INVALID", f"invalid Content-Length {value!r}")
    return length
