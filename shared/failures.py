"""Which exceptions mean "a dependency is down" (answer 503 + Retry-After) rather than a bug (500).

Read and written in one place so /v2, /api/v1 and the blobstore agree."""
from __future__ import annotations

import asyncio

import asyncpg

# asyncpg raises these when the server is gone, refuses connections, or a connection broke mid-query.
_DATABASE = (
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,  # a connection that broke in the middle of an operation
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
)


def dependency_down(exc: BaseException) -> str | None:
    """'the database' or 'storage' when `exc` says that dependency is unreachable, else None."""
    from shared.locations import LocationUnavailable
    from shared.storage.base import StorageError

    if isinstance(exc, _DATABASE):
        return "the database"
    if isinstance(exc, (LocationUnavailable, StorageError)):
        return "storage"
    name = type(exc).__module__
    if name.startswith(("botocore", "aiobotocore", "aiohttp.client")):
        return "storage"
    if isinstance(exc, (ConnectionError, asyncio.TimeoutError, TimeoutError)) or (
            isinstance(exc, OSError) and exc.errno is not None):
        # A refused or reset connection, or a timeout, reaching either of them.
        return "the database" if _from_asyncpg(exc) else "storage"
    return None


def _from_asyncpg(exc: BaseException) -> bool:
    tb = exc.__traceback__
    while tb is not None:
        if "asyncpg" in tb.tb_frame.f_code.co_filename:
            return True
        tb = tb.tb_next
    return False
