"""Heartbeats: every service of every region says it is alive, every few seconds, in the JetStream KV
bucket `<prefix>_heartbeats` (key `<region>.<service>.<instance>`). The health checks read them: a
service is up when one of its instances beat within HEARTBEAT_STALE_AFTER intervals; an instance
silent for a day is forgotten."""
from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time

import msgspec
from nats.js.api import KeyValueConfig
from nats.js.errors import BucketNotFoundError, NotFoundError
from nats.js.kv import KeyValue

from shared.logging import get_logger
from shared.tasks import cancel_and_wait

log = get_logger("heartbeats")
STALE_AFTER = 3  # intervals
FORGET_AFTER = 24 * 3600.0


class Beat(msgspec.Struct, kw_only=True):
    service: str
    region: str
    instance: str
    at: float
    interval: float


def _key_part(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in text)


async def open_bucket(bus):
    name = bus.subjects.heartbeats_bucket
    try:
        return await bus.js.key_value(name)
    except (BucketNotFoundError, NotFoundError):
        return await bus.js.create_key_value(KeyValueConfig(bucket=name, history=1, ttl=FORGET_AFTER))


class Heartbeat:
    def __init__(self, bus, service: str, region: str, interval: float) -> None:
        self.bus, self.service, self.region, self.interval = bus, service, region, interval
        self.instance = f"{socket.gethostname()}-{os.getpid()}-{id(self) & 0xffff:x}"
        self.key = f"{_key_part(region)}.{_key_part(service)}.{_key_part(self.instance)}"
        self._task: asyncio.Task | None = None
        self.kv: KeyValue | None = None

    async def start(self) -> None:
        # the first beat before serving, so a probe right after start sees this service
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.beat(), timeout=2)
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def beat(self) -> None:
        if self.kv is None:
            self.kv = await open_bucket(self.bus)
        beat = Beat(service=self.service, region=self.region, instance=self.instance, at=time.time(), interval=self.interval)
        await self.kv.put(self.key, msgspec.json.encode(beat))

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await asyncio.wait_for(self.beat(), timeout=max(self.interval, 1.0))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the bus is away: the health checks will notice the silence
                log.debug("heartbeat not sent", service=self.service, error=type(exc).__name__)

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)  # ended first: a beat after the delete would undo it
        try:
            if self.kv is not None:
                await asyncio.wait_for(self.kv.delete(self.key), 1)  # a clean stop is not a failure
        except Exception:
            pass


async def read_all(bus) -> list[Beat]:
    kv = await open_bucket(bus)
    try:
        keys = await kv.keys()
    except Exception:  # nats-py raises NoKeysError for an empty bucket
        return []
    beats = []
    for key in keys:
        try:
            entry = await kv.get(key)
            beats.append(msgspec.json.decode(entry.value, type=Beat))
        except Exception:
            continue
    return beats


def alive(beats: list[Beat], now: float | None = None) -> dict[tuple[str, str], bool]:
    """(region, service) -> whether some instance beat recently."""
    now = now or time.time()
    state: dict[tuple[str, str], bool] = {}
    for beat in beats:
        fresh = now - beat.at <= STALE_AFTER * beat.interval + 1
        state[(beat.region, beat.service)] = state.get((beat.region, beat.service), False) or fresh
    return state
