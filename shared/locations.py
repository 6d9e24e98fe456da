"""Where a process finds blob bytes: its own location through a storage driver, other regions'
locations through their blobstores (HTTP, signed tokens), with a circuit breaker per location so a
failing one is skipped instead of failing every pull, and where it writes: the first location in the
region's preference order whose breaker is closed (its own, or, while that is down, the next one
through its blobstore: push failover). `watch_own()` probes the own location so its breaker follows
the store even when no request fails."""
from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from shared import tokens
from shared.config import Config
from shared.logging import get_logger
from shared.metrics import LOCATION_UP
from shared.storage import StorageDriver, open_driver, paths
from shared.storage.base import NotFound
from shared.storage.remote import BlobstoreDriver
from shared.tls import client_context

log = get_logger(__name__)


class LocationUnavailable(Exception):
    """The location could not be reached or answered with an error."""


class BlobMissing(Exception):
    """The location answered, but does not hold the blob (a placement that lies)."""


def damaged_copy(digest: str, location: str, found: str, expected: str) -> BlobMissing:
    """Log a copy that does not hold the blob's bytes (a damaged disk, an object overwritten behind the
    registry's back) and return the error that passes its location over for the next one."""
    log.error("blob copy damaged; not served from this location", digest=digest, location=location,
              found=found, expected=expected)
    return BlobMissing(f"{digest} in {location}: {found}, not {expected}")


@dataclass
class OpenedBlob:
    location: str
    start: int
    length: int
    chunks: AsyncIterator[bytes] | None = None
    local_file: Path | None = None
    _response: aiohttp.ClientResponse | None = None

    def release(self) -> None:
        if self._response is not None:
            self._response.release()


@dataclass
class CircuitBreaker:
    retry_after: float
    _open_until: dict[str, float] = field(default_factory=dict)

    def is_open(self, name: str) -> bool:
        return self._open_until.get(name, 0.0) > time.monotonic()

    def failed(self, name: str, *, quiet: bool = False, hold: float = 0.0) -> None:
        """Open the breaker for `retry_after` seconds, or `hold` when that is longer."""
        self._open_until[name] = time.monotonic() + max(self.retry_after, hold)
        if not quiet:
            log.warning("location skipped", location=name, retry_after=self.retry_after)

    def succeeded(self, name: str) -> None:
        self._open_until.pop(name, None)


class Locations:
    def __init__(self, config: Config, *, config_dir: Path | None = None, bulk_reads: bool = False) -> None:
        """`bulk_reads` (the replicator): read other regions' blobstores in 4 MiB blocks (aiohttp's
        iter_chunked then reads up to two blocks ahead while one is hashed and written; about 1.5x the
        copy rate of 1 MiB blocks, docs/decisions.md), at ~12 MiB per copy under way. Others (a
        gateway's fallback pulls, many at once) keep 1 MiB blocks."""
        self.config = config
        self.read_block = 4 << 20 if bulk_reads else 1 << 20
        self.preference = config.preferred_locations()
        self.own = self.preference[0]
        self.remote_urls = {name: url.rstrip("/") for name, url in config.meridian_blobstore_urls.items() if name != self.own}
        self.drivers: dict[str, StorageDriver] = {
            name: open_driver(location)
            for name, location in config.storage_locations().items()
            if name == self.own or name not in self.remote_urls
        }
        # Other regions' locations, written through their blobstores when ours is down.
        self.remote_drivers: dict[str, StorageDriver] = {
            name: BlobstoreDriver(name, url, functools.partial(self.token, name), self.http)
            for name, url in self.remote_urls.items()
        }
        self.breaker = CircuitBreaker(config.meridian_location_retry_after_sec)
        self.ssl = client_context(config_dir)
        self._http: aiohttp.ClientSession | None = None
        self._watch: asyncio.Task | None = None

    @property
    def own_driver(self) -> StorageDriver:
        return self.drivers[self.own]

    def driver(self, name: str) -> StorageDriver:
        """The driver that reaches a location: direct, or through its blobstore."""
        return self.drivers.get(name) or self.remote_drivers[name]

    def write_target(self) -> str:
        """Where new bytes go: the first location in the preference order that is not known to be
        down; the own location when every one is (the write then fails and says so)."""
        for name in self.preference:
            if self.reachable(name) and not self.breaker.is_open(name):
                return name
        return self.own

    def watch_own(self, interval: float = 5.0, timeout: float = 3.0, *, write: bool = True) -> None:
        """Probe the own location every `interval` seconds, so its breaker opens while the store is
        down (writes fail over at once instead of after a failed request) and closes when it answers.
        The probe writes and deletes a small object (a store can answer reads and refuse writes);
        in read-only mode it only stats."""
        async def probe() -> None:
            if not write:
                await self.own_driver.stat(paths.HEALTH_STAT)
                return
            key = paths.health_probe()
            await self.own_driver.put_bytes(key, b"probe")
            await self.own_driver.delete(key)

        async def watch() -> None:
            while True:
                try:
                    await asyncio.wait_for(probe(), timeout)
                    if self.breaker.is_open(self.own):
                        log.info("location answers again", location=self.own)
                    self.breaker.succeeded(self.own)
                    LOCATION_UP.labels(self.own).set(1)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    if not self.breaker.is_open(self.own):
                        log.warning("own location unreachable", location=self.own, error=f"{type(exc).__name__}: {exc}")
                    # Held until the probe after next could have answered: a breaker that closed
                    # between two failing probes would send writes to the dead store (503s).
                    self.breaker.failed(self.own, quiet=True, hold=2 * (interval + timeout))
                    LOCATION_UP.labels(self.own).set(0)
                await asyncio.sleep(interval)

        if self._watch is None:
            self._watch = asyncio.get_running_loop().create_task(watch())

    def own_is_up(self) -> bool:
        return not self.breaker.is_open(self.own)

    def http(self) -> aiohttp.ClientSession:
        if self._http is None:
            self._http = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=64, ssl=self.ssl),
                timeout=aiohttp.ClientTimeout(total=None, connect=3, sock_read=30),
            )
        return self._http

    def reachable(self, name: str) -> bool:
        return name in self.drivers or name in self.remote_urls

    def candidates(self, held: list[str]) -> list[str]:
        """Locations to try for a blob, nearest first; ones whose breaker is open go last."""
        ordered = [n for n in self.preference if n in held] + sorted(n for n in held if n not in self.preference)
        ordered = [n for n in ordered if self.reachable(n)]
        return [n for n in ordered if not self.breaker.is_open(n)] + [n for n in ordered if self.breaker.is_open(n)]

    def token(self, name: str, action: str, digest: str) -> str:
        secret = self.config.meridian_service_secret
        if not secret:
            raise LocationUnavailable("MERIDIAN_SERVICE_SECRET is not set")
        return tokens.sign(secret, location=name, action=action, digest=digest)

    async def open(self, name: str, digest: str, size: int, start: int = 0, length: int | None = None) -> OpenedBlob:
        """Open the blob's bytes [start, start+length) at a location; raises before any byte is sent."""
        length = size - start if length is None else length
        try:
            if name in self.drivers:
                opened = await self._open_direct(name, digest, size, start, length)
            else:
                opened = await self._open_remote(name, digest, size, start, length)
        except LocationUnavailable:
            self.breaker.failed(name)
            raise
        self.breaker.succeeded(name)
        return opened

    async def _open_direct(self, name: str, digest: str, size: int, start: int, length: int) -> OpenedBlob:
        driver = self.drivers[name]
        path = paths.blob(digest)
        local = driver.local_file(path)
        if local is not None:
            try:
                found = local.stat().st_size
            except (FileNotFoundError, NotADirectoryError):
                raise BlobMissing(f"{digest} is not in {name}") from None
            if found != size:
                # Served as it is, the file would answer fewer (or other) bytes than the Content-Length
                # promised, and a client on a kept-alive connection would wait for the rest forever.
                raise damaged_copy(digest, name, f"{found} bytes", f"{size} bytes")
            return OpenedBlob(name, start, length, local_file=local)
        stream = driver.read(path, start, length)
        try:
            first = await stream.__anext__() if length else b""
        except StopAsyncIteration:
            first = b""
        except NotFound:
            raise BlobMissing(f"{digest} is not in {name}") from None
        except Exception as exc:
            raise LocationUnavailable(f"{name}: {exc}") from exc

        async def chained() -> AsyncIterator[bytes]:
            if first:
                yield first
            if length:
                async for block in stream:
                    yield block

        return OpenedBlob(name, start, length, chunks=chained())

    async def _open_remote(self, name: str, digest: str, size: int, start: int, length: int) -> OpenedBlob:
        headers = {"Authorization": f"Bearer {self.token(name, 'read', digest)}"}
        if length and (start or length < size):
            headers["Range"] = f"bytes={start}-{start + length - 1}"
        try:
            response = await self.http().get(f"{self.remote_urls[name]}/blobs/{digest}", headers=headers)
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise LocationUnavailable(f"{name}: {exc}") from exc
        if response.status == 404:
            response.release()
            raise BlobMissing(f"{digest} is not in {name}")
        if response.status == 416:  # the range lies within the blob: the copy there is shorter
            response.release()
            raise damaged_copy(digest, name, "shorter than the range", headers.get("Range", "no range"))
        if response.status not in (200, 206):
            response.release()
            raise LocationUnavailable(f"{name}: blobstore answered {response.status}")
        if response.content_length is not None and response.content_length != length:
            response.release()
            raise damaged_copy(digest, name, f"{response.content_length} bytes", f"{length} bytes")
        chunks = response.content.iter_chunked(self.read_block) if length else _empty()
        return OpenedBlob(name, start, length, chunks=chunks, _response=response)

    async def close(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None
        if self._http is not None:
            await self._http.close()
        for driver in self.drivers.values():
            await driver.close()


async def _empty() -> AsyncIterator[bytes]:
    return
    yield b""  # pragma: no cover


class StorageCommandFailed(Exception):
    """A location could not carry out a storage command (unreachable, or it answered with an error)."""


async def _request(bus, location: str, command: str, payload: bytes, timeout: float):
    try:
        return await bus.nc.request(bus.subjects.blobstore_command(location, command), payload, timeout=timeout)
    except Exception as exc:
        raise StorageCommandFailed(f"{location}: {command}: {type(exc).__name__}: {exc}") from None


async def delete_blob(locations: Locations, bus, location: str, digest: str, timeout: float = 10.0) -> None:
    """Delete a blob's bytes at a location: through its driver when this process has one, else by
    asking that location's blobstore over NATS."""
    import msgspec

    from shared.bus import encode
    from shared.messages import BlobCommand, BlobCommandReply

    driver = locations.drivers.get(location)
    if driver is not None:
        await driver.delete(paths.blob(digest))
        return
    reply = msgspec.json.decode((await _request(bus, location, "delete", encode(BlobCommand(digest=digest)), timeout)).data,
                                type=BlobCommandReply)
    if not reply.ok:
        raise StorageCommandFailed(f"{location}: delete: {reply.error}")


async def clean_location(locations: Locations, bus, location: str, older_than: float, upload_ids: list[str],
                         timeout: float = 60.0) -> int:
    """Remove upload sessions' chunks and leftovers of interrupted writes at a location."""
    import msgspec

    from shared.bus import encode
    from shared.messages import CleanCommand, CleanReply

    driver = locations.drivers.get(location)
    if driver is not None:
        for upload_id in upload_ids:
            await driver.delete_prefix(paths.upload_folder(upload_id))
        return await driver.clean_partial(older_than) + len(upload_ids)
    reply = msgspec.json.decode(
        (await _request(bus, location, "clean", encode(CleanCommand(older_than=older_than, upload_ids=upload_ids)), timeout)).data,
        type=CleanReply)
    if not reply.ok:
        raise StorageCommandFailed(f"{location}: clean: {reply.error}")
    return reply.removed
