"""Who is calling /v2 and what the token lets them do.

`TokenAccess` is Docker token auth as Quay does it: every /v2 call carries a Bearer JWT from /v2/auth
(RS256, signed by a service key), whose `access` claim was already down-scoped to what the caller
may do. `OpenAccess` (MERIDIAN_INSECURE_OPEN_ACCESS) lets anyone do anything, for development.
A repository the caller may not read must look exactly like a missing one: callers turn a failed
read into NAME_UNKNOWN themselves.
"""
from __future__ import annotations

import collections
import enum
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

import jwt
from aiohttp import web

from shared.config import Config
from shared.errors import RegistryError
from shared.model import Db, accounts
from shared.model.access import readable_repository_names
from shared.model.accounts import Principal, is_superuser
from shared.registry import repositories
from shared.servicekeys import PublicKeys

TOKEN_LEEWAY_S = 30  # clock skew allowed between gateways


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

    def readable(self, identity: Identity) -> list[str] | None:
        """The repositories the caller may read (where a mount without `from` may look); None: all."""

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

    def readable(self, identity: Identity) -> list[str] | None:
        return None

    def challenge(self, scope: str | None = None, message: str | None = None) -> RegistryError:
        return RegistryError("UNAUTHORIZED", message)


# Verified tokens each process remembers (one RSA check per token, not per request); the oldest go first.
VERIFIED_CACHE_SIZE = 10000


@dataclass
class _Verified:
    identity: Identity
    kid: str
    expires: float


class TokenAccess:
    """Bearer tokens from /v2/auth. A token is accepted while its signature, audience, issuer and times
    check out, its lifetime is within MERIDIAN_TOKEN_MAX_LIFETIME_SEC, its signing key is still
    registered, approved and unexpired, and its user or robot still exists and is enabled. The last two
    are re-read from the database at most every MERIDIAN_TOKEN_RECHECK_SEC per process (the key by
    `PublicKeys`, the account here), so removing a key or an account stops its tokens within that time
    on every gateway, with no event to miss."""

    def __init__(self, config: Config, pool: Db, public_keys: PublicKeys) -> None:
        self.config = config
        self.pool = pool
        self.public_keys = public_keys
        self.realm = f"{config.preferred_url_scheme}://{config.server_hostname}/v2/auth"
        self._verified: collections.OrderedDict[str, _Verified] = collections.OrderedDict()
        self._accounts: dict[int, tuple[float, bool]] = {}

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
        hit = self._verified.get(raw)
        if hit is None or hit.expires <= time.time():
            self._verified.pop(raw, None)
            identity, kid, expires = await self._verify(raw)
            hit = _Verified(identity, kid, expires)
            self._verified[raw] = hit
            while len(self._verified) > VERIFIED_CACHE_SIZE:
                self._verified.popitem(last=False)
        else:
            self._verified.move_to_end(raw)
            # The signature was checked once; whether its key may still sign is asked again (PublicKeys
            # re-reads it every MERIDIAN_TOKEN_RECHECK_SEC).
            if await self.public_keys.get(hit.kid) is None:
                self._verified.pop(raw, None)
                raise self.challenge(message="registry token signed by an unknown or expired key")
        principal = hit.identity.principal
        if principal is not None and not await self._account_enabled(principal.id):
            self._verified.pop(raw, None)
            raise self.challenge(message="the account this registry token was issued to was removed or disabled")
        return hit.identity

    async def _account_enabled(self, account_id: int) -> bool:
        now = time.monotonic()
        hit = self._accounts.get(account_id)
        if hit is None or hit[0] <= now:
            enabled = await accounts.principal_by_id(self.pool, account_id) is not None
            if len(self._accounts) > VERIFIED_CACHE_SIZE:
                self._accounts.clear()
            hit = (now + self.config.meridian_token_recheck_sec, enabled)
            self._accounts[account_id] = hit
        return hit[1]

    async def _verify(self, raw: str) -> tuple[Identity, str, float]:
        try:
            kid = jwt.get_unverified_header(raw).get("kid")
        except jwt.PyJWTError:
            raise self.challenge(message="invalid registry token") from None
        key = await self.public_keys.get(kid) if isinstance(kid, str) and kid else None
        if key is None or not isinstance(kid, str):
            raise self.challenge(message="registry token signed by an unknown or expired key")
        try:
            claims = jwt.decode(
                raw, key, algorithms=["RS256"], audience=self.config.server_hostname,
                issuer=self.config.instance_service_key_service, leeway=TOKEN_LEEWAY_S,
                options={"require": ["exp", "iat", "nbf", "sub", "aud", "iss"]},
            )
        except jwt.PyJWTError as exc:
            raise self.challenge(message=f"invalid registry token: {exc}") from None
        context = claims.get("context") or {}
        user_id = context.get("user_id") if isinstance(context, dict) else None
        entries = claims.get("access") or []
        if (not all(isinstance(claims[c], (int, float)) and not isinstance(claims[c], bool) for c in ("exp", "iat"))
                or not isinstance(claims["sub"], str) or not isinstance(context, dict)
                or not isinstance(entries, list)
                or not all(isinstance(e, dict) and isinstance(e.get("actions") or [], list)
                           and all(isinstance(a, str) for a in e.get("actions") or []) for e in entries)
                or (user_id is not None and (not isinstance(user_id, int) or isinstance(user_id, bool)))):
            # Signed, yet not the shape /v2/auth issues: refused like any bad token, never a 500.
            raise self.challenge(message="invalid registry token: malformed claims")
        limit = self.config.meridian_token_max_lifetime_sec
        if claims["exp"] - claims["iat"] > limit or claims["exp"] - time.time() > limit + TOKEN_LEEWAY_S:
            raise self.challenge(message=f"registry token lives longer than this registry accepts ({limit} s): "
                                         "get a new one from /v2/auth")
        access = {}
        for entry in entries:
            if isinstance(entry, dict) and entry.get("type") == "repository":
                access[str(entry.get("name"))] = frozenset(entry.get("actions") or ())
            elif isinstance(entry, dict) and entry.get("type") == "registry":
                access[f"registry:{entry.get('name')}"] = frozenset(entry.get("actions") or ())
        principal = None
        if context.get("user_id"):
            principal = Principal(
                int(context["user_id"]), claims["sub"], context.get("kind") == "robot",
                context.get("kind") == "user" and is_superuser(claims["sub"], self.config.super_users),
            )
        identity = Identity(principal, access, True, context.get("kind", "anonymous"))
        return identity, kid, float(claims["exp"])

    async def allowed(self, identity: Identity, repository: str, action: Action) -> bool:
        granted = identity.access.get(repository)
        return bool(granted and granted & SATISFIED_BY[action])

    async def catalog(self, identity: Identity, last: str | None, limit: int) -> list[str]:
        return await readable_repository_names(self.pool, identity.principal, last, limit)

    def readable(self, identity: Identity) -> list[str] | None:
        # The token's pull grants: /v2/auth already down-scoped them to what the principal may read.
        return sorted(name for name, granted in identity.access.items()
                      if not name.startswith("registry:") and granted & SATISFIED_BY[Action.PULL])
