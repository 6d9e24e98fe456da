"""Storage quotas in Quay's API shape (`endpoints/api/namespacequota.py`), for organisations and
user namespaces: one quota per namespace with Warning and Reject limits in percent of it.

Who may: members read their organisation's quota, users their own; superusers set any. An
organisation's administrators set its quota too, unless the operator set a system-wide default
(DEFAULT_SYSTEM_REJECT_QUOTA_BYTES), which only superusers may lift (Quay's rule). Everything answers
404 while FEATURE_QUOTA_MANAGEMENT is off, as in Quay. Usage is exact (shared/registry/quota.py);
the organisation's view carries it as Quay's `quota_report`.
"""
from __future__ import annotations

from aiohttp import web

from shared.errors import ApiError
from shared.model import accounts, quotas
from shared.registry import quota as usage

from ..v2.base import gateway
from .base import ApiRoute, Op, json_body, log_action, ok, organization_for, signed_in, signed_in_superuser

LIMIT_SCHEMA = {"type": "object", "properties": {"type": {"type": "string", "enum": list(quotas.LIMIT_TYPES)},
                                                 "threshold_percent": {"type": "integer", "minimum": 1, "maximum": 100}}}
QUOTA_SCHEMA = {"type": "object", "properties": {"limit_bytes": {"type": "integer", "minimum": 1},
                                                 "limit": {"type": "string", "description": "e.g. 10 GiB"}}}
CREATED = {"type": "string", "enum": ["Created"]}
LIST = {"type": "array", "items": {"type": "object"}}  # Quay answers these with a bare list


def _enabled(request: web.Request) -> None:
    if not gateway(request).config.feature_quota_management:
        raise ApiError(404, "quotas are disabled on this registry (FEATURE_QUOTA_MANAGEMENT)", error_type="not_found")


def _id(value: str, what: str) -> int:
    if not value.isdigit() or len(value) > 18:
        raise ApiError(404, f"{what} {value!r} not found", error_type="not_found")
    return int(value)


async def quota_view(db, row) -> dict:
    limits = await quotas.limits_of(db, row["id"])
    return {"id": row["id"], "limit_bytes": row["limit_bytes"], "limit": quotas.human_size(row["limit_bytes"]),
            "default_config": False,
            "limits": [{"id": r["id"], "type": r["kind"], "limit_percent": r["percent"]} for r in limits]}


async def quota_report(gw, namespace_id: int) -> dict:
    """Quay's `quota_report` (with Meridian's exact usage; there is never a backfill)."""
    found = await usage.limits(gw.pool, namespace_id, usage.policy_for(gw.config))
    used = await usage.namespace_usage(gw.pool, namespace_id)
    return {"quota_bytes": used, "configured_quota": found.limit_bytes, "reject_bytes": found.reject_bytes,
            "percent_consumed": round(100 * used / found.limit_bytes, 1) if found.limit_bytes else None,
            "default_config": found.limit_bytes is not None and not found.configured,
            "running_backfill": "complete", "backfill_status": "complete"}


# Whose quota, and may the caller change it


async def _org(request: web.Request, orgname: str, *, write: bool):
    _enabled(request)
    gw = gateway(request)
    row, role = await organization_for(request, orgname, need="admin" if write else "member")
    if write and gw.config.default_system_reject_quota_bytes and gw.switches.access.requires_credentials():
        principal = await signed_in(request)
        if not principal.superuser:
            raise ApiError(403, "a system-wide quota default is set (DEFAULT_SYSTEM_REJECT_QUOTA_BYTES): only superusers "
                                "change quotas", error_type="insufficient_scope")
    return row


async def _own(request: web.Request):
    _enabled(request)
    principal = await signed_in(request)
    row = await accounts.namespace_row(gateway(request).pool, principal.username)
    if row is None:
        raise ApiError(404, "you have no namespace of your own", error_type="not_found")
    return row


async def _user_namespace(request: web.Request, namespace: str):
    _enabled(request)
    await signed_in_superuser(request, "manage quotas of user namespaces")
    row = await accounts.namespace_row(gateway(request).pool, namespace)
    if row is None or row["kind"] != "user":
        raise ApiError(404, f"user {namespace!r} not found", error_type="not_found")
    return row


async def _quota(request: web.Request, namespace_row, quota_id: str):
    found = await quotas.quota(gateway(request).pool, namespace_row["id"], _id(quota_id, "quota"))
    if found is None:
        raise ApiError(404, f"quota {quota_id} not found", error_type="not_found")
    return found


async def _limit(request: web.Request, quota_row, limit_id: str):
    found = await quotas.limit(gateway(request).pool, quota_row["id"], _id(limit_id, "quota limit"))
    if found is None:
        raise ApiError(404, f"quota limit {limit_id} not found", error_type="not_found")
    return found


# Reading and changing, shared by the organisation, user and superuser routes


def _required_limit_bytes(body: dict) -> int:
    found = _limit_bytes(body)
    if found is None:
        raise ApiError(400, "give limit_bytes (a number of bytes) or limit (e.g. \"10 GiB\")")
    return found


def _limit_bytes(body: dict) -> int | None:
    if "limit_bytes" in body:
        value = body["limit_bytes"]
        if not isinstance(value, int) or isinstance(value, bool) or value < 1 or value >= 1 << 62:
            raise ApiError(400, f"field 'limit_bytes' must be a positive whole number of bytes; got {value!r}")
        return value
    if "limit" in body:
        parsed = quotas.parse_limit(body["limit"]) if isinstance(body["limit"], str) else None
        if parsed is None or parsed < 1 or parsed >= 1 << 62:
            raise ApiError(400, quotas.INVALID_LIMIT)
        return parsed
    return None


def _limit_fields(body: dict, current=None) -> tuple[str, int]:
    kind = body.get("type", current["kind"] if current else None)
    if kind not in quotas.LIMIT_TYPES:
        raise ApiError(400, f"field 'type' must be one of {', '.join(quotas.LIMIT_TYPES)}; got {kind!r}")
    percent = body.get("threshold_percent", current["percent"] if current else None)
    if not isinstance(percent, int) or isinstance(percent, bool) or not 0 < percent <= 100:
        raise ApiError(400, f"field 'threshold_percent' must be a whole number in (0, 100]; got {percent!r}")
    return kind, percent


async def _list(request, namespace_row) -> web.Response:
    db = gateway(request).pool
    return ok([await quota_view(db, row) for row in await quotas.quotas_of(db, namespace_row["id"])])


async def _create(request, namespace_row) -> web.Response:
    gw = gateway(request)
    limit_bytes = _required_limit_bytes(await json_body(request))
    async with gw.pool.acquire() as conn:
        async with conn.transaction():
            try:
                quota_id = await quotas.create(conn, namespace_row["id"], namespace_row["name"], limit_bytes)
            except quotas.QuotaConflict as exc:
                raise ApiError(400, str(exc)) from None
            await log_action(conn, request, "org_create_quota", namespace_id=namespace_row["id"],
                             namespace=namespace_row["name"], quota_id=quota_id, limit_bytes=limit_bytes)
    return ok("Created", 201)


async def _update(request, namespace_row, quota_row) -> web.Response:
    gw = gateway(request)
    limit_bytes = _limit_bytes(await json_body(request))
    if limit_bytes is not None:
        async with gw.pool.acquire() as conn:
            async with conn.transaction():
                await quotas.set_limit_bytes(conn, quota_row["id"], limit_bytes)
                await log_action(conn, request, "org_change_quota", namespace_id=namespace_row["id"],
                                 namespace=namespace_row["name"], quota_id=quota_row["id"], limit_bytes=limit_bytes)
    return ok(await quota_view(gw.pool, await quotas.quota(gw.pool, namespace_row["id"], quota_row["id"]) or quota_row))


async def _delete(request, namespace_row, quota_row) -> web.Response:
    gw = gateway(request)
    async with gw.pool.acquire() as conn:
        async with conn.transaction():
            await quotas.delete(conn, quota_row["id"])
            await log_action(conn, request, "org_delete_quota", namespace_id=namespace_row["id"],
                             namespace=namespace_row["name"], quota_id=quota_row["id"])
    return ok(status=204)


async def _limits(request, quota_row) -> web.Response:
    rows = await quotas.limits_of(gateway(request).pool, quota_row["id"])
    return ok([{"id": r["id"], "type": r["kind"], "limit_percent": r["percent"]} for r in rows])


async def _add_limit(request, namespace_row, quota_row) -> web.Response:
    gw = gateway(request)
    kind, percent = _limit_fields(await json_body(request))
    async with gw.pool.acquire() as conn:
        async with conn.transaction():
            try:
                limit_id = await quotas.add_limit(conn, quota_row["id"], kind, percent)
            except quotas.QuotaConflict as exc:
                raise ApiError(400, str(exc)) from None
            await log_action(conn, request, "org_create_quota_limit", namespace_id=namespace_row["id"],
                             namespace=namespace_row["name"], quota_id=quota_row["id"], limit_id=limit_id, type=kind,
                             threshold_percent=percent)
    return ok("Created", 201)


async def _change_limit(request, namespace_row, quota_row, limit_row) -> web.Response:
    gw = gateway(request)
    kind, percent = _limit_fields(await json_body(request), limit_row)
    async with gw.pool.acquire() as conn:
        async with conn.transaction():
            try:
                await quotas.change_limit(conn, limit_row["id"], kind, percent)
            except quotas.QuotaConflict as exc:
                raise ApiError(400, str(exc)) from None
            await log_action(conn, request, "org_change_quota_limit", namespace_id=namespace_row["id"],
                             namespace=namespace_row["name"], quota_id=quota_row["id"], limit_id=limit_row["id"],
                             type=kind, threshold_percent=percent)
    return ok(await quota_view(gw.pool, quota_row))


async def _delete_limit(request, namespace_row, quota_row, limit_row) -> web.Response:
    gw = gateway(request)
    async with gw.pool.acquire() as conn:
        async with conn.transaction():
            await quotas.delete_limit(conn, limit_row["id"])
            await log_action(conn, request, "org_delete_quota_limit", namespace_id=namespace_row["id"],
                             namespace=namespace_row["name"], quota_id=quota_row["id"], limit_id=limit_row["id"])
    return ok(status=204)


# Organisations


async def org_quotas(request: web.Request, orgname: str) -> web.Response:
    return await _list(request, await _org(request, orgname, write=False))


async def create_org_quota(request: web.Request, orgname: str) -> web.Response:
    return await _create(request, await _org(request, orgname, write=True))


async def org_quota(request: web.Request, orgname: str, quota_id: str) -> web.Response:
    namespace_row = await _org(request, orgname, write=False)
    return ok(await quota_view(gateway(request).pool, await _quota(request, namespace_row, quota_id)))


async def update_org_quota(request: web.Request, orgname: str, quota_id: str) -> web.Response:
    namespace_row = await _org(request, orgname, write=True)
    return await _update(request, namespace_row, await _quota(request, namespace_row, quota_id))


async def delete_org_quota(request: web.Request, orgname: str, quota_id: str) -> web.Response:
    namespace_row = await _org(request, orgname, write=True)
    return await _delete(request, namespace_row, await _quota(request, namespace_row, quota_id))


async def org_quota_limits(request: web.Request, orgname: str, quota_id: str) -> web.Response:
    namespace_row = await _org(request, orgname, write=False)
    return await _limits(request, await _quota(request, namespace_row, quota_id))


async def create_org_quota_limit(request: web.Request, orgname: str, quota_id: str) -> web.Response:
    namespace_row = await _org(request, orgname, write=True)
    return await _add_limit(request, namespace_row, await _quota(request, namespace_row, quota_id))


async def org_quota_limit(request: web.Request, orgname: str, quota_id: str, limit_id: str) -> web.Response:
    namespace_row = await _org(request, orgname, write=False)
    found = await _limit(request, await _quota(request, namespace_row, quota_id), limit_id)
    return ok({"id": found["id"], "type": found["kind"], "limit_percent": found["percent"]})


async def update_org_quota_limit(request: web.Request, orgname: str, quota_id: str, limit_id: str) -> web.Response:
    namespace_row = await _org(request, orgname, write=True)
    quota_row = await _quota(request, namespace_row, quota_id)
    return await _change_limit(request, namespace_row, quota_row, await _limit(request, quota_row, limit_id))


async def delete_org_quota_limit(request: web.Request, orgname: str, quota_id: str, limit_id: str) -> web.Response:
    namespace_row = await _org(request, orgname, write=True)
    quota_row = await _quota(request, namespace_row, quota_id)
    return await _delete_limit(request, namespace_row, quota_row, await _limit(request, quota_row, limit_id))


# The signed-in user's own namespace (read; superusers set it)


async def user_quotas(request: web.Request) -> web.Response:
    return await _list(request, await _own(request))


async def user_quota(request: web.Request, quota_id: str) -> web.Response:
    namespace_row = await _own(request)
    return ok(await quota_view(gateway(request).pool, await _quota(request, namespace_row, quota_id)))


async def user_quota_limits(request: web.Request, quota_id: str) -> web.Response:
    namespace_row = await _own(request)
    return await _limits(request, await _quota(request, namespace_row, quota_id))


async def user_quota_report(request: web.Request) -> web.Response:
    namespace_row = await _own(request)
    return ok(await quota_report(gateway(request), namespace_row["id"]))


# Superusers: user namespaces


async def su_user_quotas(request: web.Request, namespace: str) -> web.Response:
    return await _list(request, await _user_namespace(request, namespace))


async def su_create_user_quota(request: web.Request, namespace: str) -> web.Response:
    return await _create(request, await _user_namespace(request, namespace))


async def su_update_user_quota(request: web.Request, namespace: str, quota_id: str) -> web.Response:
    namespace_row = await _user_namespace(request, namespace)
    return await _update(request, namespace_row, await _quota(request, namespace_row, quota_id))


async def su_delete_user_quota(request: web.Request, namespace: str, quota_id: str) -> web.Response:
    namespace_row = await _user_namespace(request, namespace)
    return await _delete(request, namespace_row, await _quota(request, namespace_row, quota_id))


async def su_create_user_quota_limit(request: web.Request, namespace: str, quota_id: str) -> web.Response:
    namespace_row = await _user_namespace(request, namespace)
    return await _add_limit(request, namespace_row, await _quota(request, namespace_row, quota_id))


async def su_update_user_quota_limit(request: web.Request, namespace: str, quota_id: str, limit_id: str) -> web.Response:
    namespace_row = await _user_namespace(request, namespace)
    quota_row = await _quota(request, namespace_row, quota_id)
    return await _change_limit(request, namespace_row, quota_row, await _limit(request, quota_row, limit_id))


async def su_delete_user_quota_limit(request: web.Request, namespace: str, quota_id: str, limit_id: str) -> web.Response:
    namespace_row = await _user_namespace(request, namespace)
    quota_row = await _quota(request, namespace_row, quota_id)
    return await _delete_limit(request, namespace_row, quota_row, await _limit(request, quota_row, limit_id))


ROUTES = [
    ApiRoute("organization_quotas", "/organization/{orgname}/quota", {
        "GET": Op(org_quotas, "The organization's quota with its limits (a list of at most one)", response=LIST),
        "POST": Op(create_org_quota, "Set the organization's quota: {limit_bytes} or {limit: \"10 GiB\"}", status=201,
                   body=QUOTA_SCHEMA, response=CREATED),
    }),
    ApiRoute("organization_quota", "/organization/{orgname}/quota/{quota_id}", {
        "GET": Op(org_quota, "One quota"),
        "PUT": Op(update_org_quota, "Change the quota's size", body=QUOTA_SCHEMA),
        "DELETE": Op(delete_org_quota, "Remove the quota and its limits", status=204),
    }),
    ApiRoute("organization_quota_limits", "/organization/{orgname}/quota/{quota_id}/limit", {
        "GET": Op(org_quota_limits, "The quota's Warning and Reject limits", response=LIST),
        "POST": Op(create_org_quota_limit, "Add a limit: {type: Warning|Reject, threshold_percent}", status=201,
                   body={**LIMIT_SCHEMA, "required": ["type", "threshold_percent"]}, response=CREATED),
    }),
    ApiRoute("organization_quota_limit", "/organization/{orgname}/quota/{quota_id}/limit/{limit_id}", {
        "GET": Op(org_quota_limit, "One limit"),
        "PUT": Op(update_org_quota_limit, "Change a limit's type or threshold", body=LIMIT_SCHEMA),
        "DELETE": Op(delete_org_quota_limit, "Remove a limit", status=204),
    }),
    ApiRoute("user_quota_report", "/user/quota/report", {
        "GET": Op(user_quota_report, "Your namespace's usage and quota (Quay's quota_report)"),
    }),
    ApiRoute("user_quotas", "/user/quota", {"GET": Op(user_quotas, "Your namespace's quota (set by superusers)", response=LIST)}),
    ApiRoute("user_quota", "/user/quota/{quota_id}", {"GET": Op(user_quota, "One quota of your namespace")}),
    ApiRoute("user_quota_limits", "/user/quota/{quota_id}/limit", {"GET": Op(user_quota_limits, "Its limits", response=LIST)}),
    ApiRoute("superuser_user_quotas", "/superuser/users/{namespace}/quota", {
        "GET": Op(su_user_quotas, "A user namespace's quota (superuser)", response=LIST),
        "POST": Op(su_create_user_quota, "Set a user namespace's quota (superuser)", status=201, body=QUOTA_SCHEMA,
                   response=CREATED),
    }),
    ApiRoute("superuser_user_quota", "/superuser/users/{namespace}/quota/{quota_id}", {
        "PUT": Op(su_update_user_quota, "Change a user namespace's quota (superuser)", body=QUOTA_SCHEMA),
        "DELETE": Op(su_delete_user_quota, "Remove a user namespace's quota (superuser)", status=204),
    }),
    ApiRoute("superuser_user_quota_limits", "/superuser/users/{namespace}/quota/{quota_id}/limit", {
        "POST": Op(su_create_user_quota_limit, "Add a limit to a user namespace's quota (superuser)", status=201,
                   body={**LIMIT_SCHEMA, "required": ["type", "threshold_percent"]}, response=CREATED),
    }),
    ApiRoute("superuser_user_quota_limit", "/superuser/users/{namespace}/quota/{quota_id}/limit/{limit_id}", {
        "PUT": Op(su_update_user_quota_limit, "Change a limit of a user namespace's quota (superuser)", body=LIMIT_SCHEMA),
        "DELETE": Op(su_delete_user_quota_limit, "Remove a limit of a user namespace's quota (superuser)", status=204),
    }),
]
