"""Storage drivers behind one small protocol (see base.StorageDriver)."""
from __future__ import annotations

from shared.config import LocalStorageParams, S3StorageParams, StorageLocation

from .base import StorageDriver, StorageError
from .local import LocalDriver
from .s3 import S3Driver


def open_driver(location: StorageLocation) -> StorageDriver:
    if isinstance(location.params, LocalStorageParams):
        return LocalDriver(location.name, location.params.storage_path)
    if isinstance(location.params, S3StorageParams):
        return S3Driver(location.name, location.params)
    raise StorageError(f"no driver for {location.driver}")


__all__ = ["StorageDriver", "StorageError", "LocalDriver", "S3Driver", "open_driver"]
