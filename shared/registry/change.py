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

import time
from contextlib import asynccontextmanager
from typing import AsyncIterator

import asyncpg
import msgspec

from shared import outbox
from shared.contract import Subjects
from shared.messages import ANONYMOUS, SYSTEM, Actor
from shared.model.accounts import Principal
from shared.outbox import OutboxEntry, OutboxRelay


def actor_for(principal: Principal | None) -> Actor:
    """The Actor of events caused by a signed-in user or robot, or by an anonymous client."""
    if principal is None:
        return ANONYMOUS
    return Actor(kind=principal.kind, name=principal.username, id=principal.id)


class Change:
    """What a domain operation needs: the transaction's connection, who acts, where, and the bus names."""

    def __init__(self, conn: asyncpg.Connection, subjects: Subjects, region: str, actor: Actor) -> None:
        self.conn = conn
        self.subjects = subjects
        self.region = region
        self.actor = actor
        self.at = time.time()
        self.events: list[OutboxEntry] = []

    async def emit(self, subject: str, message: msgspec.Struct, msg_id: str | None = None) -> None:
        entry = await outbox.add(self.conn, subject, message, msg_id)
        if entry is not None:
            self.events.append(entry)

    async def emit_many(self, subject: str, messages: list[msgspec.Struct]) -> None:
        self.events += await outbox.add_many(self.conn, subject, messages)


class Registry:
    """One per process: where changes run (the pool) and where their events go after commit."""

    def __init__(self, pool: asyncpg.Pool, subjects: Subjects, region: str, relay: OutboxRelay | None = None) -> None:
        self.pool = pool
        self.subjects = subjects
        self.region = region
        self.relay = relay

    @asynccontextmanager
    async def change(self, actor: Actor = SYSTEM, *, conn: asyncpg.Connection | None = None,
                     publish: bool = True) -> AsyncIterator[Change]:
        """A transaction (a savepoint when `conn` is already in one, as in gc's dry run, whose outer
        transaction is rolled back: then `publish=False`)."""
        if conn is not None:
            async with conn.transaction():
                change = Change(conn, self.subjects, self.region, actor)
                yield change
        else:
            async with self.pool.acquire() as own:
                async with own.transaction():
                    change = Change(own, self.subjects, self.region, actor)
                    yield change
        if publish and self.relay is not None:
            self.relay.publish_soon(change.events)
