"""What every /api/v1 resource uses: the route table entry, the caller, JSON bodies, lookups that
hide what the caller may not see, and usage logging in the change's own transaction."""
from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar, overload

from aiohttp import web

from shared.callers import api_caller
from shared.errors import ApiError, repository_read_only_error
from shared.model import Db, accounts
from shared.model import access as access_model
from shared.model.accounts import Principal
from shared.model.audit import Entry, record

from ..credentials import SESSION_COOKIE
from ..v2.base import ROUTE, gateway
from . import edge

T = TypeVar("T")
Handler = Callable[..., Awaitable[web.StreamResponse]]
CALLER: web.RequestKey[Principal | None] = web.RequestKey("caller")
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

PARAM_PATTERNS = {
    "repository": r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)+?",
    "orgname": r"[a-z0-9]+(?:[._-][a-z0-9]+)*",
    "namespace": r"[a-z0-9]+(?:[._-][a-z0-9]+)*",
}


@dataclass(frozen=True)
class Op:
    handler: Handler
    summary: str
    status: int = 200  # success status
    body: dict | None = None  # JSON schema of the request body
    query: dict[str, dict] = field(default_factory=dict)  # name -> JSON schema
    auth: str = "user"  # "none": anyone; "optional": anonymous sees public things; "user": signed in
    response: dict | None = None  # JSON schema of the success body


@dataclass
class ApiRoute:
    name: str
    template: str
    ops: dict[str, Op]
    pattern: re.Pattern = field(init=False)

    def __post_init__(self) -> None:
        regex = re.sub(r"\{(\w+)\}", lambda m: f"(?P<{m.group(1)}>{PARAM_PATTERNS.get(m.group(1), '[^/]+')})",
                       self.template.strip("/"))
        self.pattern = re.compile(regex + "/?")  # with or without the trailing slash


async def caller(request: web.Request) -> Principal | None:
    """The signed-in principal (session cookie + CSRF header for writes, or a Bearer API token)."""
    if CALLER in request:
        return request[CALLER]
    gw = gateway(request)
    found = await api_caller(gw.pool, gw.config, gw.public_keys, authorization=request.headers.get("Authorization", ""),
                             session=request.cookies.get(SESSION_COOKIE))
    principal = found.principal if found else None
    if (found is not None and found.by_session and request.method in WRITE_METHODS
            and request.headers.get("X-CSRF-Token") != found.csrf_token):
        raise ApiError(403, "missing or wrong X-CSRF-Token header: send the csrf_token from sign-in with "
                            "every change made with a session cookie", error_type="csrf_failure")
    request[CALLER] = principal
    return principal


def not_signed_in() -> ApiError:
    return ApiError(401, "sign in first: POST /api/v1/signin, or send a Bearer API token", error_type="unauthorized")


def request_principal(request: web.Request) -> Principal | None:
    """Who this request acts as, once `caller` (or a lookup that calls it) has run."""
    return request.get(CALLER)


async def signed_in(request: web.Request) -> Principal:
    principal = await caller(request)
    if principal is None:
        raise not_signed_in()
    return principal


async def signed_in_superuser(request: web.Request, may: str = "do this") -> Principal:
    """The caller, who must be a superuser (401 when not signed in, 403 otherwise)."""
    principal = await signed_in(request)
    if not principal.superuser:
        raise ApiError(403, f"only superusers (SUPER_USERS in config.yaml) may {may}", error_type="insufficient_scope")
    return principal


async def json_body(request: web.Request) -> dict[str, Any]:
    """The request's JSON object, read and checked at the edge (size, depth, numbers, text: edge.py)."""
    if not request.can_read_body:
        return {}
    body = edge.parse_json(await edge.read_body(request) or b"{}")
    if not isinstance(body, dict):
        raise ApiError(400, "the JSON body must be an object")
    return body


@overload
def text_field(body: dict, key: str, *, required: Literal[True], max_length: int = 4096, default: str | None = None) -> str: ...


@overload
def text_field(body: dict, key: str, *, required: bool = False, max_length: int = 4096,
               default: str | None = None) -> str | None: ...


def text_field(body: dict, key: str, *, required: bool = False, max_length: int = 4096, default: str | None = None) -> str | None:
    value = body.get(key, default)
    if value is None:
        if required:
            raise ApiError(400, f"field {key!r} is required")
        return None
    if not isinstance(value, str):
        raise ApiError(400, f"field {key!r} must be a string")
    if len(value) > max_length:
        raise ApiError(400, f"field {key!r} is longer than {max_length} characters")
    return value


def namespace_name(body: dict, key: str) -> str:
    """A name for a new user or organisation, checked against the namespace grammar."""
    name = text_field(body, key, required=True, max_length=255)
    problem = accounts.namespace_name_problem(name)
    if problem:
        raise ApiError(400, problem)
    return name


@overload
def choice_field(body: dict, key: str, options: tuple[str, ...], *, required: Literal[True] = True,
                 default: str | None = None) -> str: ...


@overload
def choice_field(body: dict, key: str, options: tuple[str, ...], *, required: bool, default: str | None = None) -> str | None: ...


def choice_field(body: dict, key: str, options: tuple[str, ...], *, required: bool = True, default: str | None = None) -> str | None:
    value = body.get(key, default)
    if value is None and not required:
        return None
    if value not in options:
        raise ApiError(400, f"field {key!r} must be one of {', '.join(options)}; got {value!r}")
    return value


async def namespace_for(request: web.Request, name: str, *, need: str | None = None):
    """(namespace row, caller's role). 404 when it does not exist; 403 when `need` ('member' or
    'admin') is not met. Organisation names are not secret, so existence is not hidden."""
    gw = gateway(request)
    if need and gw.switches.access.requires_credentials():
        await signed_in(request)
    row = await accounts.namespace_row(gw.pool, name)
    if row is None:
        raise ApiError(404, f"organization {name!r} not found", error_type="not_found")
    principal = await caller(request)
    role = await access_model.namespace_role(gw.pool, principal, row["id"])
    if principal is None:
        role = gw.switches.access.role_of_anonymous(role)  # open access: anonymous callers hold every right
    if need == "admin" and role != "admin":
        if principal is None:
            await signed_in(request)
        raise ApiError(403, f"you must be an administrator of {name} for this", error_type="insufficient_scope")
    if need == "member" and role is None:
        if principal is None:
            await signed_in(request)
        raise ApiError(403, f"you must be a member of {name} for this", error_type="insufficient_scope")
    return row, role


async def organization_for(request: web.Request, name: str, *, need: str | None = None):
    row, role = await namespace_for(request, name, need=need)
    if row["kind"] != "organization":
        raise ApiError(404, f"organization {name!r} not found ({name} is a user)", error_type="not_found")
    return row, role


async def repository_for(request: web.Request, repository: str, need: str = "read"):
    """(repository row, caller's role). A repository the caller may not read is reported missing."""
    gw = gateway(request)
    principal = await caller(request)
    if need != "read" and gw.switches.access.requires_credentials():
        principal = await signed_in(request)
    row, role = await access_model.repository_role(gw.pool, principal, repository)
    if row is not None and principal is None:
        role = gw.switches.access.role_of_anonymous(role)  # open access: anonymous callers hold every right
    if row is None or role is None:
        raise ApiError(404, f"repository {repository} not found", error_type="not_found")
    if access_model.RANK[role] < access_model.RANK[need]:
        if principal is None:
            await signed_in(request)
        raise ApiError(403, f"you need {need} permission on {repository} for this", error_type="insufficient_scope")
    if (row["state"] == "readonly" and request.method in WRITE_METHODS
            and (request.get(ROUTE), request.method) not in READ_ONLY_REPOSITORY_EXEMPT):
        raise repository_read_only(repository)
    return row, role


# Writes that name a repository yet are allowed while it is READ_ONLY: ending the state, exporting its
# usage logs (which changes nothing of the repository) and deleting it whole (as Quay allows, and as
# deleting its organisation would). Every other /api/v1 write that names a repository resolves it
# through `repository_for` (or, for a robot's permissions, `writable_repository`) and is refused there,
# whatever the caller's role.
READ_ONLY_REPOSITORY_EXEMPT = frozenset({("api:repository_state", "PUT"), ("api:repository_exportlogs", "POST"),
                                         ("api:repository", "DELETE")})


def repository_read_only(repository: str) -> ApiError:
    return ApiError(405, repository_read_only_error(repository).message, error_type="repository_read_only",
                    detail={"is_readonly": True, "repository": repository})


def writable_repository(row, repository: str) -> None:
    """Refuse a change to a READ_ONLY repository reached by name from another resource (a robot's permissions)."""
    if row is not None and row["state"] == "readonly":
        raise repository_read_only(repository)


async def sees_everything(request: web.Request) -> bool:
    """Whether the caller reads every repository: a superuser, or anyone without credentials on an
    open-access registry. Every listing asks this, so a listing never hides what a lookup shows."""
    principal = await caller(request)
    return bool(principal and principal.superuser) or (principal is None and gateway(request).switches.access.grants_everything())


async def readable_only(request: web.Request, items: list[T], name: Callable[[T], str]) -> list[T]:
    """The items naming a repository (`name(item)`: its full name) that the caller may read: in every
    listing, a repository the caller may not read is as absent as one that does not exist."""
    gw = gateway(request)
    principal = await caller(request)
    if await sees_everything(request):
        return items
    readable = await access_model.readable_names(gw.pool, principal, {name(item) for item in items})
    return [item for item in items if name(item) in readable]


async def log_action(conn: Db, request: web.Request, kind: str, *, namespace_id=None, namespace=None, repository_id=None,
                     repository=None, **metadata) -> None:
    principal = request.get(CALLER)
    await record(conn, Entry(kind, namespace_id, namespace, repository_id, repository, principal, request.remote, metadata))


def ok(data: Any = None, status: int = 200) -> web.Response:
    if status == 204:
        return web.Response(status=204)
    return web.Response(status=status, body=json.dumps(data, default=str), content_type="application/json")


def iso(value) -> str | None:
    return value.isoformat() if value is not None else None
