"""Locks in a JetStream key-value bucket, for actors that may run anywhere (gc).

Acquire = create-if-absent; the bucket's TTL ends a lock whose holder died; the holder renews by
updating with the revision it last wrote, so a lock that expired and was taken by someone else can
never be renewed by its old holder: `lost` turns true and the work in hand must be abandoned.
"""
from __future__ import annotations

import asyncio
import contextlib
import os
import socket

from nats.js.api import KeyValueConfig
from nats.js.errors import BucketNotFoundError, KeyNotFoundError, KeyWrongLastSequenceError, NotFoundError
from nats.js.kv import KeyValue

from shared.logging import get_logger

log = get_logger("locks")


class LockLost(Exception):
    pass


def owner_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class Lock:
    def __init__(self, kv, key: str, owner: str, revision: int, ttl: float) -> None:
        self.kv, self.key, self.owner, self.revision, self.ttl = kv, key, owner, revision, ttl
        self.lost = False
        self._task = asyncio.get_running_loop().create_task(self._renew_forever())

    async def _renew_forever(self) -> None:
        while not self.lost:
            await asyncio.sleep(self.ttl / 3)
            await self.renew()

    async def renew(self) -> None:
        try:
            self.revision = await self.kv.update(self.key, self.owner.encode(), last=self.revision)
        except Exception as exc:  # wrong revision (taken over) or the bus is away longer than the TTL allows
            if not self.lost:
                log.warning("lock lost", key=self.key, error=type(exc).__name__)
            self.lost = True

    def check(self) -> None:
        if self.lost:
            raise LockLost(self.key)

    async def release(self) -> None:
        self._task.cancel()
        if self.lost:
            return
        with contextlib.suppress(Exception):  # it expires by itself
            await self.kv.delete(self.key, last=self.revision)


class KVLocks:
    def __init__(self, js, bucket: str, ttl: float) -> None:
        self.js, self.bucket, self.ttl = js, bucket, ttl
        self.kv: KeyValue | None = None

    def _bucket(self) -> KeyValue:
        if self.kv is None:
            raise RuntimeError(f"locks bucket {self.bucket} is not open")
        return self.kv

    async def open(self) -> None:
        try:
            self.kv = await self.js.key_value(self.bucket)
        except (BucketNotFoundError, NotFoundError):
            self.kv = await self.js.create_key_value(KeyValueConfig(bucket=self.bucket, ttl=self.ttl, history=1))

    async def acquire(self, name: str, owner: str | None = None) -> Lock | None:
        """The lock, or None when someone else holds it."""
        owner = owner or owner_id()
        try:
            revision = await self._bucket().create(name, owner.encode())
        except KeyWrongLastSequenceError:
            return None
        return Lock(self.kv, name, owner, revision, self.ttl)

    async def holder(self, name: str) -> str | None:
        try:
            entry = await self._bucket().get(name)
        except KeyNotFoundError:
            return None
        return entry.value.decode() if entry.value else None
