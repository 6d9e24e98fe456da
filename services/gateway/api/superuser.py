"""Superusers' registry-wide views and user management beyond create and delete (users.py):
change a user's e-mail or password, disable or enable them; the registry's read-only status with
what the read-only procedure needs (docs/operations.md); registry-wide usage logs."""
from __future__ import annotations

from aiohttp import web

from shared import servicekeys
from shared.errors import READ_ONLY_MESSAGE, ApiError
from shared.model import accounts, audit, registry_logs, user_admin

from ..state import gateway
from .base import ApiRoute, Op, iso, json_body, log_action, ok, signed_in_superuser, text_field
from .logs import RANGE_QUERY, time_range


def _email(body: dict) -> str | None:
    email = text_field(body, "email", max_length=255)
    if email in (None, ""):
        return None
    if "@" not in email or any(c.isspace() for c in email):
        raise ApiError(400, f"email {email!r} is not an e-mail address")
    return email


async def update_user(request: web.Request, username: str) -> web.Response:
    """{"email": ..., "password": ..., "enabled": bool}: any of them, all applied or none."""
    gw = gateway(request)
    principal = await signed_in_superuser(request, "change users")
    body = await json_body(request)
    if not {"email", "password", "enabled"} & set(body):
        raise ApiError(400, "give email, password and/or enabled")
    email = _email(body) if "email" in body else None
    password = text_field(body, "password", max_length=1024) if "password" in body else None
    if "password" in body:
        problem = accounts.password_problem(password)
        if problem:
            raise ApiError(400, problem)
    enabled = body.get("enabled")
    if "enabled" in body and not isinstance(enabled, bool):
        raise ApiError(400, "field 'enabled' must be true or false")
    if enabled is False and username == principal.username:
        raise ApiError(400, "you cannot disable yourself")
    async with gw.pool.acquire() as conn:
        async with conn.transaction():
            row = await user_admin.user_row(conn, username)
            if row is None:
                raise ApiError(404, f"user {username!r} not found", error_type="not_found")
            if "email" in body:
                await user_admin.set_email(conn, row["id"], email)
                await log_action(conn, request, "user_change_email", username=username, email=email)
            if password is not None:
                await user_admin.set_password(conn, row["id"], password)
                await log_action(conn, request, "user_change_password", username=username)  # never the password
            if isinstance(enabled, bool) and enabled != row["enabled"]:
                await user_admin.set_enabled(conn, row["id"], enabled)
                await log_action(conn, request, "user_enable" if enabled else "user_disable", username=username)
            row = await user_admin.user_row(conn, username)
            assert row is not None  # changed inside this transaction
    return ok({"username": row["username"], "email": row["email"], "enabled": row["enabled"], "created": iso(row["created_at"]),
               "super_user": accounts.is_superuser(row["username"], gw.config.super_users)})


async def registry_status(request: web.Request) -> web.Response:
    """The state this gateway runs in, and whether the read-only procedure can start: an operator's
    key (not a gateway's own rotating one) that is approved and unexpired."""
    gw = gateway(request)
    await signed_in_superuser(request, "see the registry status")
    keys = await servicekeys.all_keys(gw.pool)
    now = servicekeys.utcnow()
    operator_keys = [k for k in keys if k["approval_type"] != "automatic"]
    usable = [k for k in operator_keys if k["approved_at"] is not None and (k["expires_at"] is None or k["expires_at"] > now)]
    read_only = gw.switches.writes.read_only
    if read_only:
        next_step = "Set REGISTRY_STATE: normal in config.yaml and restart every service to end read-only mode."
    elif usable:
        next_step = ("An approved key is registered: set REGISTRY_STATE: readonly with INSTANCE_SERVICE_KEY_LOCATION and "
                     "INSTANCE_SERVICE_KEY_KID_LOCATION naming its files, then restart every service.")
    else:
        next_step = ("Register and approve a key first: `meridian keys generate conf/quay`, then `meridian keys add "
                     "conf/quay.jwk --expiration 7` (or add its JWK under Service keys).")
    return ok({
        "state": gw.config.registry_state, "read_only": read_only, "pushes_disabled": gw.config.disable_pushes,
        "read_only_message": READ_ONLY_MESSAGE if read_only else None, "region": gw.config.meridian_region,
        "signing_key": {"kid": gw.keys.current.kid if gw.keys.current else None, "pre_provisioned": read_only},
        "read_only_keys": [{"kid": k["kid"], "name": k["name"], "expires": iso(k["expires_at"])} for k in usable],
        "unapproved_keys": sum(1 for k in keys if k["approved_at"] is None),
        "ready_for_read_only": read_only or bool(usable), "next_step": next_step,
    })


async def registry_logs_list(request: web.Request) -> web.Response:
    gw = gateway(request)
    await signed_in_superuser(request, "read the registry's usage logs")
    start, end = time_range(request)
    cursor = None
    if request.query.get("next_page"):
        cursor = audit.decode_cursor(request.query["next_page"])
        if cursor is None:
            raise ApiError(400, "next_page is not a token this API gave out")
    limit = 100
    rows = await registry_logs.query(gw.pool, start, end, performer=request.query.get("performer") or None,
                                     kind=request.query.get("kind") or None, cursor=cursor, limit=limit + 1)
    result = {"start_time": iso(start), "end_time": iso(end), "logs": [audit.row_view(r) for r in rows[:limit]]}
    if len(rows) > limit:
        last = rows[limit - 1]
        result["next_page"] = audit.encode_cursor(last["datetime"], last["id"])
    return ok(result)


async def registry_logs_aggregate(request: web.Request) -> web.Response:
    gw = gateway(request)
    await signed_in_superuser(request, "read the registry's usage logs")
    start, end = time_range(request)
    rows = await registry_logs.aggregate(gw.pool, start, end, performer=request.query.get("performer") or None,
                                         kind=request.query.get("kind") or None)
    return ok({"aggregated": [{"kind": r["kind"], "count": r["count"], "datetime": r["day"].date().isoformat()} for r in rows]})


USER_CHANGE = {"type": "object", "properties": {"email": {"type": "string", "nullable": True}, "password": {"type": "string"},
                                                "enabled": {"type": "boolean"}}}
ROUTES = [
    ApiRoute("superuser_registrystatus", "/superuser/registrystatus", {
        "GET": Op(registry_status, "The registry's state (normal or read-only), pushes, and whether an approved operator "
                                   "key is ready for read-only mode (superuser)"),
    }),
    ApiRoute("superuser_logs", "/superuser/logs", {
        "GET": Op(registry_logs_list, "Usage logs of the whole registry (superuser)", query=RANGE_QUERY),
    }),
    ApiRoute("superuser_aggregatelogs", "/superuser/aggregatelogs", {
        "GET": Op(registry_logs_aggregate, "Usage log counts per kind per day of the whole registry (superuser)",
                  query=RANGE_QUERY),
    }),
]
