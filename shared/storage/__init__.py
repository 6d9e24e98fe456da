"""Storage drivers behind one small protocol (see base.StorageDriver), one per kind of store:
LocalStorage, the S3 family of Quay's drivers (s3.S3Driver) and AzureStorage (azure.AzureDriver)."""
from __future__ import annotations

import asyncio

from shared.config import AzureStorageParams, LocalStorageParams, StorageLocation, scrub

from .base import StorageDriver, StorageError
from .local import LocalDriver
from .s3 import S3Driver


def open_driver(location: StorageLocation) -> StorageDriver:
    params = location.params
    missing = params.missing()
    if missing:
        raise StorageError(f"location {location.name}: {location.driver} lacks {', '.join(missing)}")
    if isinstance(params, LocalStorageParams) and params.storage_path:  # missing() made sure of the path
        return LocalDriver(location.name, params.storage_path)
    if isinstance(params, AzureStorageParams):
        from .azure import AzureDriver  # the Azure SDK loads only where a config uses it

        return AzureDriver(location.name, params)
    if hasattr(params, "s3"):
        return S3Driver(location.name, params.s3())
    raise StorageError(f"no driver for {location.driver}")


async def prepare_location(driver: StorageDriver, log, timeout: float = 10.0) -> bool | None:
    """At the start of the service that owns a location: create its bucket, container or folder when
    missing. A store that does not answer is logged, not fatal (the service's health checks report
    it); returns whether one was created, None when it could not be checked."""
    try:
        created = await asyncio.wait_for(driver.prepare(), timeout)
    except Exception as exc:  # noqa: BLE001 - any failure of a store is reported the same way
        log.warning("storage location not prepared", location=driver.name,
                    error=scrub(f"{type(exc).__name__}: {exc}"))
        return None
    if created:
        log.info("storage location created", location=driver.name)
    return created


__all__ = ["StorageDriver", "StorageError", "LocalDriver", "S3Driver", "open_driver", "prepare_location"]
