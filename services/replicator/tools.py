"""Operator tools around replication: backfill, remove a location, verify placements.

Each takes a Config and a writer for its report, and returns a summary dict (tests read it)."""
from __future__ import annotations

import sys
import time
import uuid
from typing import Callable, TextIO

import asyncpg
import msgspec

from shared.bus import Bus, encode
from shared.config import Config
from shared.digest import blob_path
from shared.messages import BlobCommand, BlobCommandReply, BlobWritten
from shared.storage import open_driver


class ToolRefused(Exception):
    """The tool will not run; the message says why and what to do."""


def progress(out: TextIO, done: int, total: int, label: str) -> None:
    if not total:
        return
    width = 30
    filled = int(width * done / total)
    out.write(f"\r{label} [{'#' * filled}{' ' * (width - filled)}] {done}/{total}")
    if done == total:
        out.write("\n")
    out.flush()


async def _namespace_settings(conn) -> dict[str, set[str]]:
    rows = await conn.fetch(
        "SELECT n.name AS namespace, l.name AS location FROM namespace_replication nr "
        "JOIN namespaces n ON n.id = nr.namespace_id JOIN storage_locations l ON l.id = nr.location_id"
    )
    settings: dict[str, set[str]] = {}
    for row in rows:
        settings.setdefault(row["namespace"], set()).add(row["location"])
    return settings


async def _queue(bus: Bus, digest: str, size: int, source: str, target: str, namespace: str, run_id: str) -> None:
    event = BlobWritten(digest=digest, size=size, location=source, region="backfill", repository=f"{namespace}/*",
                        namespace=namespace, committed_at=time.time())
    await bus.publish(bus.subjects.blob_written(source), encode(event), f"backfill:{digest}:{target}:{run_id}")


async def backfill(config: Config, *, dry_run: bool = False, namespace: str | None = None, out: TextIO = sys.stdout) -> dict:
    if not config.feature_storage_replication:
        raise ToolRefused("Storage replication is not enabled (FEATURE_STORAGE_REPLICATION: false). Exiting.")
    defaults = set(config.distributed_storage_default_locations)
    conn = await asyncpg.connect(config.db_uri)
    bus = None
    try:
        settings = await _namespace_settings(conn)
        rows = await conn.fetch(
            """
            SELECT b.digest, b.size, array_agg(DISTINCT n.name) AS namespaces,
                   ARRAY(SELECT l.name FROM blob_placements p JOIN storage_locations l ON l.id = p.location_id
                         WHERE p.blob_id = b.id ORDER BY l.name) AS held
            FROM blobs b JOIN repository_blobs rb ON rb.blob_id = b.id
            JOIN repositories r ON r.id = rb.repository_id JOIN namespaces n ON n.id = r.namespace_id
            WHERE ($1::text IS NULL OR n.name = $1)
            GROUP BY b.id ORDER BY b.id
            """,
            namespace,
        )
        if not dry_run:
            bus = Bus(config.nats_url, config.meridian_bus_prefix, name="backfill")
            await bus.connect()
        run_id = uuid.uuid4().hex[:8]
        queued, queued_bytes, orphans, planned = 0, 0, [], []
        for index, row in enumerate(rows, 1):
            held = list(row["held"])
            for target in sorted(_required(row["namespaces"], settings, defaults) - set(held)):
                if not held:
                    orphans.append(row["digest"])
                    break
                owner = next((ns for ns in row["namespaces"] if target in settings.get(ns, ())), row["namespaces"][0])
                planned.append((row["digest"], target))
                if dry_run:
                    out.write(f"would queue {row['digest']} -> {target}\n")
                else:
                    await _queue(bus, row["digest"], row["size"], held[0], target, owner, run_id)
                queued += 1
                queued_bytes += row["size"]
            if not dry_run:
                progress(out, index, len(rows), "backfill")
        verb = "would queue" if dry_run else "queued"
        out.write(f"{len(rows)} blob(s) checked; {verb} {queued} missing cop{'y' if queued == 1 else 'ies'} "
                  f"({queued_bytes} bytes); {len(orphans)} blob(s) have no copy anywhere\n")
        return {"checked": len(rows), "queued": queued, "bytes": queued_bytes, "orphans": orphans, "planned": planned}
    finally:
        await conn.close()
        if bus is not None:
            await bus.close()


def _required(namespaces: list[str], settings: dict[str, set[str]], defaults: set[str]) -> set[str]:
    required = set(defaults)
    for ns in namespaces:
        required |= settings.get(ns, set())
    return required


async def remove_location(config: Config, name: str, *, confirm: Callable[[str], bool], out: TextIO = sys.stdout) -> dict:
    if not (config.disable_pushes or config.registry_state == "readonly"):
        raise ToolRefused("Pushes are not disabled. Set DISABLE_PUSHES: true (or REGISTRY_STATE: readonly) "
                          "in config.yaml, restart the gateways, then run this again. Exiting.")
    if name in config.storage_locations():
        raise ToolRefused(f"{name} is still in DISTRIBUTED_STORAGE_CONFIG: remove it from config.yaml first "
                          "(and from DISTRIBUTED_STORAGE_PREFERENCE / DEFAULT_LOCATIONS). Exiting.")
    conn = await asyncpg.connect(config.db_uri)
    try:
        location_id = await conn.fetchval("SELECT id FROM storage_locations WHERE name = $1", name)
        if location_id is None:
            raise ToolRefused(f"There is no storage location named {name!r}. Exiting.")
        placements = await conn.fetchval("SELECT count(*) FROM blob_placements WHERE location_id = $1", location_id)
        only_copy = await conn.fetchval(
            "SELECT count(*) FROM blob_placements p WHERE p.location_id = $1 AND NOT EXISTS "
            "(SELECT 1 FROM blob_placements o WHERE o.blob_id = p.blob_id AND o.location_id <> $1)",
            location_id,
        )
        warning = (f"WARNING: This is a destructive operation. Are you sure you want to remove {name} from your storage "
                   f"locations? It holds {placements} placement(s)")
        warning += f", and {only_copy} blob(s) have no other copy and will become unavailable" if only_copy else ""
        if not confirm(warning + ". [y/n] "):
            out.write("Nothing was removed.\n")
            return {"removed": False}
        async with conn.transaction():
            uploads = await conn.fetchval("WITH d AS (DELETE FROM upload_sessions WHERE location_id = $1 RETURNING 1) SELECT count(*) FROM d", location_id)
            removed = await conn.fetchval("WITH d AS (DELETE FROM blob_placements WHERE location_id = $1 RETURNING 1) SELECT count(*) FROM d", location_id)
            await conn.execute("DELETE FROM storage_locations WHERE id = $1", location_id)
        out.write(f"Removed {uploads} temporary upload(s) from the upload sessions.\n")
        out.write(f"Deleted {removed} placement(s) in {name}.\n")
        out.write(f"Deleted location {name}. Its bucket or folder was not touched.\n")
        return {"removed": True, "uploads": uploads, "placements": removed, "unavailable": only_copy}
    finally:
        await conn.close()


async def verify_placements(config: Config, *, requeue: bool = False, location: str | None = None, out: TextIO = sys.stdout) -> dict:
    """Drop placements whose bytes are missing (checked directly or through the location's blobstore)."""
    conn = await asyncpg.connect(config.db_uri)
    bus = Bus(config.nats_url, config.meridian_bus_prefix, name="verify-placements")
    await bus.connect()
    own = config.preferred_locations()[0]
    remote = set(config.meridian_blobstore_urls) - {own}
    drivers = {n: open_driver(loc) for n, loc in config.storage_locations().items() if n not in remote}
    try:
        rows = await conn.fetch(
            "SELECT p.blob_id, p.location_id, b.digest, b.size, l.name AS location FROM blob_placements p "
            "JOIN blobs b ON b.id = p.blob_id JOIN storage_locations l ON l.id = p.location_id "
            "WHERE ($1::text IS NULL OR l.name = $1) ORDER BY b.id",
            location,
        )
        dropped = []
        for index, row in enumerate(rows, 1):
            exists = await _exists(bus, drivers, row["location"], row["digest"])
            if exists is False:
                await conn.execute("DELETE FROM blob_placements WHERE blob_id = $1 AND location_id = $2", row["blob_id"], row["location_id"])
                dropped.append((row["digest"], row["location"]))
                out.write(f"\ndropped placement of {row['digest']} in {row['location']}: the bytes are missing\n")
                if requeue:
                    await _requeue(conn, bus, row["blob_id"], row["digest"], row["size"], row["location"])
            elif exists is None:
                out.write(f"\ncould not check {row['digest']} in {row['location']}: its blobstore did not answer\n")
            progress(out, index, len(rows), "verify")
        out.write(f"{len(rows)} placement(s) checked; {len(dropped)} dropped" + ("; re-queued for replication" if requeue and dropped else "") + "\n")
        return {"checked": len(rows), "dropped": dropped}
    finally:
        await conn.close()
        await bus.close()
        for driver in drivers.values():
            await driver.close()


async def _exists(bus: Bus, drivers: dict, location: str, digest: str) -> bool | None:
    if location in drivers:
        return await drivers[location].stat(blob_path(digest)) is not None
    try:
        reply = await bus.nc.request(bus.subjects.blobstore_command(location, "stat"), encode(BlobCommand(digest=digest)), timeout=5)
    except Exception:
        return None
    answer = msgspec.json.decode(reply.data, type=BlobCommandReply)
    return answer.exists if answer.ok else None


async def _requeue(conn, bus: Bus, blob_id: int, digest: str, size: int, target: str) -> None:
    source = await conn.fetchval(
        "SELECT l.name FROM blob_placements p JOIN storage_locations l ON l.id = p.location_id WHERE p.blob_id = $1 LIMIT 1", blob_id
    )
    namespace = await conn.fetchval(
        "SELECT n.name FROM repository_blobs rb JOIN repositories r ON r.id = rb.repository_id "
        "JOIN namespaces n ON n.id = r.namespace_id WHERE rb.blob_id = $1 LIMIT 1", blob_id
    )
    if source and namespace:
        await _queue(bus, digest, size, source, target, namespace, uuid.uuid4().hex[:8])
