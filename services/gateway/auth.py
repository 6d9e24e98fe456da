"""Who is calling /v2 and what the token lets them do.

`TokenAccess` is Docker token auth as Quay does it: every /v2 call carries a Bearer JWT from /v2/auth
(RS256, signed by a service key), whose `access` claim was already down-scoped to what the caller
may do. `OpenAccess` (MERIDIAN_INSECURE_OPEN_ACCESS) lets anyone do anything, for development.
A repository the caller may not read must look exactly like a missing one: callers turn a failed
read into NAME_UNKNOWN themselves.
"""
from __future__ import annotations

import enum
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

import jwt
from aiohttp import web

from shared.config import Config
from shared.errors import RegistryError
from shared.model import Db
from shared.model.access import readable_repository_names
from shared.model.accounts import Principal, is_superuser
from shared.registry import repositories
from shared.servicekeys import PublicKeys


class Action(enum.Enum):
    PULL = "pull"
    PUSH = "push"
    DELETE = "delete"
    ADMIN = "*"


# Token actions that satisfy each route action ("*" is everything).
SATISFIED_BY = {
    Action.PULL: {"pull", "*"},
    Action.PUSH: {"push", "*"},
    Action.DELETE: {"delete", "push", "*"},
    Action.ADMIN: {"*"},
}


@dataclass(frozen=True)
class Identity:
    principal: Principal | None = None
    access: Mapping[str, frozenset[str]] = field(default_factory=dict)
    token: bool = False  # presented a valid registry token (possibly anonymous)
    kind: str = "anonymous"


ANONYMOUS = Identity()


class Authorizer(Protocol):
    async def authenticate(self, request: web.Request) -> Identity:
        """Who is calling; raises UNAUTHORIZED for credentials that are present but invalid."""

    async def allowed(self, identity: Identity, repository: str, action: Action) -> bool: ...

    async def catalog(self, identity: Identity, last: str | None, limit: int) -> list[str]: ...

    def challenge(self, scope: str | None = None, message: str | None = None) -> RegistryError: ...


class OpenAccess:
    """`MERIDIAN_INSECURE_OPEN_ACCESS: true`: anyone may pull and push. Development only."""

    def __init__(self, pool: Db) -> None:
        self.pool = pool

    async def authenticate(self, request: web.Request) -> Identity:
        return ANONYMOUS

    async def allowed(self, identity: Identity, repository: str, action: Action) -> bool:
        return True

    async def catalog(self, identity: Identity, last: str | None, limit: int) -> list[str]:
        return await repositories.list_names(self.pool, last, limit)

    def challenge(self, scope: str | None = None, message: str | None = None) -> RegistryError:
        return RegistryError("UNAUTHORIZED", message)


class TokenAccess:
    def __init__(self, config: Config, pool: Db, public_keys: PublicKeys) -> None:
        self.config = config
        self.pool = pool
        self.public_keys = public_keys
        self.realm = f"{config.preferred_url_scheme}://{config.server_hostname}/v2/auth"
        self._verified: dict[str, tuple[float, Identity]] = {}

    def challenge(self, scope: str | None = None, message: str | None = None) -> RegistryError:
        value = f'Bearer realm="{self.realm}",service="{self.config.server_hostname}"'
        if scope:
            value += f',scope="{scope}"'
        return RegistryError("UNAUTHORIZED", message or "access to the requested resource is not authorized",
                             headers={"WWW-Authenticate": value})

    async def authenticate(self, request: web.Request) -> Identity:
        header = request.headers.get("Authorization", "")
        if not header:
            return ANONYMOUS
        scheme, _, raw = header.partition(" ")
        if scheme.lower() != "bearer" or not raw:
            raise self.challenge(message="this registry takes Bearer tokens from /v2/auth")
        # A verified token is remembered until it expires: one RSA check per token, not per request.
        hit = self._verified.get(raw)
        if hit is not None and hit[0] > time.time():
            return hit[1]
        identity, expires = await self._verify(raw)
        if len(self._verified) > 10000:
            self._verified.clear()
        self._verified[raw] = (expires, identity)
        return identity

    async def _verify(self, raw: str) -> tuple[Identity, float]:
        try:
            kid = jwt.get_unverified_header(raw).get("kid")
        except jwt.PyJWTError:
            raise self.challenge(message="invalid registry token") from None
        key = await self.public_keys.get(kid) if kid else None
        if key is None:
            raise self.challenge(message="registry token signed by an unknown or expired key")
        try:
            claims = jwt.decode(
                raw, key, algorithms=["RS256"], audience=self.config.server_hostname,
                issuer=self.config.instance_service_key_service, leeway=30,
                options={"require": ["exp", "iat", "nbf", "sub", "aud", "iss"]},
            )
        except jwt.PyJWTError as exc:
            raise self.challenge(message=f"invalid registry token: {exc}") from None
        access = {}
        for entry in claims.get("access") or []:
            if isinstance(entry, dict) and entry.get("type") == "repository":
                access[str(entry.get("name"))] = frozenset(entry.get("actions") or ())
            elif isinstance(entry, dict) and entry.get("type") == "registry":
                access[f"registry:{entry.get('name')}"] = frozenset(entry.get("actions") or ())
        context = claims.get("context") or {}
        principal = None
        if context.get("user_id"):
            principal = Principal(
                int(context["user_id"]), claims["sub"], context.get("kind") == "robot",
                context.get("kind") == "user" and is_superuser(claims["sub"], self.config.super_users),
            )
        identity = Identity(principal, access, True, context.get("kind", "anonymous"))
        return identity, float(claims["exp"])

    async def allowed(self, identity: Identity, repository: str, action: Action) -> bool:
        granted = identity.access.get(repository)
        return bool(granted and granted & SATISFIED_BY[action])

    async def catalog(self, identity: Identity, last: str | None, limit: int) -> list[str]:
        return await readable_repository_names(self.pool, identity.principal, last, limit)
