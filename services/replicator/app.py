"""The replicator: copies blobs into its region's location.

It holds the durable JetStream consumer `replicator-<location>` on `<prefix>.events.blob.written.>`;
any number of replicas of one location share it. For each event whose target locations include this
one and that is not placed here yet, it streams the bytes from a location that has them (nearest
first, skipping failing ones), verifies the digest while writing (a mismatch abandons the write, so
nothing lands at the content address), records the placement, then acks. Failures are NAKed with
back-off; after the last delivery the failure is recorded in `replication_failures` and counted.
"""
from __future__ import annotations

import asyncio
import time
from pathlib import Path

import asyncpg
import msgspec
import structlog
import nats
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from shared.bus import Bus
from shared.config import Config
from shared.db import close_pool, create_pool
from shared.digest import DigestMismatch, blob_path, parse_digest, verified
from shared.locations import BlobMissing, LocationUnavailable, Locations
from shared.heartbeats import Heartbeat
from shared.logging import REQUEST_ID_HEADER, get_logger
from shared.model.blobs import lock_digest_shared
from shared.messages import BlobWritten
from shared.metrics import (
    BUS_CONSUME_ERRORS,
    BUS_CONSUMED,
    REPLICATION_BACKLOG, REPLICATION_BYTES, REPLICATION_COPIES, REPLICATION_FAILURES, REPLICATION_LAG,
)
from shared.model.locations import ensure_locations

log = get_logger("replicator")


class CopyFailed(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class Replicator:
    def __init__(self, config: Config, *, config_dir: Path | None = None) -> None:
        self.config = config
        self.locations = Locations(config, config_dir=config_dir)
        self.location = self.locations.own
        self.bus = Bus(config.nats_url, config.meridian_bus_prefix, name=f"replicator-{self.location}")
        self.heartbeat = Heartbeat(self.bus, "replicator", config.meridian_region, config.meridian_heartbeat_interval_sec)
        self.pool: asyncpg.Pool | None = None
        self.location_ids: dict[str, int] = {}
        self._tasks: set[asyncio.Task] = set()
        self._runner: asyncio.Task | None = None
        self._backlog_task: asyncio.Task | None = None
        self._active = 0
        self._room = asyncio.Event()  # set while fewer than MERIDIAN_REPLICATION_CONCURRENCY copies run
        self._room.set()
        self._stopping = asyncio.Event()

    @property
    def consumer(self) -> str:
        return self.bus.subjects.replicator_consumer(self.location)

    async def start(self) -> None:
        self.pool = await create_pool(self.config.db_uri, 4 + self.config.meridian_replication_concurrency)
        self.location_ids = await ensure_locations(self.pool, list(self.config.storage_locations()))
        await self.bus.connect()
        removed = await self.locations.own_driver.clean_partial(self.config.meridian_partial_object_max_age_sec)
        if removed:
            log.info("removed interrupted copies", count=removed, location=self.location)
        self._runner = asyncio.get_running_loop().create_task(self._run())
        self._backlog_task = asyncio.get_running_loop().create_task(self._watch_backlog())
        await self.heartbeat.start()
        log.info("replicator ready", location=self.location, consumer=self.consumer)

    async def stop(self) -> None:
        """Stop fetching and abandon copies under way: their messages are not acked, so JetStream
        redelivers them, and the next start removes the partial objects."""
        self._stopping.set()
        await self.heartbeat.stop()
        tasks = [t for t in (self._runner, self._backlog_task) if t] + list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=10)
        await self.bus.close()
        await self.locations.close()
        if self.pool:
            await close_pool(self.pool)

    async def _subscribe(self):
        js = self.bus.js
        config = ConsumerConfig(
            durable_name=self.consumer,
            deliver_policy=DeliverPolicy.ALL,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=self.config.meridian_replication_ack_wait_sec,
            max_deliver=self.config.meridian_replication_max_deliver,
            max_ack_pending=self.config.meridian_replication_concurrency * 4,
            filter_subject=self.bus.subjects.blob_written_all,
        )
        try:
            await js.add_consumer(self.bus.subjects.events_stream, config)
        except nats.js.errors.BadRequestError as exc:
            log.warning("consumer exists with another config; using it as it is", consumer=self.consumer, error=str(exc))
        return await js.pull_subscribe_bind(durable=self.consumer, stream=self.bus.subjects.events_stream)

    async def _run(self) -> None:
        subscription = None
        while not self._stopping.is_set():
            try:
                if subscription is None:
                    subscription = await self._subscribe()
                await self._room.wait()
                # Fetch only what can start now, so no message waits (unacknowledged) for a slot.
                messages = await subscription.fetch(self.config.meridian_replication_concurrency - self._active, timeout=1)
            except (nats.errors.TimeoutError, asyncio.TimeoutError):  # nothing to do; nats-py raises either
                continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("replicator fetch failed", error=str(exc))
                subscription = None
                await asyncio.sleep(1)
                continue
            for message in messages:
                self._active += 1
                if self._active >= self.config.meridian_replication_concurrency:
                    self._room.clear()
                task = asyncio.get_running_loop().create_task(self._handle(message))
                self._tasks.add(task)
                task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        self._active -= 1
        self._room.set()

    async def _watch_backlog(self) -> None:
        while True:
            try:
                info = await self.bus.js.consumer_info(self.bus.subjects.events_stream, self.consumer)
                REPLICATION_BACKLOG.labels(self.location).set(info.num_pending + info.num_ack_pending)
            except asyncio.CancelledError:
                raise
            except Exception:
                pass
            await asyncio.sleep(5)

    async def targets(self, namespace: str) -> set[str]:
        rows = await self.pool.fetch(
            "SELECT l.name FROM namespace_replication nr JOIN namespaces n ON n.id = nr.namespace_id "
            "JOIN storage_locations l ON l.id = nr.location_id WHERE n.name = $1",
            namespace,
        )
        return {r["name"] for r in rows} | set(self.config.distributed_storage_default_locations)

    async def _handle(self, message) -> None:
        # Each message runs in its own task: the push's request id follows it into these logs.
        request_id = (message.headers or {}).get(REQUEST_ID_HEADER)
        structlog.contextvars.bind_contextvars(service="replicator", request_id=request_id)
        BUS_CONSUMED.labels(self.consumer).inc()
        try:
            event = msgspec.json.decode(message.data, type=BlobWritten)
            digest = parse_digest(event.digest)
        except Exception as exc:
            log.warning("unreadable blob.written event", error=str(exc))
            await message.term()
            return
        if self.config.registry_state == "readonly":
            await message.nak(delay=10)  # read-only pauses replication writes; nothing is lost
            return
        try:
            if self.location not in await self.targets(event.namespace):
                await message.ack()
                return
            row = await self.pool.fetchrow(
                "SELECT b.id, b.size, coalesce(array_agg(l.name) FILTER (WHERE l.name IS NOT NULL), '{}') AS held "
                "FROM blobs b LEFT JOIN blob_placements p ON p.blob_id = b.id "
                "LEFT JOIN storage_locations l ON l.id = p.location_id WHERE b.digest = $1 GROUP BY b.id",
                digest,
            )
            if row is None or self.location in row["held"]:
                await message.ack()  # collected meanwhile, or already here: redelivery is harmless
                return
            heartbeat = asyncio.get_running_loop().create_task(self._keep_alive(message))
            try:
                await self.copy(digest, row["size"], [n for n in row["held"] if n != self.location])
            finally:
                heartbeat.cancel()
            async with self.pool.acquire() as conn:
                async with conn.transaction():
                    await lock_digest_shared(conn, digest)
                    placed = await conn.fetchval(
                        "INSERT INTO blob_placements (blob_id, location_id) SELECT id, $2 FROM blobs WHERE id = $1 "
                        "ON CONFLICT DO NOTHING RETURNING true",
                        row["id"], self.location_ids[self.location],
                    )
                    exists = placed or await conn.fetchval("SELECT true FROM blobs WHERE id = $1", row["id"])
                    if not exists:  # gc collected it while it was copied: the copy must not stay behind
                        await self.locations.own_driver.delete(blob_path(digest))
                        await message.ack()
                        return
            REPLICATION_COPIES.labels(self.location).inc()
            REPLICATION_BYTES.labels(self.location).inc(row["size"])
            REPLICATION_LAG.labels(self.location).observe(max(time.time() - event.committed_at, 0))
            await message.ack()
            log.info("blob replicated", digest=digest, location=self.location, size=row["size"], request_id=request_id)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            await self._failed(message, digest, exc)

    async def _keep_alive(self, message) -> None:
        while True:
            await asyncio.sleep(max(self.config.meridian_replication_ack_wait_sec / 3, 0.5))
            await message.in_progress()

    async def copy(self, digest: str, size: int, held: list[str]) -> None:
        errors = []
        for source in self.locations.candidates(held):
            try:
                opened = await self.locations.open(source, digest, size)
            except (BlobMissing, LocationUnavailable) as exc:
                errors.append(f"{source}: {exc}")
                continue
            chunks = opened.chunks
            if opened.local_file is not None:
                chunks = self.locations.drivers[source].read(blob_path(digest))
            try:
                await self.locations.own_driver.write(blob_path(digest), verified(chunks, digest, size))
                return
            except DigestMismatch as exc:
                REPLICATION_FAILURES.labels(self.location, "corrupt").inc()
                log.error("source bytes do not match their digest; not placed", digest=digest, source=source, error=str(exc))
                errors.append(f"{source}: corrupt: {exc}")
            except Exception as exc:
                self.locations.breaker.failed(source)
                errors.append(f"{source}: {type(exc).__name__}: {exc}")
            finally:
                opened.release()
        raise CopyFailed("unavailable", "; ".join(errors) or "no location holds the blob")

    async def _failed(self, message, digest: str, exc: Exception) -> None:
        BUS_CONSUME_ERRORS.labels(self.consumer).inc()
        deliveries = message.metadata.num_delivered
        if deliveries >= self.config.meridian_replication_max_deliver:
            REPLICATION_FAILURES.labels(self.location, "gave_up").inc()
            log.error("replication gave up", digest=digest, location=self.location, deliveries=deliveries, error=str(exc))
            await self.pool.execute(
                "INSERT INTO replication_failures (digest, location, error, deliveries) VALUES ($1, $2, $3, $4)",
                digest, self.location, str(exc)[:2000], deliveries,
            )
            await message.term()
        else:
            delay = min(2 ** (deliveries - 1), self.config.meridian_replication_max_backoff_sec)
            log.warning("replication failed, retrying", digest=digest, location=self.location, deliveries=deliveries, retry_in=delay, error=str(exc))
            await message.nak(delay=delay)
