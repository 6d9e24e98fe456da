"""The transactional outbox: events are written with the change, published after commit, relayed if not.

`add()` runs inside the caller's transaction. After commit the caller hands the returned ids to
`OutboxRelay.publish_soon()`. The relay loop republishes rows older than a grace period (NATS was down,
the process died between commit and publish). JetStream drops duplicates by `Nats-Msg-Id`, so a row
published twice is stored once.

A change that moved a pull lookup publishes its events only after the longest lookup lease
(shared/registry/lookups.py). The relay must not publish them sooner: such a change dates its rows,
just before commit, the longest lease allowed into the future (`hold`).
"""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import asyncpg
import msgspec

from shared.bus import Bus, encode
from shared.contract import new_message_id
from shared.logging import REQUEST_ID_HEADER, current_request_id, get_logger
from shared.metrics import OUTBOX_PENDING, OUTBOX_RELAYED
from shared.model import Conn
from shared.tasks import cancel_and_wait

log = get_logger(__name__)


@dataclass(frozen=True)
class OutboxEntry:
    id: int
    msg_id: str
    subject: str
    payload: bytes
    request_id: str | None = None

    @property
    def headers(self) -> dict[str, str]:
        return {REQUEST_ID_HEADER: self.request_id} if self.request_id else {}


async def add(conn: Conn, subject: str, message: msgspec.Struct, msg_id: str | None = None) -> OutboxEntry | None:
    """Write one event in the caller's transaction; None when a row with this message id is already
    waiting (the same event written twice publishes once)."""
    msg_id = msg_id or new_message_id()
    payload = encode(message)
    request_id = current_request_id()
    row_id = await conn.fetchval(
        "INSERT INTO outbox (msg_id, subject, payload, request_id) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT (msg_id) DO NOTHING RETURNING id",
        msg_id, subject, payload, request_id,
    )
    return OutboxEntry(row_id, msg_id, subject, payload, request_id) if row_id is not None else None


async def add_many(conn: Conn, subject: str, messages: list[msgspec.Struct]) -> list[OutboxEntry]:
    """Many events of one subject in one statement (gc ends thousands of expired tags at once)."""
    if not messages:
        return []
    ids = [new_message_id() for _ in messages]
    payloads = [encode(m) for m in messages]
    request_id = current_request_id()
    rows = await conn.fetch(
        "INSERT INTO outbox (msg_id, subject, payload, request_id) "
        "SELECT unnest($1::text[]), $2, unnest($3::bytea[]), $4 RETURNING id, msg_id",
        ids, subject, payloads, request_id,
    )
    by_id = {r["msg_id"]: r["id"] for r in rows}
    return [OutboxEntry(by_id[i], i, subject, p, request_id) for i, p in zip(ids, payloads, strict=True)]


async def hold(conn: Conn, entries: list[OutboxEntry], seconds: float) -> None:
    """Keep the relay off these rows until `seconds` after now, plus its grace period: counted from
    their insert, a transaction longer than the grace period would have them relayed at once."""
    if entries:
        await conn.execute(
            "UPDATE outbox SET created_at = clock_timestamp() + make_interval(secs => $2) WHERE id = ANY($1::bigint[])",
            [e.id for e in entries], seconds)


class OutboxRelay:
    def __init__(self, pool: asyncpg.Pool, bus: Bus, *, relay_after: float = 5.0, interval: float = 1.0) -> None:
        self.pool = pool
        self.bus = bus
        self.relay_after = relay_after
        self.interval = interval
        self._tasks: set[asyncio.Task] = set()
        self._loop_task: asyncio.Task | None = None

    def publish_soon(self, entries: list[OutboxEntry], after: Callable[[], Awaitable[None]] | None = None) -> None:
        """Publish freshly committed rows in the background, once `after()` is done; the response does not
        wait for NATS."""
        if not entries:
            return
        task = asyncio.get_running_loop().create_task(self._publish(entries, after))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _publish(self, entries: list[OutboxEntry], after: Callable[[], Awaitable[None]] | None = None) -> None:
        if after is not None:
            await after()
        try:
            for entry in entries:
                await self.bus.publish(entry.subject, entry.payload, entry.msg_id, headers=entry.headers)
            await self.pool.execute("DELETE FROM outbox WHERE id = ANY($1::bigint[])", [e.id for e in entries])
        except Exception as exc:  # the relay loop will pick the rows up
            # How many and which range, not every id: one change can write thousands of events.
            log.warning("outbox publish deferred", error=str(exc), events=len(entries),
                        first_id=entries[0].id if entries else None, last_id=entries[-1].id if entries else None)

    async def relay_once(self, limit: int = 500) -> int:
        """Republish rows older than the grace period; returns how many went out."""
        sent = 0
        async with self.pool.acquire() as conn:
            async with conn.transaction():
                rows = await conn.fetch(
                    "SELECT id, msg_id, subject, payload, request_id FROM outbox "
                    "WHERE created_at < clock_timestamp() - make_interval(secs => $1) "
                    "ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED",
                    self.relay_after,
                    limit,
                )
                for row in rows:
                    try:
                        headers = {REQUEST_ID_HEADER: row["request_id"]} if row["request_id"] else None
                        await self.bus.publish(row["subject"], row["payload"], row["msg_id"], headers=headers)
                    except Exception as exc:
                        await conn.execute("UPDATE outbox SET attempts = attempts + 1 WHERE id = $1", row["id"])
                        log.warning("outbox relay failed", error=str(exc), pending=len(rows) - sent)
                        break
                    await conn.execute("DELETE FROM outbox WHERE id = $1", row["id"])
                    sent += 1
            OUTBOX_PENDING.set(await conn.fetchval("SELECT count(*) FROM outbox"))
        if sent:
            OUTBOX_RELAYED.inc(sent)
            log.info("outbox relayed", count=sent)
        return sent

    async def run(self) -> None:
        while True:
            try:
                await self.relay_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("outbox relay error", error=str(exc))
            await asyncio.sleep(self.interval)

    def start(self) -> None:
        self._loop_task = asyncio.get_running_loop().create_task(self.run())

    async def stop(self) -> None:
        if self._loop_task:
            await cancel_and_wait(self._loop_task)
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=5)
            for task in list(self._tasks):  # still waiting out a lease: its rows stay and are relayed later
                task.cancel()
