"""The replicator: copies blobs into its region's location, and heals what is missing there.

It holds two durable JetStream consumers, shared by any number of replicas of one location:
`replicator-<location>` on `<prefix>.events.blob.written.>` (every push, in every region) and
`replicator-<location>-repair` on `<prefix>.events.blob.missing.<location>` (copies found missing).
For each event whose target locations include this one and that is not placed here yet, it streams
the bytes from a location that has them (nearest first, skipping failing ones), verifies the digest
while writing (a mismatch abandons the write, so nothing lands at the content address), records the
placement (shared/registry/blobs.place, which writes blob.placed), then acks.

Nothing is dropped silently:
- JetStream redelivers without limit; the replicator itself decides when a copy has failed: after
  MERIDIAN_REPLICATION_MAX_DELIVER attempts that failed on the source side (no location could give
  the bytes), or when a message keeps coming back because the process died while handling it (four
  times that many deliveries). Either way the failure is recorded in `replication_failures`, counted
  and logged before the message is terminated — and anti-entropy queues the copy again later.
- A copy that fails because this location's own storage fails is not an attempt: the replicator marks
  its location down, holds (stops fetching, NAKs what it holds) and resumes when a probe of the
  storage answers. An outage of any length costs no deliveries.
- Anti-entropy: every MERIDIAN_RECONCILE_INTERVAL_SEC one replica of the location (a KV lock) counts
  what must be here and is not (metrics, /health/warning) and, when the repair queue is empty, queues
  up to MERIDIAN_RECONCILE_BATCH of those copies as blob.missing events. Whatever went wrong (a crash,
  the bus down, a storage outage, a location added), every blob converges with no command run.
"""
from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import TypeVar

import asyncpg
import msgspec
import nats
import structlog
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from shared.bus import Bus
from shared.config import Config
from shared.db import close_pool, create_pool
from shared.digest import Digest, DigestMismatch, parse_digest, verified
from shared.failures import dependency_down
from shared.heartbeats import Heartbeat
from shared.locations import BlobMissing, Locations, LocationUnavailable
from shared.locks import KVLocks
from shared.logging import REQUEST_ID_HEADER, get_logger
from shared.messages import SYSTEM, BlobMissingCopy, BlobWritten
from shared.metrics import (
    BUS_CONSUME_ERRORS,
    BUS_CONSUMED,
    REPLICATION_BACKLOG,
    REPLICATION_BYTES,
    REPLICATION_COPIES,
    REPLICATION_FAILURES,
    REPLICATION_HELD,
    REPLICATION_LAG,
    REPLICATION_MISSING_BLOBS,
    REPLICATION_MISSING_BYTES,
    REPLICATION_OLDEST_MISSING,
    REPLICATION_REPAIRS_QUEUED,
)
from shared.model.locations import ensure_locations
from shared.outbox import OutboxRelay
from shared.registry import Registry, blobs, replication
from shared.storage import paths
from shared.switches import Switches

log = get_logger("replicator")


class CopyFailed(Exception):
    """No location could give the bytes (unreachable, missing, or corrupt): an attempt that counts."""


class TargetUnavailable(Exception):
    """This location's own storage failed while the copy was written: the copy waits for it."""


class _SourceReadFailed(Exception):
    def __init__(self, source: str, error: Exception) -> None:
        super().__init__(f"{source}: {type(error).__name__}: {error}")
        self.source = source


async def _from(source: str, chunks):
    """The source's bytes, with its failures told apart from the target's."""
    try:
        async for block in chunks:
            yield block
    except Exception as exc:
        raise _SourceReadFailed(source, exc) from exc


_T = TypeVar("_T")


def _started(value: _T | None) -> _T:
    """What start() made: there is nothing to work with before it."""
    if value is None:
        raise RuntimeError("the replicator has not started")
    return value


class Replicator:
    def __init__(self, config: Config, *, config_dir: Path | None = None) -> None:
        self.config = config
        self.writes = Switches.from_config(config).writes
        self.locations = Locations(config, config_dir=config_dir, bulk_reads=True)
        self.location = self.locations.own
        self.bus = Bus(config.nats_url, config.meridian_bus_prefix, name=f"replicator-{self.location}")
        self.heartbeat = Heartbeat(self.bus, "replicator", config.meridian_region, config.meridian_heartbeat_interval_sec)
        self.pool: asyncpg.Pool | None = None
        self.registry: Registry | None = None
        self.relay: OutboxRelay | None = None
        self.locks: KVLocks | None = None
        self.location_ids: dict[str, int] = {}
        self._tasks: set[asyncio.Task] = set()
        self._runner: asyncio.Task | None = None
        self._backlog_task: asyncio.Task | None = None
        self._reconcile_task: asyncio.Task | None = None
        self._held: dict[int, int] = {}  # stream sequence -> deliveries NAKed because our storage failed
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
        self.locks = KVLocks(self.bus.js, self.bus.subjects.locks_bucket, self.config.meridian_gc_lock_ttl_sec)
        await self.locks.open()
        try:
            removed = await self.locations.own_driver.clean_partial(self.config.meridian_partial_object_max_age_sec)
            if removed:
                log.info("removed interrupted copies", count=removed, location=self.location)
        except Exception as exc:  # the storage is down: copies wait for it, the cleanup for gc or the next start
            log.warning("own location unreachable at start", location=self.location, error=f"{type(exc).__name__}: {exc}")
        self.locations.watch_own(interval=min(5.0, self.config.meridian_location_retry_after_sec),
                                 timeout=self.config.meridian_health_check_timeout_sec,
                                 write=not self.writes.read_only)
        loop = asyncio.get_running_loop()
        self._runner = loop.create_task(self._run())
        self._backlog_task = loop.create_task(self._watch_backlog())
        self._reconcile_task = loop.create_task(self._reconcile_forever())
        await self.heartbeat.start()
        log.info("replicator ready", location=self.location, consumer=self.consumer)

    async def stop(self) -> None:
        """Stop fetching and abandon copies under way: their messages are not acked, so JetStream
        redelivers them, and the next start removes the partial objects."""
        self._stopping.set()
        await self.heartbeat.stop()
        tasks = [t for t in (self._runner, self._backlog_task, self._reconcile_task) if t] + list(self._tasks)
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
            max_deliver=-1,  # the replicator decides when a copy has failed, and records it (see _failed)
            max_ack_pending=self.config.meridian_replication_concurrency * 4,
            filter_subject=subject,
        )
        try:
            await js.add_consumer(self.bus.subjects.events_stream, config)
        except nats.js.errors.BadRequestError as exc:  # an older config that cannot be updated in place
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
                if not self.locations.own_is_up():  # hold: nothing is fetched, no delivery is spent
                    REPLICATION_HELD.labels(self.location).set(1)
                    await asyncio.sleep(1)
                    continue
                REPLICATION_HELD.labels(self.location).set(0)
                # Fetch only what can start now, so no message waits (unacknowledged) for a slot.
                batch = 1 if repair else max(self.config.meridian_replication_concurrency - self._active, 1)
                messages = await subscription.fetch(batch, timeout=1)
            except (TimeoutError, nats.errors.TimeoutError):  # nothing to do; nats-py raises either
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
        own = await replication.namespace_targets(_started(self.pool), namespace)
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
        if self.writes.read_only:
            await message.nak(delay=10)  # read-only pauses replication writes; nothing is lost
            return
        # Deliveries this process held for its own storage are no attempt of the copy.
        deliveries = message.metadata.num_delivered - self._held.get(message.metadata.sequence.stream, 0)
        if deliveries > 4 * self.config.meridian_replication_max_deliver:
            # Handled that often without an answer: the process died each time (killed, out of memory).
            await self._give_up(message, digest, f"the replicator stopped during {deliveries - 1} attempts", deliveries)
            return
        try:
            if self.location not in await self.targets(namespace):
                await message.ack()
                return
            held = await blobs.holdings(_started(self.pool), digest)
            if held is None or self.location in held.locations:
                await message.ack()  # collected meanwhile, or already here: redelivery is harmless
                return
            heartbeat = asyncio.get_running_loop().create_task(self._keep_alive(message))
            try:
                source = await self.copy(digest, held.size, [n for n in held.locations if n != self.location])
            finally:
                heartbeat.cancel()
            async with _started(self.registry).change(SYSTEM) as change:
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

    async def copy(self, digest: Digest, size: int, held: list[str]) -> str:
        """Copy the bytes here from the nearest location that has them; returns that location.
        Raises CopyFailed when no source could give them, TargetUnavailable when writing here failed."""
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
                await self.locations.own_driver.write(paths.blob(digest), verified(_from(source, chunks), digest, size))
                return source
            except DigestMismatch as exc:
                REPLICATION_FAILURES.labels(self.location, "corrupt").inc()
                log.error("source bytes do not match their digest; not placed", digest=digest, source=source, error=str(exc))
                errors.append(f"{source}: corrupt: {exc}")
            except _SourceReadFailed as exc:
                self.locations.breaker.failed(source)
                errors.append(str(exc))
            except Exception as exc:  # the write here failed: our storage, not the source's
                self.locations.breaker.failed(self.location, quiet=True)
                raise TargetUnavailable(f"{self.location}: {type(exc).__name__}: {exc}") from exc
            finally:
                opened.release()
        raise CopyFailed("; ".join(errors) or "no location holds the blob")

    async def _failed(self, message, digest: str, exc: Exception) -> None:
        BUS_CONSUME_ERRORS.labels(self.consumer).inc()
        deliveries = message.metadata.num_delivered
        if isinstance(exc, TargetUnavailable) or dependency_down(exc) == "the database":
            # Not this copy's fault: wait for our storage (or the database) and try again, however long.
            REPLICATION_FAILURES.labels(self.location, "target").inc()
            sequence = message.metadata.sequence.stream
            self._held[sequence] = self._held.get(sequence, 0) + 1
            if len(self._held) > 100_000:  # bounded: a forgotten count only makes the guard stricter
                self._held.clear()
            log.warning("copy held: this location cannot be written", digest=digest, location=self.location, error=str(exc))
            await message.nak(delay=self.config.meridian_location_retry_after_sec)
            return
        if deliveries >= self.config.meridian_replication_max_deliver:
            await self._give_up(message, digest, str(exc), deliveries)
            return
        delay = min(2 ** (deliveries - 1), self.config.meridian_replication_max_backoff_sec)
        log.warning("replication failed, retrying", digest=digest, location=self.location, deliveries=deliveries, retry_in=delay,
                    error=str(exc))
        await message.nak(delay=delay)

    async def _give_up(self, message, digest: str, reason: str, deliveries: int) -> None:
        """Record, count and log the failure before the message goes: anti-entropy retries it later."""
        REPLICATION_FAILURES.labels(self.location, "gave_up").inc()
        log.error("replication gave up", digest=digest, location=self.location, deliveries=deliveries, error=reason)
        await replication.record_failure(_started(self.pool), digest, self.location, reason, deliveries)
        await message.term()

    # Anti-entropy.

    async def _reconcile_forever(self) -> None:
        while True:
            await asyncio.sleep(self.config.meridian_reconcile_interval_sec)
            try:
                await self.reconcile_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("reconcile pass failed; the next one retries", error=f"{type(exc).__name__}: {exc}")

    async def reconcile_once(self) -> int:
        """Count what is missing here and queue up to a batch of it; returns how many were queued."""
        if self.writes.read_only:
            return 0
        lock = await _started(self.locks).acquire(f"reconcile-{self.location}")
        if lock is None:
            return 0  # another replica of this location is at it
        try:
            location_id = self.location_ids[self.location]
            default_target = self.location in self.config.distributed_storage_default_locations
            grace = self.config.meridian_reconcile_grace_sec
            blobs_missing, bytes_missing, oldest = await replication.under_replication(
                _started(self.pool), location_id, default_target=default_target, grace_s=grace)
            REPLICATION_MISSING_BLOBS.labels(self.location).set(blobs_missing)
            REPLICATION_MISSING_BYTES.labels(self.location).set(bytes_missing)
            REPLICATION_OLDEST_MISSING.labels(self.location).set(oldest)
            if not blobs_missing or not self.locations.own_is_up():
                return 0
            info = await self.bus.js.consumer_info(self.bus.subjects.events_stream, self.repair_consumer)
            if info.num_pending + info.num_ack_pending:
                return 0  # the last batch is still being worked through
            missing = await replication.missing_copies(_started(self.pool), location_id, default_target=default_target, grace_s=grace,
                                                       limit=self.config.meridian_reconcile_batch)
            async with _started(self.registry).change(SYSTEM) as change:
                for row in missing:
                    await replication.queue_copy(change, digest=row["digest"], size=row["size"], target=self.location,
                                                 namespace=row["namespace"], reason="reconcile")
                lock.check()
            REPLICATION_REPAIRS_QUEUED.labels(self.location).inc(len(missing))
            log.info("missing copies queued", location=self.location, queued=len(missing), missing=blobs_missing,
                     missing_bytes=bytes_missing, oldest_s=round(oldest, 1))
            return len(missing)
        finally:
            await lock.release()
