"""The replicator: copies blobs into its region's location.

It holds two durable JetStream consumers, shared by any number of replicas of one location:
`replicator-<location>` on `<prefix>.events.blob.written.>` (every push, in every region) and
`replicator-<location>-repair` on `<prefix>.events.blob.missing.<location>` (copies the reconciler or
`backfill-replication` found missing here). For each event whose target locations include this one
and that is not placed here yet, it streams the bytes from a location that has them (nearest first,
skipping failing ones), verifies the digest while writing (a mismatch abandons the write, so nothing
lands at the content address), records the placement (shared/registry/blobs.place, which writes
blob.placed), then acks. Failures are NAKed with back-off; after the last delivery the failure is
recorded in `replication_failures` and counted.
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
from shared.digest import DigestMismatch, parse_digest, verified
from shared.locations import BlobMissing, LocationUnavailable, Locations
from shared.heartbeats import Heartbeat
from shared.logging import REQUEST_ID_HEADER, get_logger
from shared.messages import SYSTEM, BlobMissingCopy, BlobWritten
from shared.outbox import OutboxRelay
from shared.registry import Registry, blobs, replication
from shared.storage import paths
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
        self.registry: Registry | None = None
        self.relay: OutboxRelay | None = None
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

    @property
    def repair_consumer(self) -> str:
        return f"{self.consumer}-repair"

    async def start(self) -> None:
        self.pool = await create_pool(self.config.db_uri, 4 + self.config.meridian_replication_concurrency)
        self.location_ids = await ensure_locations(self.pool, list(self.config.storage_locations()))
        await self.bus.connect()
        self.relay = OutboxRelay(self.pool, self.bus, relay_after=self.config.meridian_outbox_relay_after_sec)
        self.registry = Registry(self.pool, self.bus.subjects, self.config.meridian_region, self.relay)
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
        if self.relay is not None:
            await self.relay.stop()
        await self.bus.close()
        await self.locations.close()
        if self.pool:
            await close_pool(self.pool)

    async def _subscribe(self, durable: str, subject: str):
        js = self.bus.js
        config = ConsumerConfig(
            durable_name=durable,
            deliver_policy=DeliverPolicy.ALL,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=self.config.meridian_replication_ack_wait_sec,
            max_deliver=self.config.meridian_replication_max_deliver,
            max_ack_pending=self.config.meridian_replication_concurrency * 4,
            filter_subject=subject,
        )
        try:
            await js.add_consumer(self.bus.subjects.events_stream, config)
        except nats.js.errors.BadRequestError as exc:
            log.warning("consumer exists with another config; using it as it is", consumer=durable, error=str(exc))
        return await js.pull_subscribe_bind(durable=durable, stream=self.bus.subjects.events_stream)

    async def _run(self) -> None:
        """One fetch loop per consumer: pushes (as many as there are free copy slots) and repairs (one
        at a time, so the two loops together overshoot the concurrency by one at most)."""
        await asyncio.gather(
            self._feed(self.consumer, self.bus.subjects.blob_written_all, repair=False),
            self._feed(self.repair_consumer, self.bus.subjects.blob_missing(self.location), repair=True))

    async def _feed(self, durable: str, subject: str, *, repair: bool) -> None:
        subscription = None
        while not self._stopping.is_set():
            try:
                if subscription is None:
                    subscription = await self._subscribe(durable, subject)
                await self._room.wait()
                # Fetch only what can start now, so no message waits (unacknowledged) for a slot.
                batch = 1 if repair else max(self.config.meridian_replication_concurrency - self._active, 1)
                messages = await subscription.fetch(batch, timeout=1)
            except (nats.errors.TimeoutError, asyncio.TimeoutError):  # nothing to do; nats-py raises either
                continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("replicator fetch failed", consumer=durable, error=str(exc))
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
                backlog = 0
                for durable in (self.consumer, self.repair_consumer):
                    info = await self.bus.js.consumer_info(self.bus.subjects.events_stream, durable)
                    backlog += info.num_pending + info.num_ack_pending
                REPLICATION_BACKLOG.labels(self.location).set(backlog)
            except asyncio.CancelledError:
                raise
            except Exception:
                pass
            await asyncio.sleep(5)

    async def targets(self, namespace: str) -> set[str]:
        own = await replication.namespace_targets(self.pool, namespace)
        return own | set(self.config.distributed_storage_default_locations)

    def _decode(self, message) -> tuple[str, str, float]:
        """(digest, namespace, when the bytes were committed) of a blob.written or blob.missing event."""
        if ".blob.missing." in message.subject:
            missing = msgspec.json.decode(message.data, type=BlobMissingCopy)
            return missing.digest, missing.namespace, missing.queued_at
        written = msgspec.json.decode(message.data, type=BlobWritten)
        return written.digest, written.namespace, written.committed_at

    async def _handle(self, message) -> None:
        # Each message runs in its own task: the push's request id follows it into these logs.
        request_id = (message.headers or {}).get(REQUEST_ID_HEADER)
        structlog.contextvars.bind_contextvars(service="replicator", request_id=request_id)
        BUS_CONSUMED.labels(self.consumer).inc()
        try:
            raw_digest, namespace, committed_at = self._decode(message)
            digest = parse_digest(raw_digest)
        except Exception as exc:
            log.warning("unreadable blob event", error=str(exc), subject=message.subject)
            await message.term()
            return
        if self.config.registry_state == "readonly":
            await message.nak(delay=10)  # read-only pauses replication writes; nothing is lost
            return
        try:
            if self.location not in await self.targets(namespace):
                await message.ack()
                return
            held = await blobs.holdings(self.pool, digest)
            if held is None or self.location in held.locations:
                await message.ack()  # collected meanwhile, or already here: redelivery is harmless
                return
            heartbeat = asyncio.get_running_loop().create_task(self._keep_alive(message))
            try:
                source = await self.copy(digest, held.size, [n for n in held.locations if n != self.location])
            finally:
                heartbeat.cancel()
            async with self.registry.change(SYSTEM) as change:
                kept = await blobs.place(change, held.id, digest, held.size, self.location,
                                         self.location_ids[self.location], source)
                if not kept:  # gc collected it while it was copied: the copy must not stay behind
                    await self.locations.own_driver.delete(paths.blob(digest))
            if not kept:
                await message.ack()
                return
            REPLICATION_COPIES.labels(self.location).inc()
            REPLICATION_BYTES.labels(self.location).inc(held.size)
            REPLICATION_LAG.labels(self.location).observe(max(time.time() - committed_at, 0))
            await message.ack()
            log.info("blob replicated", digest=digest, location=self.location, size=held.size, request_id=request_id)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            await self._failed(message, digest, exc)

    async def _keep_alive(self, message) -> None:
        while True:
            await asyncio.sleep(max(self.config.meridian_replication_ack_wait_sec / 3, 0.5))
            await message.in_progress()

    async def copy(self, digest: str, size: int, held: list[str]) -> str:
        """Copy the bytes here from the nearest location that has them; returns that location."""
        errors = []
        for source in self.locations.candidates(held):
            try:
                opened = await self.locations.open(source, digest, size)
            except (BlobMissing, LocationUnavailable) as exc:
                errors.append(f"{source}: {exc}")
                continue
            chunks = opened.chunks
            if opened.local_file is not None:
                chunks = self.locations.drivers[source].read(paths.blob(digest))
            try:
                await self.locations.own_driver.write(paths.blob(digest), verified(chunks, digest, size))
                return source
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
            await replication.record_failure(self.pool, digest, self.location, str(exc), deliveries)
            await message.term()
        else:
            delay = min(2 ** (deliveries - 1), self.config.meridian_replication_max_backoff_sec)
            log.warning("replication failed, retrying", digest=digest, location=self.location, deliveries=deliveries, retry_in=delay, error=str(exc))
            await message.nak(delay=delay)
