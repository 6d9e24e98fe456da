"""The key this gateway process signs registry tokens with.

Normal mode: a fresh RSA key per process, registered (approved automatically) with an expiry of
INSTANCE_SERVICE_KEY_EXPIRATION minutes and replaced every INSTANCE_SERVICE_KEY_REFRESH minutes; the old
one stays valid until it expires, so tokens it signed keep working. Read-only mode: nothing may be
written, so the operator's pre-registered key is loaded from INSTANCE_SERVICE_KEY_LOCATION /
INSTANCE_SERVICE_KEY_KID_LOCATION, and a missing, unapproved or expired key stops the start.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import os
import socket
from pathlib import Path

import asyncpg

from shared.config import Config
from shared.logging import get_logger
from shared.servicekeys import ServiceKeyError, SigningKey, delete_long_expired_automatic, load_key_files, register, usable_problem, utcnow

log = get_logger("gateway.keys")


class InstanceKeys:
    def __init__(self, config: Config, pool: asyncpg.Pool, config_dir: Path | None) -> None:
        self.config = config
        self.pool = pool
        self.config_dir = config_dir or Path.cwd()
        self.current: SigningKey | None = None
        self._task: asyncio.Task | None = None

    def signing_key(self) -> SigningKey:
        """The key this instance signs with now; there is one once start() returned."""
        if self.current is None:
            raise RuntimeError("no service key yet: start() first")
        return self.current

    def _path(self, value: str) -> Path:
        path = Path(value)
        return path if path.is_absolute() else self.config_dir / path

    async def start(self) -> None:
        if self.config.registry_state == "readonly":
            pem = self._path(self.config.instance_service_key_location)
            kid = self._path(self.config.instance_service_key_kid_location)
            try:
                key = load_key_files(pem, kid)
            except ServiceKeyError as exc:
                raise ServiceKeyError(
                    f"read-only mode needs a pre-provisioned service key: {exc}. Run `meridian keys generate quay` "
                    f"and `meridian keys add quay.jwk --expiration DAYS` while the registry is writable, then set "
                    f"INSTANCE_SERVICE_KEY_LOCATION and INSTANCE_SERVICE_KEY_KID_LOCATION to the files"
                ) from None
            problem = await usable_problem(self.pool, key.kid)
            if problem:
                raise ServiceKeyError(f"read-only mode cannot start: {problem}")
            self.current = key
            log.info("signing with pre-provisioned service key", kid=key.kid)
            return
        await self.rotate()
        self._task = asyncio.get_running_loop().create_task(self._rotate_forever())

    async def rotate(self) -> None:
        key = await asyncio.to_thread(SigningKey.generate)
        expires = utcnow() + dt.timedelta(minutes=self.config.instance_service_key_expiration)
        await register(
            self.pool, kid=key.kid, name=f"{self.config.meridian_region} gateway {socket.gethostname()}:{os.getpid()}",
            service=self.config.instance_service_key_service, jwk=key.jwk, expires_at=expires,
            approval_type="automatic", metadata={"region": self.config.meridian_region, "rotation": True},
        )
        await delete_long_expired_automatic(self.pool)
        self.current = key

    async def _rotate_forever(self) -> None:
        while True:
            await asyncio.sleep(self.config.instance_service_key_refresh * 60)
            try:
                await self.rotate()
            except Exception:
                log.exception("service key rotation failed; the current key stays until it expires")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
