"""Sign-in (session cookie + CSRF token), the signed-in user, personal API tokens, and user
management for superusers."""
from __future__ import annotations

import secrets
import time

from aiohttp import web

from shared.errors import ApiError
from shared.model import accounts
from shared.model.audit import Entry, record
from shared.secrets import new_token

from ..credentials import SESSION_COOKIE
from ..logins import Throttled
from ..v2.base import gateway
from . import superuser
from .base import (
    ApiRoute,
    Op,
    iso,
    json_body,
    log_action,
    namespace_name,
    not_signed_in,
    ok,
    signed_in,
    signed_in_superuser,
    text_field,
)

# What an HTML form can send. A form on another site could otherwise sign the visitor in as the
# form's author (login CSRF): `enctype="text/plain"` makes a body that parses as JSON.
FORM_CONTENT_TYPES = frozenset({"text/plain", "application/x-www-form-urlencoded", "multipart/form-data"})


async def signin(request: web.Request) -> web.Response:
    gw = gateway(request)
    if request.content_type in FORM_CONTENT_TYPES:
        raise ApiError(400, "sign in with a JSON body sent as Content-Type: application/json")
    body = await json_body(request)
    username = text_field(body, "username", required=True, max_length=255)
    password = text_field(body, "password", required=True, max_length=1024)
    try:
        principal = await gw.logins.password(request, username, password)  # throttled; failures logged there
    except Throttled as exc:
        raise ApiError(429, str(exc), error_type="too_many_requests", headers={"Retry-After": str(exc.retry_after)}) from None
    if principal is None:
        raise ApiError(401, "Invalid username or password", error_type="invalid_credentials")
    session, csrf = new_token(48), secrets.token_urlsafe(24)
    lifetime = gw.config.session_cookie_lifetime_s
    if gw.switches.writes.read_only:
        # Nothing may be written: the session is a token signed with this instance's service key.
        now = int(time.time())
        session = gw.keys.signing_key().sign({"typ": "session", "sub": str(principal.id), "csrf": csrf, "iat": now,
                                              "exp": now + lifetime, "aud": gw.config.server_hostname,
                                              "iss": gw.config.instance_service_key_service})
    else:
        async with gw.pool.acquire() as conn:
            async with conn.transaction():
                await accounts.create_session(conn, principal.id, session, csrf, lifetime)
                await record(conn, Entry("login_success", performer=principal, ip=request.remote, metadata={"type": "api"}))
    response = ok({"success": True, "username": principal.username, "csrf_token": csrf})
    response.set_cookie(SESSION_COOKIE, session, max_age=lifetime, httponly=True, samesite="Strict",
                        secure=gw.config.preferred_url_scheme == "https", path="/")
    return response


async def signout(request: web.Request) -> web.Response:
    gw = gateway(request)
    await signed_in(request)
    session = request.cookies.get(SESSION_COOKIE)
    if session and not gw.switches.writes.read_only:
        await accounts.end_session(gw.pool, session)
    response = ok({"success": True})
    response.del_cookie(SESSION_COOKIE, path="/")
    return response


async def current_user(request: web.Request) -> web.Response:
    gw = gateway(request)
    principal = await signed_in(request)
    row = await accounts.user_profile(gw.pool, principal.id)
    if row is None:  # deleted since the credentials were checked
        raise not_signed_in()
    orgs = await accounts.organizations_of_user(gw.pool, principal.id)
    return ok({
        "username": row["username"], "email": row["email"], "super_user": principal.superuser,
        "is_robot": principal.robot, "created": iso(row["created_at"]),
        "organizations": [{"name": o["name"], "is_org_admin": o["is_admin"]} for o in orgs],
        "registry_state": gw.config.registry_state,
    })


async def create_token(request: web.Request) -> web.Response:
    gw = gateway(request)
    principal = await signed_in(request)
    if principal.robot:
        raise ApiError(403, "robots sign in with their own token; they cannot create API tokens", error_type="insufficient_scope")
    body = await json_body(request)
    title = text_field(body, "title", max_length=255, default="") or ""
    days = body.get("expiration_days")
    if days is not None and (not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= 3650):
        raise ApiError(400, "field 'expiration_days' must be a whole number of days from 1 to 3650, or absent for no expiry")
    async with gw.pool.acquire() as conn:
        async with conn.transaction():
            token_id, token, expires = await accounts.create_api_token(conn, principal.id, title, days)
            await log_action(conn, request, "create_api_token", title=title)
    return ok({"id": token_id, "title": title, "token": token, "expires": iso(expires)}, 201)


async def list_tokens(request: web.Request) -> web.Response:
    gw = gateway(request)
    principal = await signed_in(request)
    rows = await accounts.api_tokens_of(gw.pool, principal.id)
    return ok({"tokens": [{"id": r["id"], "title": r["title"], "created": iso(r["created_at"]),
                           "expires": iso(r["expires_at"]), "last_used": iso(r["last_used"])} for r in rows]})


async def revoke_token(request: web.Request, tokenid: str) -> web.Response:
    gw = gateway(request)
    principal = await signed_in(request)
    if not tokenid.isascii() or not tokenid.isdigit() or len(tokenid) > 18:
        raise ApiError(404, f"token {tokenid} not found", error_type="not_found")
    async with gw.pool.acquire() as conn:
        async with conn.transaction():
            if not await accounts.revoke_api_token(conn, int(tokenid), principal.id):
                raise ApiError(404, f"token {tokenid} not found", error_type="not_found")
            await log_action(conn, request, "revoke_api_token", token_id=int(tokenid))
    return ok(status=204)


async def list_users(request: web.Request) -> web.Response:
    gw = gateway(request)
    await signed_in_superuser(request)
    rows = await accounts.all_users(gw.pool)
    return ok({"users": [{"username": r["username"], "email": r["email"], "enabled": r["enabled"],
                          "super_user": accounts.is_superuser(r["username"], gw.config.super_users),
                          "created": iso(r["created_at"])} for r in rows]})


async def create_user(request: web.Request) -> web.Response:
    gw = gateway(request)
    await signed_in_superuser(request)
    body = await json_body(request)
    username = namespace_name(body, "username")
    email = text_field(body, "email", max_length=255)
    password = text_field(body, "password", max_length=1024)
    generated = password is None
    if password is None:
        password = new_token(20)
    problem = accounts.password_problem(password)
    if problem:
        raise ApiError(400, problem)
    async with gw.pool.acquire() as conn:
        async with conn.transaction():
            await accounts.create_user(conn, username, password, email)
            await log_action(conn, request, "user_create", username=username)
    return ok({"username": username, "email": email, **({"password": password} if generated else {})}, 201)


async def delete_user(request: web.Request, username: str) -> web.Response:
    gw = gateway(request)
    principal = await signed_in_superuser(request)
    if username == principal.username:
        raise ApiError(400, "you cannot delete yourself")
    async with gw.pool.acquire() as conn:
        async with conn.transaction():
            user_id = await accounts.user_id_by_name(conn, username, include_disabled=True)
            if user_id is None:
                raise ApiError(404, f"user {username!r} not found", error_type="not_found")
            await accounts.delete_user(conn, user_id)
            await log_action(conn, request, "user_delete", username=username)
    return ok(status=204)


CREDENTIALS = {"type": "object", "required": ["username", "password"],
               "properties": {"username": {"type": "string"}, "password": {"type": "string"}}}
ROUTES = [
    ApiRoute("signin", "/signin", {"POST": Op(signin, "Sign in; sets the session cookie and returns the CSRF token",
                                              body=CREDENTIALS, auth="none")}),
    ApiRoute("signout", "/signout", {"POST": Op(signout, "End the session")}),
    ApiRoute("user", "/user/", {"GET": Op(current_user, "The signed-in user")}),
    ApiRoute("user_tokens", "/user/tokens", {
        "GET": Op(list_tokens, "List your API tokens (never their secrets)"),
        "POST": Op(create_token, "Create a personal API token (shown once)", status=201,
                   body={"type": "object", "properties": {"title": {"type": "string"},
                                                          "expiration_days": {"type": "integer", "minimum": 1, "maximum": 3650}}}),
    }),
    ApiRoute("user_token", "/user/tokens/{tokenid}", {"DELETE": Op(revoke_token, "Revoke one of your API tokens", status=204)}),
    ApiRoute("superuser_users", "/superuser/users/", {
        "GET": Op(list_users, "List users (superuser)"),
        "POST": Op(create_user, "Create a user (superuser); a password is generated when none is given", status=201,
                   body={"type": "object", "required": ["username"],
                         "properties": {"username": {"type": "string"}, "email": {"type": "string"}, "password": {"type": "string"}}}),
    }),
    ApiRoute("superuser_user", "/superuser/users/{username}", {
        "DELETE": Op(delete_user, "Delete a user (superuser)", status=204),
        "PUT": Op(superuser.update_user, "Change a user's e-mail or password, or disable or enable them (superuser); "
                                         "a new password ends their sessions", body=superuser.USER_CHANGE),
    }),
]
