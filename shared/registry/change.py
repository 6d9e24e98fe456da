"""The unit of work: one database transaction of domain operations and the events they wrote.

    async with registry.change(actor) as change:      # BEGIN
        await blobs.commit(change, ...)                 # rows + outbox rows, same transaction
        await manifests.put(change, ...)
                                                        # COMMIT, then the events are published
Every operation of shared/registry that changes something takes a Change: it runs in the caller's
transaction and writes its own events to the outbox (shared/outbox.py). After commit the Registry
hands them to the relay, which publishes them at once; rows it could not publish (NATS down, the
process died) are republished by the relay loop of any process. A change that raises is rolled back
with its events: nothing half-written, nothing announced that did not happen.
"""
from __future__ import annotations

import functools
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg
import msgspec

from shared import outbox
from shared.contract import Subjects
from shared.logging import get_logger
from shared.messages import ANONYMOUS, SYSTEM, Actor
from shared.model import Conn
from shared.model.accounts import Principal
from shared.outbox import OutboxEntry, OutboxRelay

from . import lookups

log = get_logger(__name__)


@dataclass(frozen=True)
class QuotaPolicy:
    """The quota rules the changes of a process enforce (quota.py keeps usage whatever they are):
    FEATURE_QUOTA_MANAGEMENT, and DEFAULT_SYSTEM_REJECT_QUOTA_BYTES for namespaces without a quota."""

    enforce: bool = False
    default_reject_bytes: int = 0


def actor_for(principal: Principal | None) -> Actor:
    """The Actor of events caused by a signed-in user or robot, or by an anonymous client."""
    if principal is None:
        return ANONYMOUS
    return Actor(kind=principal.kind, name=principal.username, id=principal.id)


class Change:
    """What a domain operation needs: the transaction's connection, who acts, where, and the bus names."""

    def __init__(self, conn: Conn, subjects: Subjects, region: str, actor: Actor,
                 quota_policy: QuotaPolicy = QuotaPolicy()) -> None:
        self.conn = conn
        self.subjects = subjects
        self.region = region
        self.actor = actor
        self.at = time.time()
        self.events: list[OutboxEntry] = []
        self.quota_policy = quota_policy
        self.quota: dict[int, Any] = {}  # namespace id -> its locked usage (quota.py)
        self.held = False  # its events wait out a lookup lease (set by before_commit)

    async def emit(self, subject: str, message: msgspec.Struct, msg_id: str | None = None) -> None:
        entry = await outbox.add(self.conn, subject, message, msg_id)
        if entry is not None:
            self.events.append(entry)

    async def emit_many(self, subject: str, messages: list[msgspec.Struct]) -> None:
        self.events += await outbox.add_many(self.conn, subject, messages)

    async def before_commit(self) -> None:
        # Decided once: the same answer dates the outbox rows and makes the publish wait after commit.
        self.held = lookups.changed_here()
        if self.held:  # its events wait out a lookup lease after commit: so must the relay
            # A margin for the commit itself (its deferred triggers may queue on the epoch row).
            await outbox.hold(self.conn, self.events, lookups.MAX_LEASE_S + 60)


class Registry:
    """One per process: where changes run (the pool) and where their events go after commit."""

    def __init__(self, pool: asyncpg.Pool, subjects: Subjects, region: str, relay: OutboxRelay | None = None,
                 quota_policy: QuotaPolicy = QuotaPolicy(), lookup_lease_s: float = 0.0) -> None:
        self.pool = pool
        self.subjects = subjects
        self.region = region
        self.relay = relay
        self.quota_policy = quota_policy
        # A change that moved a tag announces it only once no gateway can still answer from before it
        # (shared/registry/lookups.py): a webhook consumer that pulls on tag.changed gets the new manifest.
        self.lookup_lease_s = lookup_lease_s

    @asynccontextmanager
    async def change(self, actor: Actor = SYSTEM, *, conn: asyncpg.Connection | None = None,
                     publish: bool = True) -> AsyncIterator[Change]:
        """A transaction (a savepoint when `conn` is already in one, as in gc's dry run, whose outer
        transaction is rolled back: then `publish=False`).

        An exception with an `after_rollback(registry)` coroutine (a refused quota) gets to record
        what must outlive the rolled-back change, in a change of its own, before it propagates."""
        try:
            if conn is not None:
                async with conn.transaction():
                    change = Change(conn, self.subjects, self.region, actor, self.quota_policy)
                    yield change
                    await change.before_commit()
            else:
                async with self.pool.acquire() as own:
                    async with own.transaction():
                        change = Change(own, self.subjects, self.region, actor, self.quota_policy)
                        yield change
                        await change.before_commit()
        except Exception as exc:
            hook = getattr(exc, "after_rollback", None)
            if hook is not None and publish and conn is None:
                try:
                    await hook(self)
                except Exception as failure:  # the refusal stands; only its announcement is lost
                    log.warning("recording after a rolled-back change failed", error=f"{type(failure).__name__}: {failure}")
            raise
        if publish and self.relay is not None:
            wait = functools.partial(lookups.wait_out, self.pool, self.lookup_lease_s) if change.held else None
            self.relay.publish_soon(change.events, after=wait)
