"""Usage logs: who did what, where, from which address, when.

API changes write their log row in the same transaction as the change (`record`), so a refused or
failed change leaves no log and a done change always has one. Registry traffic (pushes, pulls,
token issues) goes through `AuditBuffer`, which batches rows so a pull costs no extra round trip;
it flushes ten times a second and at shutdown.
"""
from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from shared.logging import get_logger
from shared.model import Db
from shared.model.access import readable_sql
from shared.model.accounts import Principal
from shared.tasks import read_outcome

log = get_logger("audit")

# Ids left out are filled from the names, so registry paths can log by name without a lookup.
_INSERT = """
INSERT INTO audit_logs (kind, namespace_id, namespace, repository_id, repository, performer_id, performer, ip, metadata, datetime)
SELECT $1, coalesce($2, r.namespace_id, n.id), $3, coalesce($4, r.id), $5, $6, $7, $8, $9::jsonb, coalesce($10, clock_timestamp())
FROM (SELECT 1) AS one
LEFT JOIN repositories r ON $4::bigint IS NULL AND r.full_name = $5 AND r.state <> 'deleted'
LEFT JOIN namespaces n ON $2::bigint IS NULL AND n.name = $3 AND n.deleted_at IS NULL
"""


_COPY_COLUMNS = ["kind", "namespace_id", "namespace", "repository_id", "repository", "performer_id", "performer", "ip",
                 "metadata", "datetime"]


@dataclass
class Entry:
    kind: str
    namespace_id: int | None = None
    namespace: str | None = None
    repository_id: int | None = None
    repository: str | None = None
    performer: Principal | None = None
    ip: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    at: dt.datetime | None = None

    @property
    def ids_known(self) -> bool:
        return self.repository_id is not None or self.repository is None

    def args(self) -> tuple:
        if self.repository and not self.namespace:
            self.namespace = self.repository.split("/", 1)[0]
        return (
            self.kind, self.namespace_id, self.namespace, self.repository_id, self.repository,
            self.performer.id if self.performer else None, self.performer.username if self.performer else None,
            self.ip, _metadata_json(self.metadata), self.at,
        )


# One encoder for every row: json.dumps(..., default=str) builds a new one per call (a third of its cost).
_METADATA_ENCODER = json.JSONEncoder(default=str)


def _metadata_json(metadata: dict[str, Any]) -> str:
    encoded = _METADATA_ENCODER.encode(metadata)
    # ensure_ascii writes NUL as \u0000 and a lone surrogate as a lone \udXXX escape; only then is the
    # slower cleaning pass needed (a valid pair of surrogate escapes is cleaned to itself).
    if "\\u0000" in encoded or "\\ud" in encoded:
        return _METADATA_ENCODER.encode(_storable(metadata))
    return encoded


def _storable(value: Any) -> Any:
    """Metadata PostgreSQL's jsonb takes: it refuses NUL (\u0000) and lone surrogates, which a
    client can put in a header or a name; one such string must not lose the whole flushed batch."""
    if isinstance(value, str):
        return value.replace("\x00", "\\x00").encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, dict):
        return {_storable(k) if isinstance(k, str) else k: _storable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_storable(v) for v in value]
    return value


async def record(conn: Db, entry: Entry) -> None:
    await conn.execute(_INSERT, *entry.args())


# While the database is away, the newest rows are kept up to this many (a few MB), the older dropped.
MAX_HELD_ROWS = 20_000
FLUSH_RETRY_MAX_SEC = 5.0


class AuditBuffer:
    """Rows are written often and in small transactions: preparing and encoding a batch holds the event
    loop (about 4 µs a row), and requests waiting behind a 1,000-row batch landed in the manifest GET
    tail. Every 0.1 s what has gathered is written, at most 200 rows to a transaction."""

    def __init__(self, pool: asyncpg.Pool, flush_every: float = 0.1, max_rows: int = 200, *, enabled: bool = True) -> None:
        self.pool = pool
        self.enabled = enabled  # read-only mode writes nothing, usage logs included
        self.flush_every = flush_every
        self.max_rows = max_rows
        self._rows: list[Entry] = []
        self._task: asyncio.Task | None = None
        # One flush at a time: a caller's flush() must not return while the timer's flush still holds
        # a batch in flight (it would see an empty buffer and report rows as written that are not yet).
        self._flushing = asyncio.Lock()

    def add(self, entry: Entry) -> None:
        if not self.enabled:
            return
        if entry.at is None:
            entry.at = dt.datetime.now(dt.UTC)
        # Entries that know their ids go in by COPY (pulls, pushes: the bulk); the rest by INSERT,
        # which fills the ids from the names. Either way the JSON is encoded at flush, not per request.
        self._rows.append(entry)
        if len(self._rows) > MAX_HELD_ROWS:  # the database is away: keep memory bounded
            dropped = len(self._rows) - MAX_HELD_ROWS
            del self._rows[:dropped]
            log.warning("usage log rows dropped; database unreachable", dropped=dropped)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        wait = self.flush_every
        while True:
            await asyncio.sleep(wait)
            try:
                # Shielded: stop() cancels this loop, and a batch cut off mid-write would be neither
                # written nor put back. stop()'s own flush waits for this one (the lock), then writes the rest.
                flush = asyncio.ensure_future(self.flush())
                # Read even when this loop was cancelled first: stop() reports what was lost itself.
                flush.add_done_callback(read_outcome)
                await asyncio.shield(flush)
                wait = self.flush_every
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # While the database is away: retries back off to every few seconds, with one line each
                # and the traceback only for the first failure of a run of them.
                first = wait == self.flush_every
                wait = min(wait * 2, FLUSH_RETRY_MAX_SEC)
                if first:
                    log.exception("usage log flush failed; will retry", retry_in_s=wait)
                else:
                    log.warning("usage log flush failed again; will retry", error=f"{type(exc).__name__}: {exc}",
                                retry_in_s=wait, held_rows=len(self._rows))

    async def flush(self) -> None:
        async with self._flushing:
            await self._flush_all()

    async def _flush_all(self) -> None:
        while self._rows:
            batch, self._rows = self._rows[: self.max_rows], self._rows[self.max_rows:]
            known = [e.args() for e in batch if e.ids_known]
            named = [e.args() for e in batch if not e.ids_known]
            try:
                async with self.pool.acquire() as conn:
                    if known and named:
                        async with conn.transaction():
                            await conn.copy_records_to_table("audit_logs", columns=_COPY_COLUMNS, records=known)
                            await conn.executemany(_INSERT, named)
                    # One statement is all or nothing by itself (asyncpg's executemany too): BEGIN and
                    # COMMIT were two more round trips, about 4 % of a manifest GET's CPU in the gateway.
                    elif known:
                        await conn.copy_records_to_table("audit_logs", columns=_COPY_COLUMNS, records=known)
                    else:
                        await conn.executemany(_INSERT, named)
            except Exception:
                self._rows[:0] = batch
                raise

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
        try:
            await self.flush()
        except Exception:
            log.exception("usage log rows lost at shutdown", rows=len(self._rows))


SCOPE_COLUMNS = {"organization": "namespace_id", "repository": "repository_id", "user": "performer_id"}


def encode_cursor(at: dt.datetime, row_id: int) -> str:
    return base64.urlsafe_b64encode(f"{at.isoformat()}|{row_id}".encode()).decode()


def decode_cursor(token: str) -> tuple[dt.datetime, int] | None:
    try:
        at, row_id = base64.urlsafe_b64decode(token.encode()).decode().split("|")
        moment, ident = dt.datetime.fromisoformat(at), int(row_id)
    except (ValueError, UnicodeDecodeError):
        return None
    if not 0 <= ident < 2**63 or "\x00" in at:
        return None
    return moment, ident


def row_view(row: asyncpg.Record) -> dict[str, Any]:
    """A row of `query` as the API and export files show it."""
    metadata = json.loads(row["metadata"]) if isinstance(row["metadata"], str) else row["metadata"]
    return {"kind": row["kind"], "metadata": metadata, "ip": row["ip"],
            "datetime": row["datetime"].isoformat() if row["datetime"] is not None else None,
            "namespace": row["namespace"], "repository": row["repository"],
            **({"performer": {"name": row["performer"]}} if row["performer"] else {})}


def _visible_sql(reader_param: str) -> str:
    """WHERE condition on an audit_logs row: it names no repository, or one that exists now and that the
    user `reader_param` may read now. One correlated lookup in the same query, no round trip per row."""
    return f"""(
        (audit_logs.repository_id IS NULL AND audit_logs.repository IS NULL)
        OR EXISTS (SELECT 1 FROM repositories r JOIN namespaces n ON n.id = r.namespace_id
                    WHERE r.id = audit_logs.repository_id AND r.state <> 'deleted' AND n.deleted_at IS NULL
                      AND {readable_sql(reader_param, 'false')}))"""


async def query(conn: Db, scope: str, scope_id: int, start: dt.datetime, end: dt.datetime, *,
                performer: str | None = None, cursor: tuple[dt.datetime, int] | None = None, limit: int = 100,
                kind: str | None = None, visible_to: int | None = None):
    """Rows with start <= datetime < end, newest first, after `cursor`; of one kind when given. With
    `visible_to` (a user id), only rows naming no repository or one that user may read now."""
    column = SCOPE_COLUMNS[scope]
    visible = f"AND {_visible_sql('$9::bigint')}" if visible_to is not None else "AND $9::bigint IS NULL"
    return await conn.fetch(
        f"""
        SELECT id, kind, namespace, repository, performer, ip, metadata, datetime FROM audit_logs
        WHERE {column} = $1 AND datetime >= $2 AND datetime < $3
          AND ($4::text IS NULL OR performer = $4)
          AND ($5::timestamptz IS NULL OR (datetime, id) < ($5, $6))
          AND ($8::text IS NULL OR kind = $8)
          {visible}
        ORDER BY datetime DESC, id DESC LIMIT $7
        """,
        scope_id, start, end, performer, cursor[0] if cursor else None, cursor[1] if cursor else 0, limit, kind, visible_to,
    )


async def aggregate(conn: Db, scope: str, scope_id: int, start: dt.datetime, end: dt.datetime, *, performer: str | None = None,
                    kind: str | None = None, visible_to: int | None = None):
    """Counts per kind per UTC day of the rows `query` returns with the same arguments."""
    column = SCOPE_COLUMNS[scope]
    visible = f"AND {_visible_sql('$6::bigint')}" if visible_to is not None else "AND $6::bigint IS NULL"
    return await conn.fetch(
        f"""
        SELECT kind, date_trunc('day', datetime AT TIME ZONE 'UTC') AS day, count(*) AS count FROM audit_logs
        WHERE {column} = $1 AND datetime >= $2 AND datetime < $3 AND ($4::text IS NULL OR performer = $4)
          AND ($5::text IS NULL OR kind = $5)
          {visible}
        GROUP BY kind, day ORDER BY day, kind
        """,
        scope_id, start, end, performer, kind, visible_to,
    )
