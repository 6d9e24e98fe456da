"""One garbage-collection pass, in the order that keeps every pull and push in flight safe.

1. Current tags whose expiry passed are ended at their expiry.
2. Per repository, under its KV lock: tag rows past their end plus the namespace's time-machine
   window (or expired permanently) go; then manifests nothing references any more (no tag row, no
   index that lists them, no subject they refer to that is still there) and older than
   PUSH_TEMP_TAG_EXPIRATION_SEC; then the repository's links to blobs no manifest of it uses, older
   than the same window. Unlinked blobs become candidates for step 5.
3. Deleted repositories are purged (global lock), 4. then deleted namespaces (global lock).
5. Candidate blobs (global lock): each under an exclusive digest lock that writers hold shared while
   they put bytes at the content address, re-checked (no repository links it, no manifest lists it,
   older than the window), deleted in every location that holds it, then its placements and row.
6. Upload sessions untouched for MERIDIAN_UPLOAD_SESSION_MAX_AGE_SEC go with their chunks, and each
   location drops leftovers of interrupted writes (orphaned S3 multipart uploads included).
7. Storage reconciliation (global lock "blobs"): in every location this process reaches directly,
   content-addressed objects last written more than PUSH_TEMP_TAG_EXPIRATION_SEC ago that no blob
   row names (left by a completion whose transaction failed after its bytes moved, or a crash) are
   deleted, each under the digest's exclusive lock after a re-check, and counted
   (meridian_gc_storage_orphans_deleted_total). Locations reached only through another region's
   blobstore are reconciled by that region's gc.

A dry run does all of it inside transactions that are rolled back and touches no storage, so it
reports exactly what a real pass would collect at that moment.
"""
from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Callable
from dataclasses import dataclass, field

from shared.config import Config, valid_duration
from shared.locations import Locations, StorageCommandFailed, clean_location, delete_blob
from shared.locks import KVLocks, Lock, LockLost
from shared.logging import get_logger
from shared.messages import SYSTEM
from shared.metrics import (
    GC_BLOBS_DELETED,
    GC_BYTES_RECLAIMED,
    GC_ITERATIONS,
    GC_LOCKS_LOST,
    GC_MANIFESTS_COLLECTED,
    GC_NAMESPACES_PURGED,
    GC_REPOS_PURGED,
    GC_STORAGE_ORPHANS_DELETED,
    GC_TAGS_COLLECTED,
    GC_UPLOADS_CLEANED,
)
from shared.outbox import OutboxRelay
from shared.registry import Change, Registry, collection
from shared.storage import paths

log = get_logger("gc")
BATCH = 500


class _Rollback(Exception):
    """Raised inside a transaction to undo it (dry runs)."""


@dataclass
class Report:
    dry_run: bool = False
    paused: str | None = None
    tags_expired: int = 0
    tags: int = 0
    manifests: list[str] = field(default_factory=list)
    blob_links: int = 0
    repositories: list[str] = field(default_factory=list)
    namespaces: list[str] = field(default_factory=list)
    blobs: list[str] = field(default_factory=list)
    bytes_reclaimed: int = 0
    uploads: int = 0
    storage_orphans: list[str] = field(default_factory=list)  # "<location>:<digest>"
    skipped_locked: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def summary(self) -> dict:
        return {"dry_run": self.dry_run, "paused": self.paused, "tags_expired": self.tags_expired, "tags": self.tags,
                "manifests": len(self.manifests), "blob_links": self.blob_links, "repositories": self.repositories,
                "namespaces": self.namespaces, "blobs": len(self.blobs), "bytes_reclaimed": self.bytes_reclaimed,
                "uploads": self.uploads, "storage_orphans": len(self.storage_orphans),
                "skipped_locked": self.skipped_locked, "errors": self.errors}


class Collector:
    def __init__(self, config: Config, pool, bus, locations: Locations, *, observer: Callable | None = None) -> None:
        self.config = config
        self.pool = pool
        self.bus = bus
        self.locations = locations
        self.locks = KVLocks(bus.js, bus.subjects.locks_bucket, config.meridian_gc_lock_ttl_sec)
        self.relay = OutboxRelay(pool, bus)
        self.registry = Registry(pool, bus.subjects, config.meridian_region, self.relay)
        # Tests watch when a repository is collected and by whom; production passes nothing.
        self.observer = observer
        self.default_window = valid_duration(config.default_tag_expiration)
        self._dry_conn = None  # a dry run works in one transaction that is rolled back at the end

    @property
    def db(self):
        return self._dry_conn if self._dry_conn is not None else self.pool

    async def open(self) -> None:
        await self.locks.open()

    async def run_once(self, *, dry_run: bool = False) -> Report:
        if not dry_run:
            return await self._run(dry_run=False)
        async with self.pool.acquire() as conn:
            transaction = conn.transaction()
            await transaction.start()
            self._dry_conn = conn
            try:
                return await self._run(dry_run=True)
            finally:
                self._dry_conn = None
                await transaction.rollback()

    async def _run(self, *, dry_run: bool) -> Report:
        report = Report(dry_run=dry_run)
        if self.config.registry_state == "readonly":
            report.paused = "read-only mode: gc makes no writes"
            return report
        if not self.config.feature_garbage_collection:
            report.paused = "FEATURE_GARBAGE_COLLECTION is false"
            return report
        temp = float(self.config.push_temp_tag_expiration_sec)
        await self._expire_tags(report, dry_run)
        for repo_id, full_name in await collection.repositories_to_collect(self.db, temp, int(self.default_window)):
            await self._with_lock(f"repo-{repo_id}", report, full_name, dry_run,
                                  functools.partial(self._collect_repository, repo_id, full_name, temp,
                                                    report=report, dry_run=dry_run))
        if self.config.feature_repository_garbage_collection:
            await self._with_lock("purge-repositories", report, "purge-repositories", dry_run,
                                  lambda lock: self._purge_repositories(lock, report, dry_run))
        if self.config.feature_namespace_garbage_collection:
            await self._with_lock("purge-namespaces", report, "purge-namespaces", dry_run,
                                  lambda lock: self._purge_namespaces(lock, report, dry_run))
        await self._with_lock("blobs", report, "blobs", dry_run, lambda lock: self._sweep_blobs(temp, lock, report, dry_run))
        await self._with_lock("blobs", report, "reconcile-storage", dry_run,
                              lambda lock: self._reconcile_storage(temp, lock, report, dry_run))
        if self.config.clean_blob_upload_folder:
            await self._with_lock("uploads", report, "uploads", dry_run, lambda lock: self._clean_uploads(lock, report, dry_run))
        if not dry_run:
            GC_ITERATIONS.inc()
        return report

    async def _with_lock(self, name: str, report: Report, label: str, dry_run: bool, work) -> None:
        if dry_run:
            await work(None)
            return
        lock = await self.locks.acquire(name)
        if lock is None:
            report.skipped_locked.append(label)
            return
        try:
            await work(lock)
        except LockLost:
            GC_LOCKS_LOST.inc()
            report.errors.append(f"{label}: lock lost; the work in hand was rolled back")
        finally:
            await lock.release()

    async def _observe(self, *event) -> None:
        if self.observer is not None:
            result = self.observer(*event)
            if asyncio.iscoroutine(result):
                await result

    async def _transaction(self, work, lock: Lock | None = None):
        """Run work(change) in one change, rolled back when the lock was lost. A dry run's steps build
        on each other inside its one outer transaction (savepoints), and announce nothing."""
        dry = self._dry_conn is not None
        async with self.registry.change(SYSTEM, conn=self._dry_conn, publish=not dry) as change:
            result = await work(change)
            if lock is not None:
                lock.check()
            return result

    async def _expire_tags(self, report: Report, dry_run: bool) -> None:
        report.tags_expired += await self._transaction(collection.end_expired_tags)

    async def _collect_repository(self, repo_id: int, full_name: str, temp: float, lock: Lock | None, report: Report,
                                  dry_run: bool) -> None:
        await self._observe("start", full_name)
        try:
            async def work(change: Change):
                tags = await collection.delete_expired_history(change, repo_id, int(self.default_window))
                manifests: list[str] = []
                while True:  # an index that goes frees its children; a subject that goes frees its referrers
                    if lock is not None:
                        lock.check()
                    gone = await collection.delete_unreferenced_manifests(change, repo_id, full_name, temp)
                    if not gone:
                        break
                    manifests += gone
                links = await collection.unlink_unused_blobs(change, repo_id, temp)
                return tags, manifests, links

            tags, manifests, links = await self._transaction(work, lock)
        finally:
            await self._observe("end", full_name)
        report.tags += tags
        report.manifests += [f"{full_name}@{d}" for d in manifests]
        report.blob_links += links
        if not dry_run:
            GC_TAGS_COLLECTED.inc(tags)
            GC_MANIFESTS_COLLECTED.inc(len(manifests))
        if tags or manifests or links:
            log.info("repository collected", repository=full_name, tags=tags, manifests=len(manifests), blob_links=links,
                     dry_run=dry_run)

    async def _purge_repositories(self, lock: Lock | None, report: Report, dry_run: bool, namespace_id: int | None = None) -> None:
        rows = await collection.deleted_repositories(self.db, namespace_id, BATCH)
        for row in rows:
            repo_lock = None if dry_run else await self.locks.acquire(f"repo-{row['id']}")
            if not dry_run and repo_lock is None:
                report.skipped_locked.append(row["full_name"])
                continue
            try:
                await self._observe("start", row["full_name"])

                async def work(change: Change, repo_id=row["id"]):
                    return await collection.purge_repository(change, repo_id)

                chunks = await self._transaction(work, lock)
                await self._observe("end", row["full_name"])
            finally:
                if repo_lock is not None:
                    await repo_lock.release()
            name = row["full_name"].split("+deleted+")[0]
            report.repositories.append(name)
            if not dry_run:
                GC_REPOS_PURGED.inc()
                await self._clean_chunks(chunks, report)
                log.info("repository purged", repository=name)

    async def _purge_namespaces(self, lock: Lock | None, report: Report, dry_run: bool) -> None:
        rows = await collection.deleted_namespaces(self.db, BATCH)
        for row in rows:
            # Its repositories go first, each the way a deleted repository goes.
            await self._purge_repositories(lock, report, dry_run, namespace_id=row["id"])
            if await collection.has_repositories(self.db, row["id"]):
                continue  # some repository was locked by a collector; next pass

            async def work(change: Change, namespace_id=row["id"]):
                await collection.purge_namespace(change, namespace_id)

            await self._transaction(work, lock)
            name = row["name"].split("+deleted+")[0]
            report.namespaces.append(name)
            if not dry_run:
                GC_NAMESPACES_PURGED.inc()
                log.info("namespace purged", namespace=name)

    async def _clean_chunks(self, chunks: dict[str, list[str]], report: Report) -> None:
        for location, upload_ids in chunks.items():
            try:
                await clean_location(self.locations, self.bus, location, self.config.meridian_partial_object_max_age_sec, upload_ids)
            except StorageCommandFailed as exc:
                report.errors.append(str(exc))

    async def _sweep_blobs(self, temp: float, lock: Lock | None, report: Report, dry_run: bool) -> None:
        candidates = await collection.blob_candidates(self.db, temp, BATCH)
        known = list(self.locations.drivers) + [n for n in self.locations.remote_urls if n not in self.locations.drivers]
        for candidate in candidates:
            if lock is not None:
                lock.check()
            with contextlib.suppress(_Rollback):
                await self._transaction(functools.partial(self._sweep_one, candidate=candidate, known=known, report=report,
                                                          dry_run=dry_run))
        if report.blobs:
            log.info("blobs collected", count=len(report.blobs), bytes=report.bytes_reclaimed, dry_run=dry_run)

    async def _sweep_one(self, change: Change, candidate, known: list[str], report: Report, *, dry_run: bool) -> None:
        # Exclusive digest lock to the end of the change: no writer can put these bytes back meanwhile.
        placed = await collection.claim_unreferenced(change, candidate["blob_id"], candidate["digest"])
        if placed is None:
            return
        if dry_run:
            report.blobs.append(candidate["digest"])
            report.bytes_reclaimed += candidate["size"] * len(placed)
            raise _Rollback()
        failed = await self._delete_everywhere(candidate["digest"], placed, known, report)
        if failed:
            await collection.keep_placements(change, candidate["blob_id"], failed)
            return
        await collection.forget_blob(change, candidate["blob_id"])
        reclaimed = candidate["size"] * len(placed)
        report.blobs.append(candidate["digest"])
        report.bytes_reclaimed += reclaimed
        GC_BLOBS_DELETED.inc()
        GC_BYTES_RECLAIMED.inc(reclaimed)

    async def _delete_everywhere(self, digest: str, placed: list[str], known: list[str], report: Report) -> list[str]:
        """Delete the bytes in every location that holds them (and, best effort, every other known
        one, for copies whose placement was never recorded); returns placed locations that failed."""
        failed = []

        async def one(location: str) -> None:
            try:
                await delete_blob(self.locations, self.bus, location, digest)
            except (StorageCommandFailed, OSError) as exc:
                if location in placed:
                    failed.append(location)
                    report.errors.append(f"{digest} at {location}: {exc}")

        await asyncio.gather(*(one(location) for location in sorted(set(placed) | set(known))))
        return failed

    async def _reconcile_storage(self, temp: float, lock: Lock | None, report: Report, dry_run: bool) -> None:
        """Step 7: content-addressed objects older than the push window that no blob row names go."""
        for location, driver in sorted(self.locations.drivers.items()):
            try:
                keys = [key for algorithm in ("sha256/", "sha512/") for key in await driver.list_older(algorithm, temp)]
            except Exception as exc:  # noqa: BLE001 - a store that cannot list is reported, the pass goes on
                report.errors.append(f"reconcile {location}: {type(exc).__name__}: {exc}")
                continue
            by_digest = {f"{key.split('/')[0]}:{key.split('/')[2]}": key for key in keys if paths.is_blob_key(key)}
            for start in range(0, len(by_digest), BATCH):
                batch = sorted(by_digest)[start:start + BATCH]
                for digest in await collection.digests_without_row(self.db, batch):
                    if lock is not None:
                        lock.check()
                    try:
                        await self._transaction(
                            lambda change, d=digest, k=by_digest[digest], loc=location, drv=driver:
                            self._delete_orphan(change, drv, loc, d, k, report, dry_run))
                    except _Rollback:
                        pass
                    except OSError as exc:
                        report.errors.append(f"{digest} at {location}: {exc}")
        if report.storage_orphans:
            log.info("storage reconciled", orphans=len(report.storage_orphans), dry_run=dry_run)

    async def _delete_orphan(self, change: Change, driver, location: str, digest: str, key: str, report: Report,
                             dry_run: bool) -> None:
        # Exclusive digest lock to the end of the change: a push recording these bytes finishes first.
        if not await collection.claim_orphan(change, digest):
            return
        report.storage_orphans.append(f"{location}:{digest}")
        if dry_run:
            raise _Rollback()
        await driver.delete(key)
        GC_STORAGE_ORPHANS_DELETED.labels(location).inc()

    async def _clean_uploads(self, lock: Lock | None, report: Report, dry_run: bool) -> None:
        config = self.config
        stale = await self._transaction(lambda change: collection.remove_stale_uploads(
            change, config.meridian_upload_session_max_age_sec, config.meridian_empty_upload_session_max_age_sec), lock)
        report.uploads += sum(len(v) for v in stale.values())
        if dry_run:
            return
        GC_UPLOADS_CLEANED.inc(report.uploads)
        locations = set(self.locations.drivers) | set(self.locations.remote_urls) | set(stale)
        for location in sorted(locations):
            try:
                # Leftovers of interrupted writes go once they made no progress for a while, not days.
                await clean_location(self.locations, self.bus, location, config.meridian_partial_object_max_age_sec,
                                     stale.get(location, []))
            except StorageCommandFailed as exc:
                report.errors.append(str(exc))
