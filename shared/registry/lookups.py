"""Pull lookups from memory, under a lease: which manifest a tag or a digest names in a repository.

A manifest GET by tag spent about half its time on the one database round trip that asks which
manifest the tag names (bench/README.md). A gateway process keeps those answers and instead asks
PostgreSQL one cheap question a few times per lease: has anything changed? The answer is the lookup
epoch (shared/migrations/0011_lookup_epoch.sql), which a trigger moves at the commit of every
transaction that changes what a lookup answers: a tag made, moved, ended, re-dated or deleted; a
repository renamed, re-stated or deleted; a manifest deleted. When it has moved, the process forgets
everything it kept.

The promise: once the request that changed a lookup has answered, no gateway anywhere answers from
before that change.
- A process uses what it kept only until LEASE seconds after the *start* of its last completed check
  (`usable_until`).
- A request whose handler changed lookups (`changed()`, called by the domain operations) waits LEASE
  seconds after its commit before it answers (`settle`, in the gateway's middleware).
So a read that starts after that answer either asks the database, or uses a cache whose last check
began after the commit: that check saw the moved epoch and emptied it. A read that began before such a
check and lands after it is not kept (`ticket`: the generation it started in). When checks stop (the
database slow or down, the event loop stalled) the lease runs out and every lookup asks the database,
exactly as without the cache.

Every gateway must run with the same MERIDIAN_LOOKUP_CACHE_SEC (it is one config.yaml): a writer waits
its own lease, which must cover the readers'. 0 turns the cache and the waiting off.
"""
from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Generic, TypeVar

from shared.logging import get_logger
from shared.model import Db

log = get_logger(__name__)

# Checks per lease: one late or lost check does not end the lease.
CHECKS_PER_LEASE = 4

Value = TypeVar("Value")


async def lookup_epoch(db: Db) -> int:
    return await db.fetchval("SELECT epoch FROM lookup_epoch")


class Lookups(Generic[Value]):
    """One per gateway process; `lease_s` 0 keeps nothing."""

    def __init__(self, pool: Db, lease_s: float, capacity: int = 10_000) -> None:
        self.pool = pool
        self.lease_s = lease_s
        self.capacity = capacity
        self.hits = 0
        self._entries: dict[tuple[str, str], Value] = {}
        self._epoch: int | None = None
        self._generation = 0
        self._usable_until = 0.0
        self._task: asyncio.Task | None = None
        self._failing = False

    @property
    def enabled(self) -> bool:
        return self.lease_s > 0

    def start(self) -> None:
        if self.enabled and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._watch())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._usable_until = 0.0

    async def check(self) -> None:
        """Ask for the epoch once; forget everything if it moved; extend the lease from this check's start."""
        started = time.monotonic()
        epoch = await lookup_epoch(self.pool)
        if epoch != self._epoch:
            self._entries.clear()
            self._generation += 1
            self._epoch = epoch
        self._usable_until = started + self.lease_s

    async def _watch(self) -> None:
        while True:
            try:
                await self.check()
                if self._failing:
                    log.info("lookup cache checks answer again")
                    self._failing = False
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the lease runs out; lookups go to the database until checks answer
                if not self._failing:
                    log.warning("lookup cache check failed; lookups ask the database", error=f"{type(exc).__name__}: {exc}")
                    self._failing = True
            await asyncio.sleep(self.lease_s / CHECKS_PER_LEASE)

    def get(self, key: tuple[str, str]) -> Value | None:
        if time.monotonic() >= self._usable_until:
            return None
        hit = self._entries.get(key)
        if hit is not None:
            self.hits += 1
        return hit

    def ticket(self) -> int:
        """Taken before a lookup asks the database; `keep` drops the answer if the cache was emptied since."""
        return self._generation

    def keep(self, key: tuple[str, str], value: Value, ticket: int) -> None:
        if ticket != self._generation or time.monotonic() >= self._usable_until:
            return
        if len(self._entries) >= self.capacity:
            self._entries.clear()  # rare (more live references pulled than capacity); refills on the next pulls
        self._entries[key] = value


class _Marker:
    __slots__ = ("changed",)

    def __init__(self) -> None:
        self.changed = False


# The request being handled, if the caller watches for changes (the gateway's middleware does). A
# mutable marker, not a flag in the variable: a task started by the handler copies the context, and
# must still reach the same marker.
_WATCHING: contextvars.ContextVar[_Marker | None] = contextvars.ContextVar("lookups_watching", default=None)


def changed() -> None:
    """Called by a domain operation that changes what a lookup answers (inside its transaction)."""
    marker = _WATCHING.get()
    if marker is not None:
        marker.changed = True


def changed_here() -> bool:
    """Whether the request being handled has changed a lookup so far."""
    marker = _WATCHING.get()
    return marker is not None and marker.changed


def watch() -> _Marker:
    """Watch the current task (a request: aiohttp handles a connection's requests in one task, so each
    request starts a fresh marker) for changes from here on."""
    marker = _Marker()
    _WATCHING.set(marker)
    return marker


@contextmanager
def watching() -> Iterator[_Marker]:
    """`watch` for a block, then as before."""
    marker = _Marker()
    token = _WATCHING.set(marker)
    try:
        yield marker
    finally:
        _WATCHING.reset(token)


async def settle(marker: _Marker, lease_s: float) -> None:
    """After a request changed lookups and committed: wait out every process's lease before answering."""
    if marker.changed and lease_s > 0:
        await asyncio.sleep(lease_s)
