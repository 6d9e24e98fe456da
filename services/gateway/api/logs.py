"""Usage logs per organisation, repository and user: date-range queries with a performer filter and
pages, counts per kind per day, and exports announced to a callback URL or an e-mail address (queued
here, written by ../exports.py)."""
from __future__ import annotations

import datetime as dt
import uuid

from aiohttp import web

from shared.callbacks import url_problem
from shared.errors import ApiError
from shared.model import audit, log_exports

from ..exports import start_export
from ..v2.base import gateway
from .base import ApiRoute, Op, iso, json_body, log_action, ok, organization_for, repository_for, sees_everything, signed_in, text_field


def parse_time(value: str, key: str, *, end: bool) -> dt.datetime:
    """Quay's `%m/%d/%Y` (a whole UTC day; an end date includes its day) or an ISO 8601 instant."""
    try:
        day = dt.datetime.strptime(value, "%m/%d/%Y").replace(tzinfo=dt.UTC)
        return _in_range(day + dt.timedelta(days=1) if end else day, key, value)
    except OverflowError:
        raise _out_of_range(key, value) from None
    except ValueError:
        pass
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(400, f"{key} {value!r} is not a date: use MM/DD/YYYY (UTC day) or ISO 8601 like 2026-11-28T10:00:00Z") from None
    return _in_range(moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC), key, value)


# Dates a query may name: a day of margin either side, so ranges computed from them stay representable.
EARLIEST = dt.datetime(1, 1, 2, tzinfo=dt.UTC)
LATEST = dt.datetime(9999, 12, 30, tzinfo=dt.UTC)


def _out_of_range(key: str, value: str) -> ApiError:
    return ApiError(400, f"{key} {value!r} is out of range: use a date from 01/02/0001 to 12/29/9999")


def _in_range(moment: dt.datetime, key: str, value: str) -> dt.datetime:
    try:
        utc = moment.astimezone(dt.UTC)
    except OverflowError:
        raise _out_of_range(key, value) from None
    if not EARLIEST <= utc <= LATEST:
        raise _out_of_range(key, value)
    return utc


def time_range(request: web.Request) -> tuple[dt.datetime, dt.datetime]:
    now = dt.datetime.now(dt.UTC)
    start_raw, end_raw = request.query.get("starttime"), request.query.get("endtime")
    end = parse_time(end_raw, "endtime", end=True) if end_raw else now + dt.timedelta(seconds=1)
    start = parse_time(start_raw, "starttime", end=False) if start_raw else end - dt.timedelta(days=1)
    if end < start:
        raise ApiError(400, "endtime is before starttime")
    return start, end


async def _scope(request: web.Request, kind: str, name: str | None) -> int:
    """The id of the organisation or repository `name`, or for kind "user" (no name) the caller's."""
    if name is None:
        return (await signed_in(request)).id
    if kind == "organization":
        row, _ = await organization_for(request, name, need="admin")
        return row["id"]
    row, _ = await repository_for(request, name, "admin")
    return row["id"]


async def _visible_to(request: web.Request, kind: str, scope_id: int) -> int | None:
    """For a user's own logs, the user whose current read rights filter them (None: no filter). Their past
    actions on a repository they may no longer read are left out, as those on one since deleted are: the
    logs must not tell them it still exists, or what it is called now (docs/decisions.md, "A user's logs
    leave out repositories they cannot read"). Organisation and repository logs need admin rights on
    their scope and are not filtered; a superuser reads every repository."""
    if kind != "user" or await sees_everything(request):
        return None
    return scope_id


async def _list(request: web.Request, kind: str, name: str | None) -> web.Response:
    gw = gateway(request)
    scope_id = await _scope(request, kind, name)
    start, end = time_range(request)
    cursor = None
    if request.query.get("next_page"):
        cursor = audit.decode_cursor(request.query["next_page"])
        if cursor is None:
            raise ApiError(400, "next_page is not a token this API gave out")
    limit = 100
    rows = await audit.query(gw.pool, kind, scope_id, start, end, performer=request.query.get("performer") or None,
                             cursor=cursor, limit=limit + 1, kind=request.query.get("kind") or None,
                             visible_to=await _visible_to(request, kind, scope_id))
    result = {"start_time": iso(start), "end_time": iso(end), "logs": [audit.row_view(r) for r in rows[:limit]]}
    if len(rows) > limit:
        last = rows[limit - 1]
        result["next_page"] = audit.encode_cursor(last["datetime"], last["id"])
    return ok(result)


async def _aggregate(request: web.Request, kind: str, name: str | None) -> web.Response:
    gw = gateway(request)
    scope_id = await _scope(request, kind, name)
    start, end = time_range(request)
    rows = await audit.aggregate(gw.pool, kind, scope_id, start, end, performer=request.query.get("performer") or None,
                                 kind=request.query.get("kind") or None, visible_to=await _visible_to(request, kind, scope_id))
    return ok({"aggregated": [{"kind": r["kind"], "count": r["count"], "datetime": r["day"].date().isoformat()} for r in rows]})


async def _export(request: web.Request, kind: str, name: str | None) -> web.Response:
    gw = gateway(request)
    if not gw.config.feature_log_export:
        raise ApiError(404, "log export is disabled (FEATURE_LOG_EXPORT)", error_type="not_found")
    scope_id = await _scope(request, kind, name)
    principal = await signed_in(request)
    start, end = time_range(request)
    body = await json_body(request)
    url = text_field(body, "callback_url", max_length=2048)
    email = text_field(body, "callback_email", max_length=320)
    if not url and not email:
        raise ApiError(400, "give callback_url or callback_email: the export is announced there when it is ready")
    if url:
        problem = await url_problem(url, gw.config.meridian_callback_allowed_hosts)
        if problem:
            raise ApiError(400, problem)
    if email and ("@" not in email or any(c in email for c in "\r\n ")):
        raise ApiError(400, f"callback_email {email!r} is not an e-mail address")
    if email and not gw.config.mail_server:
        raise ApiError(400, "this registry has no MAIL_SERVER configured; use callback_url")
    export_id = uuid.uuid4()
    async with gw.pool.acquire() as conn:
        async with conn.transaction():
            await log_exports.create(conn, export_id, requested_by=principal.id, scope_kind=kind, scope_id=scope_id,
                                     start=start, end=end, callback_url=url, callback_email=email)
            await log_action(conn, request, "export_logs", **({"namespace": name} if kind == "organization" else {}),
                             **({"repository": name} if kind == "repository" else {}), export_id=str(export_id),
                             callback_url=url, callback_email=email)
    start_export(gw, export_id)
    return ok({"export_id": str(export_id)}, 202)


async def _own_export(request: web.Request, exportid: str):
    gw = gateway(request)
    principal = await signed_in(request)
    try:
        ident = uuid.UUID(exportid)
    except ValueError:
        raise ApiError(404, f"export {exportid} not found", error_type="not_found") from None
    row = await log_exports.visible_export(gw.pool, ident, principal.id, principal.superuser)
    if row is None:
        raise ApiError(404, f"export {exportid} not found", error_type="not_found")
    return row


async def export_status(request: web.Request, exportid: str) -> web.Response:
    row = await _own_export(request, exportid)
    return ok({"export_id": str(row["id"]), "status": row["status"], "error": row["error"],
               "created": iso(row["created_at"]), "finished": iso(row["finished_at"])})


async def export_file(request: web.Request, exportid: str) -> web.StreamResponse:
    gw = gateway(request)
    row = await _own_export(request, exportid)
    if row["status"] != "done":
        raise ApiError(404, f"export {exportid} is {row['status']}, not ready", error_type="not_found")
    size = await gw.write_driver.stat(row["path"])
    if size is None:  # written by a gateway of another region, into that region's storage
        raise ApiError(404, f"export {exportid} is stored in another region's storage: download it through that region",
                       error_type="not_found")
    local = gw.write_driver.local_file(row["path"])
    if local is not None:
        return web.FileResponse(local, headers={"Content-Type": "application/json"})
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    response.content_length = size
    await response.prepare(request)
    async for chunk in gw.write_driver.read(row["path"]):
        await response.write(chunk)
    await response.write_eof()
    return response


RANGE_QUERY = {"starttime": {"type": "string"}, "endtime": {"type": "string"}, "performer": {"type": "string"},
               "kind": {"type": "string"}, "next_page": {"type": "string"}}
EXPORT_BODY = {"type": "object", "properties": {"callback_url": {"type": "string"}, "callback_email": {"type": "string"}}}


def _scoped(kind: str, template: str, label: str, param: str | None) -> list[ApiRoute]:
    def bind(fn):
        if param is None:
            return lambda request: fn(request, kind, None)
        return lambda request, **kw: fn(request, kind, kw[param])

    return [
        ApiRoute(f"{kind}_logs", f"{template}/logs", {"GET": Op(bind(_list), f"Usage logs of {label}", query=RANGE_QUERY)}),
        ApiRoute(f"{kind}_aggregatelogs", f"{template}/aggregatelogs",
                 {"GET": Op(bind(_aggregate), f"Usage log counts per kind per day of {label}", query=RANGE_QUERY)}),
        ApiRoute(f"{kind}_exportlogs", f"{template}/exportlogs",
                 {"POST": Op(bind(_export), f"Export usage logs of {label} to a JSON file; announced to the callback",
                             status=202, body=EXPORT_BODY, query={"starttime": {"type": "string"}, "endtime": {"type": "string"}})}),
    ]


ROUTES = [
    *_scoped("organization", "/organization/{orgname}", "an organization", "orgname"),
    *_scoped("repository", "/repository/{repository}", "a repository", "repository"),
    *_scoped("user", "/user", "the signed-in user", None),
    ApiRoute("export", "/exportlogs/{exportid}", {"GET": Op(export_status, "State of a usage log export")}),
    ApiRoute("export_file", "/exportlogs/{exportid}/file", {"GET": Op(export_file, "The exported usage log file")}),
]
