"""Usage logs per organisation, repository and user: date-range queries with a performer filter and
pages, counts per kind per day, and exports written to storage and announced to a callback URL or
an e-mail address."""
from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import json
import smtplib
import socket
import uuid
from email.message import EmailMessage
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

from shared.errors import ApiError
from shared.logging import get_logger
from shared.model import audit

from ..v2.base import gateway
from .base import ApiRoute, Op, json_body, log_action, ok, organization_for, repository_for, signed_in, text_field, iso

log = get_logger("gateway.logs")
EXPORT_PREFIX = "exportedlogs"
_running: set[asyncio.Task] = set()


def parse_time(value: str, key: str, *, end: bool) -> dt.datetime:
    """Quay's `%m/%d/%Y` (a whole UTC day; an end date includes its day) or an ISO 8601 instant."""
    try:
        day = dt.datetime.strptime(value, "%m/%d/%Y").replace(tzinfo=dt.timezone.utc)
        return day + dt.timedelta(days=1) if end else day
    except ValueError:
        pass
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(400, f"{key} {value!r} is not a date: use MM/DD/YYYY (UTC day) or ISO 8601 like 2026-11-28T10:00:00Z") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


def time_range(request: web.Request) -> tuple[dt.datetime, dt.datetime]:
    now = dt.datetime.now(dt.timezone.utc)
    start_raw, end_raw = request.query.get("starttime"), request.query.get("endtime")
    end = parse_time(end_raw, "endtime", end=True) if end_raw else now + dt.timedelta(seconds=1)
    start = parse_time(start_raw, "starttime", end=False) if start_raw else end - dt.timedelta(days=1)
    if end < start:
        raise ApiError(400, "endtime is before starttime")
    return start, end


def _entry(row) -> dict:
    return {"kind": row["kind"], "metadata": json.loads(row["metadata"]) if isinstance(row["metadata"], str) else row["metadata"],
            "ip": row["ip"], "datetime": iso(row["datetime"]), "namespace": row["namespace"],
            "repository": row["repository"], **({"performer": {"name": row["performer"]}} if row["performer"] else {})}


async def _scope(request: web.Request, kind: str, name: str | None) -> int:
    if kind == "organization":
        row, _ = await organization_for(request, name, need="admin")
        return row["id"]
    if kind == "repository":
        row, _ = await repository_for(request, name, "admin")
        return row["id"]
    return (await signed_in(request)).id


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
                             cursor=cursor, limit=limit + 1)
    result = {"start_time": iso(start), "end_time": iso(end), "logs": [_entry(r) for r in rows[:limit]]}
    if len(rows) > limit:
        last = rows[limit - 1]
        result["next_page"] = audit.encode_cursor(last["datetime"], last["id"])
    return ok(result)


async def _aggregate(request: web.Request, kind: str, name: str | None) -> web.Response:
    gw = gateway(request)
    scope_id = await _scope(request, kind, name)
    start, end = time_range(request)
    rows = await audit.aggregate(gw.pool, kind, scope_id, start, end, performer=request.query.get("performer") or None)
    return ok({"aggregated": [{"kind": r["kind"], "count": r["count"], "datetime": r["day"].date().isoformat()} for r in rows]})


async def callback_problem(url: str, allowed_hosts) -> str | None:
    """Why a callback URL must not be called: only http(s) to public addresses, unless allow-listed."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "callback_url must be an http:// or https:// URL"
    host = parts.hostname
    if host in allowed_hosts:
        return None
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, parts.port or 443, type=socket.SOCK_STREAM)
    except OSError:
        return f"callback_url host {host!r} does not resolve"
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global or address.is_multicast:
            return (f"callback_url {host!r} resolves to {address}, a loopback, private or reserved address; only public "
                    "addresses are called (operators may allow internal hosts with MERIDIAN_CALLBACK_ALLOWED_HOSTS)")
    return None


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
        problem = await callback_problem(url, gw.config.meridian_callback_allowed_hosts)
        if problem:
            raise ApiError(400, problem)
    if email and ("@" not in email or any(c in email for c in "\r\n ")):
        raise ApiError(400, f"callback_email {email!r} is not an e-mail address")
    if email and not gw.config.mail_server:
        raise ApiError(400, "this registry has no MAIL_SERVER configured; use callback_url")
    export_id = uuid.uuid4()
    async with gw.pool.acquire() as conn:
        async with conn.transaction():
            await conn.execute(
                "INSERT INTO log_exports (id, requested_by, scope_kind, scope_id, starttime, endtime, callback_url, callback_email) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                export_id, principal.id, kind, scope_id, start, end, url, email,
            )
            await log_action(conn, request, "export_logs", **({"namespace": name} if kind == "organization" else {}),
                             **({"repository": name} if kind == "repository" else {}), export_id=str(export_id),
                             callback_url=url, callback_email=email)
    task = asyncio.get_running_loop().create_task(run_export(gw, export_id))
    _running.add(task)
    task.add_done_callback(_running.discard)
    return ok({"export_id": str(export_id)}, 202)


async def _rows(gw, export):
    yield b'{"export_id": "%s", "logs": [' % str(export["id"]).encode()
    cursor, first = None, True
    while True:
        rows = await audit.query(gw.pool, export["scope_kind"], export["scope_id"], export["starttime"], export["endtime"],
                                 cursor=cursor, limit=1000)
        for row in rows:
            yield (b"" if first else b",") + json.dumps(_entry(row)).encode()
            first = False
        if len(rows) < 1000:
            break
        cursor = (rows[-1]["datetime"], rows[-1]["id"])
    yield b"]}\n"


STALE_CLAIM = "15 minutes"


async def resume_exports(gw, interval: float = 60.0) -> None:
    """Exports whose gateway died (queued and never started, or running with a stale claim) are picked
    up by any gateway; the claim is atomic, so each runs once at a time."""
    while True:
        try:
            await gw.pool.execute(
                f"UPDATE log_exports SET status = 'queued' WHERE status = 'running' AND claimed_at < now() - interval '{STALE_CLAIM}'")
            waiting = await gw.pool.fetch(
                "SELECT id FROM log_exports WHERE status = 'queued' AND created_at < now() - interval '30 seconds' ORDER BY created_at")
            for row in waiting:
                await run_export(gw, row["id"])
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("resuming log exports failed; the next round retries")
        await asyncio.sleep(interval)


async def run_export(gw, export_id: uuid.UUID) -> None:
    export = await gw.pool.fetchrow(
        "UPDATE log_exports SET status = 'running', claimed_at = now() WHERE id = $1 AND status = 'queued' RETURNING *", export_id)
    if export is None:
        return  # another gateway has it
    path = f"{EXPORT_PREFIX}/{export_id}.json"
    link = f"{gw.config.preferred_url_scheme}://{gw.config.server_hostname}/api/v1/exportlogs/{export_id}/file"
    try:
        await gw.write_driver.write(path, _rows(gw, export))
        await gw.pool.execute("UPDATE log_exports SET status = 'done', path = $2, finished_at = now() WHERE id = $1", export_id, path)
        status, error = "done", None
    except Exception as exc:
        log.exception("log export failed", export_id=str(export_id))
        await gw.pool.execute("UPDATE log_exports SET status = 'failed', error = $2, finished_at = now() WHERE id = $1",
                              export_id, str(exc)[:1000])
        status, error = "failed", "the export could not be written"
    notice = {"export_id": str(export_id), "status": status, "url": link if status == "done" else None, "error": error}
    try:
        if export["callback_url"]:
            # Checked again at delivery: the name may resolve elsewhere by now.
            problem = await callback_problem(export["callback_url"], gw.config.meridian_callback_allowed_hosts)
            if problem:
                raise ValueError(problem)
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
                async with http.post(export["callback_url"], json=notice, allow_redirects=False) as response:
                    if response.status >= 400:
                        raise ValueError(f"callback answered {response.status}")
        if export["callback_email"]:
            await asyncio.to_thread(_send_mail, gw.config, export["callback_email"], notice)
    except Exception as exc:
        log.warning("log export notification failed", export_id=str(export_id), error=str(exc))
        await gw.pool.execute("UPDATE log_exports SET error = $2 WHERE id = $1", export_id, f"notification failed: {exc}"[:1000])


def _send_mail(config, to: str, notice: dict) -> None:
    message = EmailMessage()
    message["Subject"] = f"{config.registry_title_short}: usage log export {notice['status']}"
    message["From"] = config.mail_default_sender
    message["To"] = to
    message.set_content(f"Your usage log export {notice['export_id']} is {notice['status']}.\n"
                        + (f"Download it (signed in) from {notice['url']}\n" if notice["url"] else ""))
    with smtplib.SMTP(config.mail_server, config.mail_port, timeout=30) as smtp:
        if config.mail_use_tls:
            smtp.starttls()
        if config.mail_username:
            smtp.login(config.mail_username, config.mail_password or "")
        smtp.send_message(message)


async def _own_export(request: web.Request, exportid: str):
    gw = gateway(request)
    principal = await signed_in(request)
    try:
        ident = uuid.UUID(exportid)
    except ValueError:
        raise ApiError(404, f"export {exportid} not found", error_type="not_found") from None
    row = await gw.pool.fetchrow("SELECT * FROM log_exports WHERE id = $1 AND (requested_by = $2 OR $3)",
                                 ident, principal.id, principal.superuser)
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
               "next_page": {"type": "string"}}
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
