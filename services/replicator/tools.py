"""Operator tools around replication: backfill, remove a location, verify placements.

Each takes a Config and a writer for its report, and returns a summary dict (tests read it)."""
from __future__ import annotations

import sys
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TextIO

import msgspec

from shared.bus import Bus, encode
from shared.config import Config
from shared.contract import Subjects
from shared.db import close_pool, create_pool
from shared.messages import SYSTEM, BlobCommand, BlobCommandReply
from shared.outbox import OutboxRelay
from shared.registry import Registry, blobs, replication
from shared.storage import open_driver, paths


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


@asynccontextmanager
async def _registry(config: Config, name: str, *, bus_needed: bool = True) -> AsyncIterator[Registry]:
    """A small pool, and a bus whose relay publishes what the tool's changes queue as they commit."""
    pool = await create_pool(config.db_uri, 2)
    bus = None
    relay = None
    try:
        if bus_needed:
            bus = Bus(config.nats_url, config.meridian_bus_prefix, name=name)
            await bus.connect()
            relay = OutboxRelay(pool, bus)
        yield Registry(pool, Subjects(config.meridian_bus_prefix), config.meridian_region, relay)
    finally:
        if relay is not None:
            await relay.stop()  # waits for the publishes under way
        if bus is not None:
            await bus.close()
        await close_pool(pool)


async def backfill(config: Config, *, dry_run: bool = False, namespace: str | None = None, out: TextIO = sys.stdout) -> dict:
    if not config.feature_storage_replication:
        raise ToolRefused("Storage replication is not enabled (FEATURE_STORAGE_REPLICATION: false). Exiting.")
    defaults = set(config.distributed_storage_default_locations)
    async with _registry(config, "backfill", bus_needed=not dry_run) as registry:
        settings = await replication.all_namespace_settings(registry.pool)
        rows = await replication.blobs_with_holdings(registry.pool, namespace)
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
                    async with registry.change(SYSTEM) as change:
                        await replication.queue_copy(change, digest=row["digest"], size=row["size"], target=target,
                                                     namespace=owner, reason="backfill",
                                                     msg_id=f"backfill:{row['digest']}:{target}:{run_id}")
                queued += 1
                queued_bytes += row["size"]
            if not dry_run:
                progress(out, index, len(rows), "backfill")
        verb = "would queue" if dry_run else "queued"
        out.write(f"{len(rows)} blob(s) checked; {verb} {queued} missing cop{'y' if queued == 1 else 'ies'} "
                  f"({queued_bytes} bytes); {len(orphans)} blob(s) have no copy anywhere\n")
        return {"checked": len(rows), "queued": queued, "bytes": queued_bytes, "orphans": orphans, "planned": planned}


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
    async with _registry(config, "remove-location", bus_needed=False) as registry:
        location_id = await replication.location_id(registry.pool, name)
        if location_id is None:
            raise ToolRefused(f"There is no storage location named {name!r}. Exiting.")
        placements, only_copy = await replication.location_usage(registry.pool, location_id)
        warning = (f"WARNING: This is a destructive operation. Are you sure you want to remove {name} from your storage "
                   f"locations? It holds {placements} placement(s)")
        warning += f", and {only_copy} blob(s) have no other copy and will become unavailable" if only_copy else ""
        if not confirm(warning + ". [y/n] "):
            out.write("Nothing was removed.\n")
            return {"removed": False}
        async with registry.change(SYSTEM) as change:
            uploads, removed = await replication.remove_location(change, location_id)
        out.write(f"Removed {uploads} temporary upload(s) from the upload sessions.\n")
        out.write(f"Deleted {removed} placement(s) in {name}.\n")
        out.write(f"Deleted location {name}. Its bucket or folder was not touched.\n")
        return {"removed": True, "uploads": uploads, "placements": removed, "unavailable": only_copy}


async def verify_placements(config: Config, *, requeue: bool = False, location: str | None = None, out: TextIO = sys.stdout) -> dict:
    """Drop placements whose bytes are missing or not the blob's size (checked directly or through the
    location's blobstore)."""
    own = config.preferred_locations()[0]
    remote = set(config.meridian_blobstore_urls) - {own}
    drivers = {n: open_driver(loc) for n, loc in config.storage_locations().items() if n not in remote}
    try:
        async with _registry(config, "verify-placements") as registry:
            assert registry.relay is not None  # _registry made a bus and its relay
            bus = registry.relay.bus
            rows = await replication.placements(registry.pool, location)
            dropped = []
            for index, row in enumerate(rows, 1):
                exists = await _whole(bus, drivers, row["location"], row["digest"], row["size"])
                if exists is False:
                    async with registry.change(SYSTEM) as change:
                        await blobs.unplace(change, row["blob_id"], row["location_id"])
                        if requeue:
                            namespace = await replication.a_namespace_of(change.conn, row["blob_id"])
                            if namespace:
                                await replication.queue_copy(change, digest=row["digest"], size=row["size"],
                                                             target=row["location"], namespace=namespace, reason="verify")
                    dropped.append((row["digest"], row["location"]))
                    out.write(f"\ndropped placement of {row['digest']} in {row['location']}: the bytes are missing or short\n")
                elif exists is None:
                    out.write(f"\ncould not check {row['digest']} in {row['location']}: its blobstore did not answer\n")
                progress(out, index, len(rows), "verify")
            out.write(f"{len(rows)} placement(s) checked; {len(dropped)} dropped"
                      + ("; re-queued for replication" if requeue and dropped else "") + "\n")
            return {"checked": len(rows), "dropped": dropped}
    finally:
        for driver in drivers.values():
            await driver.close()


async def _whole(bus: Bus, drivers: dict, location: str, digest: str, size: int) -> bool | None:
    """Whether the location holds the blob's bytes, all of them; None when its blobstore did not answer."""
    if location in drivers:
        return await drivers[location].stat(paths.blob(digest)) == size
    if bus.nc is None:  # not connected: as if the blobstore did not answer
        return None
    try:
        reply = await bus.nc.request(bus.subjects.blobstore_command(location, "stat"), encode(BlobCommand(digest=digest)), timeout=5)
    except Exception:
        return None
    answer = msgspec.json.decode(reply.data, type=BlobCommandReply)
    return answer.exists and answer.size == size if answer.ok else None
