"""`GET /v2/auth`: Docker token auth. Credentials (or none) in, an RS256 JWT out, whose access is
silently down-scoped to what the caller may do (as Quay and Distribution's token servers do)."""
from __future__ import annotations

import re
import time
import uuid

from aiohttp import web

from shared.errors import RegistryError
from shared.model import access as access_model
from shared.model import accounts
from shared.model.accounts import Principal
from shared.model.audit import Entry
from shared.registry.repositories import name_problem

from ..credentials import BadCredentials, parse_basic
from ..logins import Throttled
from .base import gateway
from .edge import text_problem

ACTIONS = ("pull", "push", "delete", "*")
SCOPE_RE = re.compile(r"^repository:(?P<name>[^:]+):(?P<actions>[^:]+)$")


def parse_scope(scope: str, hostname: str) -> tuple[str, set[str]] | None:
    """(repository, actions) of `repository:[host/]ns/repo:pull,push`; None for other scope types."""
    if scope.startswith("registry:"):
        return None
    found = SCOPE_RE.match(scope)
    actions = set(found.group("actions").split(",")) if found else set()
    if not found or not actions or not actions <= set(ACTIONS):
        raise RegistryError("UNSUPPORTED", f"Unable to decode repository and actions: {scope}", status=400)
    name = found.group("name")
    if name.startswith(hostname + "/"):
        name = name[len(hostname) + 1:]
    problem = name_problem(name)
    if problem:
        raise RegistryError("NAME_INVALID", problem, detail={"name": name})
    return name, actions


async def grantable(gw, principal: Principal | None, name: str) -> set[str]:
    """Every action the principal may take on `name` (created on push when it is missing)."""
    if gw.switches.access.grants_everything():
        return set(ACTIONS)
    row, role = await access_model.repository_role(gw.pool, principal, name)
    if row is None:
        namespace = await accounts.namespace_row(gw.pool, name.split("/", 1)[0])
        if namespace is None:
            return set()
        if access_model.can_create_in(await access_model.namespace_role(gw.pool, principal, namespace["id"])):
            return {"pull", "push", "delete"}
        return set()
    rank = access_model.RANK[role]
    granted = set()
    if rank >= 1:
        granted.add("pull")
    if rank >= 2:
        granted |= {"push", "delete"}
    if rank >= 3:
        granted.add("*")
    return granted


async def _caller(request: web.Request) -> tuple[Principal | None, str]:
    """(principal, kind) of the Basic credentials, (None, "anonymous") without any; a challenge (401)
    for credentials that are malformed (no colon, not base64, not UTF-8, NUL) or do not check out."""
    gw = gateway(request)
    header = request.headers.get("Authorization", "")
    basic: tuple[str, str] | None = None  # bound before parsing: a malformed header must not leave it unset
    try:
        basic = parse_basic(header) if header else None
        if header and basic is None:
            raise BadCredentials("/v2/auth takes Basic credentials (user password, robot token or API token)")
        if basic is None:
            return None, "anonymous"
        if any(text_problem(part) is not None for part in basic):
            raise BadCredentials("malformed Basic credentials")
        return await gw.logins.basic(request, *basic)  # throttled; failures logged there
    except BadCredentials as exc:
        raise gw.authorizer.challenge(message=str(exc)) from None
    except Throttled as exc:
        raise RegistryError("TOOMANYREQUESTS", str(exc), headers={"Retry-After": str(exc.retry_after)}) from None


async def issue(request: web.Request) -> web.Response:
    gw = gateway(request)
    config = gw.config
    principal, kind = await _caller(request)

    scopes = request.query.getall("scope", [])
    if principal is None:
        if not scopes:
            raise gw.authorizer.challenge(message="authentication required: no credentials and no scope")
        if not config.feature_anonymous_access and gw.switches.access.requires_credentials():
            raise gw.authorizer.challenge(message="Anonymous access is not allowed")
    access = await _granted_access(gw, principal, scopes)
    now = int(time.time())
    claims = {
        "iss": config.instance_service_key_service,
        "aud": config.server_hostname,
        "nbf": now - 5,
        "iat": now,
        "exp": now + config.token_validity_lifetime_s,
        "jti": uuid.uuid4().hex,
        "sub": principal.username if principal else "(anonymous)",
        "access": access,
        "context": {"kind": kind, **({"user_id": principal.id} if principal else {})},
    }
    token = gw.keys.signing_key().sign(claims)
    if principal is not None and config.action_log_audit_logins:
        gw.audit.add(Entry("login_success", performer=principal, ip=request.remote,
                           metadata={"type": "v2auth", "kind": kind, "useragent": request.headers.get("User-Agent", "")}))
    return web.json_response({
        "token": token, "access_token": token, "expires_in": config.token_validity_lifetime_s,
        "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
    })


async def _granted_access(gw, principal: Principal | None, scopes: list[str]) -> list[dict]:
    """The token's `access` claim: of each requested scope, what the principal may do."""
    access: list[dict] = []
    for scope in scopes:
        for item in scope.split(" "):
            if item.startswith("registry:catalog:"):
                access.append({"type": "registry", "name": "catalog", "actions": ["*"]})
                continue
            parsed = parse_scope(item, gw.config.server_hostname)
            if parsed is None:
                continue
            name, wanted = parsed
            allowed = sorted(wanted & await grantable(gw, principal, name))
            access.append({"type": "repository", "name": name, "actions": allowed})
    return access
