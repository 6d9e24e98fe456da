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
exactly as without the cache. Checks start on a fixed beat, not after the last answered (a slow round
trip on busy cores would otherwise end the lease), and a lookup that finds the lease run out waits for
a check under way that began less than a lease before it, which vouches for it, rather than asking the
database itself (`find`).

Gateways may run with different leases (MERIDIAN_LOOKUP_CACHE_SEC; 0 keeps nothing): every process that
keeps lookups says how long its lease is in `lookup_leases` (renewed every REGISTRATION_RENEW_S, and it
stops using what it kept when it could not renew for REGISTRATION_VALID_S), and a request that changed
a lookup waits the longest lease seen there in the last REGISTRATION_SEEN_S, its own at least. The
events of such a change go out after the same wait, so a consumer that pulls on tag.changed gets the
new manifest everywhere. What is not promised: that two gateways agree *while* the change waits (a
client that saw the new tag through one may get the old one through another until the change answers).
"""
from __future__ import annotations

import asyncio
import contextvars
import time
import uuid
from contextlib import suppress
from typing import Generic, TypeVar

from shared.logging import get_logger
from shared.model import Db
from shared.tasks import cancel_and_wait

log = get_logger(__name__)

# Checks per lease: one late or lost check does not end the lease.
CHECKS_PER_LEASE = 4
# A check starts every lease / CHECKS_PER_LEASE whether or not the last one has answered (up to this
# many at once): on a machine whose cores are busy, a check's round trip can take most of a lease, and
# checks that waited for each other then let the lease run out.
MAX_CHECKS_IN_FLIGHT = 3
# A lookup waits at most this long for a check under way (Lookups.find) before it asks the database
# itself: a check stuck on one connection must not hold the requests of a long lease.
LAPSE_WAIT_MAX_S = 0.25
# A process renews its row in lookup_leases this often, uses what it kept only while its last renewal
# began less than REGISTRATION_VALID_S ago, and writers count rows renewed in the last
# REGISTRATION_SEEN_S (the margin covers clocks that run at slightly different rates).
REGISTRATION_RENEW_S = 30.0
REGISTRATION_VALID_S = 60.0
REGISTRATION_SEEN_S = 90.0
# The longest lease a configuration may set (shared/config.py): what a writer waits when it cannot
# learn the longest lease in use (the database did not answer).
MAX_LEASE_S = 5.0

Value = TypeVar("Value")


async def lookup_epoch(db: Db) -> tuple[int, uuid.UUID]:
    row = await db.fetchrow("SELECT epoch, stamp FROM lookup_epoch")
    if row is None:
        raise LookupError("lookup_epoch has no row (shared/migrations/0011_lookup_epoch.sql)")
    return row["epoch"], row["stamp"]


async def longest_lease(db: Db, own_s: float) -> float:
    """How long a change must wait before it answers: the longest lease of the processes keeping
    lookups (its own at least); the longest allowed when the database does not say."""
    try:
        seen = await db.fetchval(
            "SELECT max(lease_s) FROM lookup_leases WHERE seen_at > now() - make_interval(secs => $1)",
            REGISTRATION_SEEN_S)
    except Exception as exc:
        log.warning("longest lookup lease unknown; waiting the longest allowed", error=f"{type(exc).__name__}: {exc}")
        return MAX_LEASE_S
    return max(own_s, seen or 0.0)


class Lookups(Generic[Value]):
    """One per gateway process; `lease_s` 0 keeps nothing."""

    def __init__(self, pool: Db, lease_s: float, capacity: int = 10_000) -> None:
        self.pool = pool
        self.lease_s = lease_s
        self.capacity = capacity
        self.hits = 0
        self._entries: dict[tuple[str, str], Value] = {}
        self._epoch: tuple[int, uuid.UUID] | None = None
        self._instance = uuid.uuid4()
        self._registered = float("-inf")  # monotonic start of the last renewal of this process's row
        self._generation = 0
        self._usable_until = 0.0
        self._task: asyncio.Task | None = None
        # Checks under way: their number (in the order they started) -> (monotonic start, the start of the
        # registration it relies on, task).
        self._checks: dict[int, tuple[float, float, asyncio.Task]] = {}
        self._checks_started = 0
        self._check_applied = 0  # the number of the newest check whose answer was applied
        self._renewal: asyncio.Task | None = None  # a renewal of this process's row under way
        self._renewal_failing = False
        self._failing = False

    @property
    def enabled(self) -> bool:
        return self.lease_s > 0

    def start(self) -> None:
        if self.enabled and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._watch())

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)
        for _, _, check in list(self._checks.values()):  # read after the watcher ended: no other starts now
            await cancel_and_wait(check)
        if self._renewal is not None:  # read after the checks ended: none can start another now
            await cancel_and_wait(self._renewal)
        self._task = self._renewal = None
        self._usable_until = 0.0
        self._registered = float("-inf")  # the row goes below: a restart must register again
        with suppress(Exception):  # writers stop waiting for this process at once (else within 90 s)
            await self.pool.execute("DELETE FROM lookup_leases WHERE instance = $1", self._instance)

    async def register(self) -> None:
        """Say (again) how long this process's lease is, so that changes wait for it."""
        started = time.monotonic()
        await self.pool.execute(
            "INSERT INTO lookup_leases (instance, lease_s, seen_at) VALUES ($1, $2, now()) "
            "ON CONFLICT (instance) DO UPDATE SET lease_s = excluded.lease_s, seen_at = excluded.seen_at",
            self._instance, self.lease_s)
        if self._registered == float("-inf"):  # once per process: rows of processes gone a day
            await self.pool.execute("DELETE FROM lookup_leases WHERE seen_at < now() - interval '1 day'")
        self._registered = started

    async def check(self) -> None:
        """One check, to its end (the watcher starts them without waiting; tests call this)."""
        await self._start_check()

    def _start_check(self) -> asyncio.Task:
        self._checks_started += 1
        number = self._checks_started
        # The start and the registration it may rely on are taken here, before the task runs: the start is
        # never later than the epoch's read, and a renewal that commits after it (while the epoch is read)
        # was not yet seen by a writer that committed meanwhile.
        started, registered = time.monotonic(), self._registered
        task = asyncio.get_running_loop().create_task(self._check(number, started, registered))
        self._checks[number] = (started, registered, task)
        task.add_done_callback(lambda _: self._checks.pop(number, None))
        return task

    async def _check(self, number: int, started: float, registered: float) -> None:
        """Ask for the epoch once; forget everything if it moved; extend the lease from this check's start
        (never past what this process's registration covers). A check that answers after a later one
        changes nothing: the later one's answer is the newer.

        The first registration is awaited: nothing is kept before writers know of this process. Renewals
        run beside the checks: a renewal is a write, and its commit waits for the disk. Awaited here, a
        commit slowed by a disk busy with the writeback of large pushes held the check, the lease ran
        out, and every pull's lookup went to PostgreSQL at once (manifest GETs of 0.1–0.9 s in the
        benchmark). A renewal that has not ended within REGISTRATION_VALID_S still ends the cache."""
        if registered == float("-inf"):
            if self._registered == float("-inf"):
                await self.register()
            registered = self._registered  # committed before the epoch is read below
        elif time.monotonic() - self._registered >= REGISTRATION_RENEW_S and (
                self._renewal is None or self._renewal.done()):
            self._renewal = asyncio.get_running_loop().create_task(self._renew())
        epoch = await lookup_epoch(self.pool)
        if number < self._check_applied:
            return
        self._check_applied = number
        if epoch != self._epoch:
            self._entries.clear()
            self._generation += 1
            self._epoch = epoch
        self._usable_until = min(started + self.lease_s, registered + REGISTRATION_VALID_S)

    async def _renew(self) -> None:
        try:
            await self.register()
        except Exception as exc:  # retried at the next check; the lease ends REGISTRATION_VALID_S after the last
            if not self._renewal_failing:  # one line per outage, not one per check
                log.warning("lookup lease registration not renewed", error=f"{type(exc).__name__}: {exc}")
                self._renewal_failing = True
        else:
            self._renewal_failing = False

    async def _watch(self) -> None:
        while True:
            if len(self._checks) < MAX_CHECKS_IN_FLIGHT:
                self._start_check().add_done_callback(self._checked)
            await asyncio.sleep(self.lease_s / CHECKS_PER_LEASE)

    def _checked(self, task: asyncio.Task) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if exc is None:
            if self._failing:
                log.info("lookup cache checks answer again")
                self._failing = False
        elif not self._failing:  # the lease runs out; lookups go to the database until checks answer
            log.warning("lookup cache check failed; lookups ask the database", error=f"{type(exc).__name__}: {exc}")
            self._failing = True

    async def find(self, key: tuple[str, str]) -> Value | None:
        """What is kept for `key`, as `get`. When the lease has run out while checks are under way that
        began less than a lease before this lookup (on a registration still valid), wait for the first
        of them to answer (at most LAPSE_WAIT_MAX_S) rather than send the lookup to the database. Such
        a check vouches for this lookup even when it answers too late to renew the lease for later
        ones: it began after every change that had answered when the lookup began (a change answers a
        lease after its commit), so if the epoch has not moved by its answer, what was kept still
        holds. A lapse under load (a check's round trip longer than the lease) then costs each process
        one query, not one per request, and the database stays fast enough for the checks. A key not
        kept, or no such check under way: the database, at once."""
        hit = self.get(key)
        if hit is not None or not self.enabled:
            return hit
        kept = self._entries.get(key)
        if kept is None:
            return None
        arrived = time.monotonic()
        generation = self._generation
        pending = {task for started, registered, task in self._checks.values()
                   if started > arrived - self.lease_s
                   and (registered == float("-inf") or registered + REGISTRATION_VALID_S > arrived)}
        deadline = arrived + LAPSE_WAIT_MAX_S
        while pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            done, pending = await asyncio.wait(pending, timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                # Answered (applied, or a later check's answer already was), and the generation is the same:
                # no applied check has seen the epoch move.
                if not task.cancelled() and task.exception() is None and self._generation == generation:
                    self.hits += 1
                    return kept
        return None

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
    """Watch the current request for changes from here on (a fresh marker per request, whatever task
    aiohttp runs it in)."""
    marker = _Marker()
    _WATCHING.set(marker)
    return marker


async def wait_out(db: Db, own_s: float) -> None:
    """Wait until no process can still answer from before a change that has committed."""
    lease = await longest_lease(db, own_s)
    if lease > 0:
        await asyncio.sleep(lease)


async def settle(marker: _Marker, db: Db, own_s: float) -> None:
    """After a request changed lookups and committed: wait out every process's lease before answering."""
    if marker.changed:
        await wait_out(db, own_s)
