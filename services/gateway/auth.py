"""The authorisation seam. The identity issue replaces OpenAccess with token auth and permissions.

Every /v2 route calls `authorize(request, repository, action)`. A repository the caller may not read
must look exactly like a missing one, so callers turn a failed read into NAME_UNKNOWN themselves.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol

from aiohttp import web

from shared.errors import RegistryError


class Action(enum.Enum):
    PULL = "pull"
    PUSH = "push"
    DELETE = "delete"
    ADMIN = "admin"


@dataclass(frozen=True)
class Identity:
    name: str | None

    @property
    def anonymous(self) -> bool:
        return self.name is None


ANONYMOUS = Identity(None)


class Authorizer(Protocol):
    async def authenticate(self, request: web.Request) -> Identity:
        """Who is calling; raises UNAUTHORIZED when credentials are required and missing."""

    async def allowed(self, identity: Identity, repository: str, action: Action) -> bool: ...


class OpenAccess:
    """`MERIDIAN_INSECURE_OPEN_ACCESS: true`: anyone may pull and push. Development only."""

    async def authenticate(self, request: web.Request) -> Identity:
        return ANONYMOUS

    async def allowed(self, identity: Identity, repository: str, action: Action) -> bool:
        return True


class ClosedAccess:
    """Until identity lands, a registry without open access answers every /v2 call with 401."""

    def __init__(self, realm: str) -> None:
        self.realm = realm

    async def authenticate(self, request: web.Request) -> Identity:
        raise RegistryError(
            "UNAUTHORIZED",
            "authentication required: this registry has no anonymous access "
            "(set MERIDIAN_INSECURE_OPEN_ACCESS: true for a development registry)",
            headers={"WWW-Authenticate": f'Basic realm="{self.realm}"'},
        )

    async def allowed(self, identity: Identity, repository: str, action: Action) -> bool:
        return False
