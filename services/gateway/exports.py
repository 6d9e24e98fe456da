"""The usage-log export worker: writes an export's JSON file to this region's storage and announces
it to the callback URL or e-mail address. The API (api/logs.py) queues an export and starts it here
at once; `resume_exports` picks up, in any gateway, exports whose own gateway died (the claim is
atomic, so each runs once at a time)."""
from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator

import asyncpg

from shared.callbacks import guarded_session, url_problem
from shared.config import Config
from shared.logging import get_logger
from shared.mail import MailNotConfigured, send_mail
from shared.model import accounts, audit, log_exports
from shared.storage import paths

from .state import Gateway

log = get_logger("gateway.logs")
PAGE = 1000  # log rows read per query while writing a file
_running: set[asyncio.Task] = set()


def start_export(gw: Gateway, export_id: uuid.UUID) -> None:
    """Run a just-queued export in the background of this process."""
    task = asyncio.get_running_loop().create_task(run_export(gw, export_id))
    _running.add(task)
    task.add_done_callback(_running.discard)


async def _visible_to(gw: Gateway, export: asyncpg.Record) -> int | None:
    """A user's own logs leave out repositories the user cannot read when the file is written, as the
    API's listing does (api/logs.py `_visible_to`); a superuser's are not filtered."""
    if export["scope_kind"] != "user":
        return None
    username = await gw.pool.fetchval("SELECT username FROM users WHERE id = $1", export["scope_id"])
    if username is not None and accounts.is_superuser(username, gw.config.super_users):
        return None
    return export["scope_id"]


async def _rows(gw: Gateway, export: asyncpg.Record) -> AsyncIterator[bytes]:
    yield b'{"export_id": "%s", "logs": [' % str(export["id"]).encode()
    cursor, first = None, True
    visible_to = await _visible_to(gw, export)
    while True:
        rows = await audit.query(gw.pool, export["scope_kind"], export["scope_id"], export["starttime"], export["endtime"],
                                 cursor=cursor, limit=PAGE, visible_to=visible_to)
        for row in rows:
            yield (b"" if first else b",") + json.dumps(audit.row_view(row)).encode()
            first = False
        if len(rows) < PAGE:
            break
        cursor = (rows[-1]["datetime"], rows[-1]["id"])
    yield b"]}\n"


async def resume_exports(gw: Gateway, interval: float = 60.0) -> None:
    """Exports whose gateway died (queued and never started, or running with a stale claim) are picked
    up by any gateway; the claim is atomic, so each runs once at a time."""
    while True:
        try:
            await log_exports.requeue_stale_claims(gw.pool)
            for export_id in await log_exports.waiting_ids(gw.pool):
                await run_export(gw, export_id)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("resuming log exports failed; the next round retries")
        await asyncio.sleep(interval)


async def run_export(gw: Gateway, export_id: uuid.UUID) -> None:
    export = await log_exports.claim(gw.pool, export_id)
    if export is None:
        return  # another gateway has it
    path = paths.export(export_id)
    link = f"{gw.config.preferred_url_scheme}://{gw.config.server_hostname}/api/v1/exportlogs/{export_id}/file"
    try:
        await gw.write_driver.write(path, _rows(gw, export))
        await log_exports.mark_done(gw.pool, export_id, path)
        status, error = "done", None
    except Exception as exc:
        log.exception("log export failed", export_id=str(export_id))
        await log_exports.mark_failed(gw.pool, export_id, str(exc))
        status, error = "failed", "the export could not be written"
    notice = {"export_id": str(export_id), "status": status, "url": link if status == "done" else None, "error": error}
    try:
        if export["callback_url"]:
            # Checked again at delivery: the name may resolve elsewhere by now.
            allowed = gw.config.meridian_callback_allowed_hosts
            problem = await url_problem(export["callback_url"], allowed)
            if problem:
                raise ValueError(problem)
            async with guarded_session(allowed, 30) as http:
                async with http.post(export["callback_url"], json=notice, allow_redirects=False) as response:
                    if response.status >= 400:
                        raise ValueError(f"callback answered {response.status}")
        if export["callback_email"]:
            await _send_mail(gw.config, export["callback_email"], notice)
    except Exception as exc:
        log.warning("log export notification failed", export_id=str(export_id), error=str(exc))
        await log_exports.note_notification_failure(gw.pool, export_id, f"notification failed: {exc}")


async def _send_mail(config: Config, to: str, notice: dict) -> None:
    if not config.mail_server:  # queued where MAIL_SERVER was set, resumed by a gateway without it
        raise MailNotConfigured("this gateway has no MAIL_SERVER configured")
    await send_mail(config, to, f"{config.registry_title_short}: usage log export {notice['status']}",
                    f"Your usage log export {notice['export_id']} is {notice['status']}.\n"
                    + (f"Download it (signed in) from {notice['url']}\n" if notice["url"] else ""))
