"""NATS JetStream: the connection, stream set-up and publish with Nats-Msg-Id.

Every name (subjects, stream, consumers, buckets) comes from shared/contract.py.
"""
from __future__ import annotations

import asyncio
import contextlib

import msgspec
import nats
from nats.js import JetStreamContext
from nats.js.api import RetentionPolicy, StreamConfig
from nats.js.errors import NotFoundError

from shared.codec import encode_json
from shared.contract import DUPLICATE_WINDOW_S, EVENTS_MAX_AGE_S, Subjects
from shared.logging import get_logger
from shared.metrics import BUS_PUBLISH_ERRORS, BUS_PUBLISHED

log = get_logger("bus")


def encode(message: msgspec.Struct) -> bytes:
    return encode_json(message)


def decode(data: bytes, kind: type[msgspec.Struct]) -> msgspec.Struct:
    return msgspec.json.decode(data, type=kind)


class Bus:
    def __init__(self, url: str, prefix: str, name: str = "meridian") -> None:
        self.url = url
        self.subjects = Subjects(prefix)
        self.name = name
        self.nc: nats.NATS | None = None
        self._js: JetStreamContext | None = None
        self._closing = False

    @property
    def js(self) -> JetStreamContext:
        """The JetStream context; there is one only after connect()."""
        if self._js is None:
            raise RuntimeError(f"bus {self.name} is not connected")
        return self._js

    async def connect(self) -> None:
        # allow_reconnect forever: a NATS outage must not kill the service; the outbox covers the gap.
        self.nc = await nats.connect(
            self.url,
            name=self.name,
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.5,
            connect_timeout=2,
            error_cb=self._on_error,
            disconnected_cb=self._on_disconnected,
            reconnected_cb=self._on_reconnected,
        )
        self._js = self.nc.jetstream(timeout=2)
        await self.ensure_streams()

    # One line per event instead of nats-py's tracebacks: an outage is expected and reported by health.
    async def _on_error(self, error: Exception) -> None:
        log.warning("bus error", connection=self.name, error=f"{type(error).__name__}: {error}")

    async def _on_disconnected(self) -> None:
        if not self._closing:  # nats-py reports its own close as a disconnect too
            log.warning("bus disconnected; reconnecting", connection=self.name)

    async def _on_reconnected(self) -> None:
        log.info("bus reconnected", connection=self.name)

    async def ensure_streams(self) -> None:
        config = StreamConfig(
            name=self.subjects.events_stream,
            subjects=[self.subjects.events_all],
            retention=RetentionPolicy.LIMITS,
            max_age=EVENTS_MAX_AGE_S,
            duplicate_window=DUPLICATE_WINDOW_S,
        )
        try:
            await self.js.stream_info(self.subjects.events_stream)
            await self.js.update_stream(config)
        except NotFoundError:
            await self.js.add_stream(config)

    @property
    def connected(self) -> bool:
        return self.nc is not None and self.nc.is_connected

    async def publish(self, subject: str, payload: bytes, msg_id: str, headers: dict[str, str] | None = None) -> None:
        kind = subject.split(".")[2] if subject.count(".") >= 2 else subject
        try:
            await self.js.publish(subject, payload, headers={"Nats-Msg-Id": msg_id, **(headers or {})})
        except Exception:
            BUS_PUBLISH_ERRORS.labels(kind).inc()
            raise
        BUS_PUBLISHED.labels(kind).inc()

    async def close(self) -> None:
        self._closing = True
        if self.nc is not None:
            # Flush what was published, then close; a server that is gone must not hang shutdown.
            with contextlib.suppress(Exception):
                if self.nc.is_connected:
                    await self.nc.flush(timeout=2)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.nc.close(), 3)
            self.nc = None
