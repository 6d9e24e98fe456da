"""Messages on the bus, as msgspec Structs (JSON on the wire so NATS dashboards can read them)."""
from __future__ import annotations

import msgspec


class BlobWritten(msgspec.Struct, kw_only=True):
    """A blob's bytes were committed at `location`; replicators copy it to their own."""

    digest: str
    size: int
    location: str
    region: str
    repository: str
    namespace: str
    committed_at: float


class ManifestPushed(msgspec.Struct, kw_only=True):
    repository: str
    digest: str
    media_type: str
    tags: list[str] = []
    region: str
    pushed_at: float


class TagChanged(msgspec.Struct, kw_only=True):
    repository: str
    tag: str
    digest: str | None  # None when the tag was deleted
    region: str
    changed_at: float


class BlobCommand(msgspec.Struct, kw_only=True):
    """Request on `<prefix>.blobstore.<location>.<stat|delete|verify>`."""

    digest: str


class BlobCommandReply(msgspec.Struct, kw_only=True):
    ok: bool
    exists: bool = False
    size: int | None = None
    valid: bool | None = None  # verify: the bytes hash to the digest
    error: str | None = None


class CleanCommand(msgspec.Struct, kw_only=True):
    """Request on `<prefix>.blobstore.<location>.clean`: remove these upload sessions' chunks and
    leftovers of interrupted writes (temporary files, S3 multipart uploads) older than `older_than` s."""

    older_than: float
    upload_ids: list[str] = msgspec.field(default_factory=list)


class CleanReply(msgspec.Struct, kw_only=True):
    ok: bool
    removed: int = 0
    error: str | None = None
