"""Messages on the bus, as msgspec Structs (JSON on the wire so NATS dashboards can read them).

Domain events are written by shared/registry in the transaction of the change they describe (the
outbox) and published after commit; shared/contract.py names their subjects. Commands are NATS
request/reply with the blobstores. New fields get defaults, so an older reader keeps decoding.
"""
from __future__ import annotations

import msgspec


class Actor(msgspec.Struct, kw_only=True, omit_defaults=True, frozen=True):
    """Who made a change: a user, a robot (`org+name`), an anonymous client, or the registry itself
    (gc, replication, an operator's CLI command)."""

    kind: str  # user | robot | anonymous | system
    name: str | None = None
    id: int | None = None


ANONYMOUS = Actor(kind="anonymous")
SYSTEM = Actor(kind="system", name="meridian")


class BlobWritten(msgspec.Struct, kw_only=True):
    """A blob's bytes were committed at `location` by a push; replicators copy it to their own."""

    digest: str
    size: int
    location: str
    region: str
    repository: str
    namespace: str
    committed_at: float


class BlobPlaced(msgspec.Struct, kw_only=True):
    """A replicator copied a blob into `location` (and verified it)."""

    digest: str
    size: int
    location: str
    source: str
    region: str
    placed_at: float


class BlobMissingCopy(msgspec.Struct, kw_only=True):
    """A copy that must exist and does not (found by the reconciler or `backfill-replication`): the
    replicator of `target` copies it from wherever it is."""

    digest: str
    size: int
    target: str
    namespace: str
    queued_at: float
    reason: str = "reconcile"


class ManifestPushed(msgspec.Struct, kw_only=True):
    """A manifest was stored (by digest or with tags). What a push webhook needs is here."""

    repository: str
    digest: str
    media_type: str
    tags: list[str] = []
    region: str
    pushed_at: float
    namespace: str = ""
    size: int = 0  # the manifest and every blob it references (a whole image's size)
    artifact_type: str | None = None
    subject: str | None = None
    pusher: Actor = ANONYMOUS


class ManifestDeleted(msgspec.Struct, kw_only=True):
    repository: str
    digest: str
    tags: list[str] = []  # tags that pointed at it and ended with it
    region: str
    deleted_at: float
    actor: Actor = SYSTEM
    reason: str = "deleted"  # deleted | collected (gc)


class TagChanged(msgspec.Struct, kw_only=True):
    """A tag now points at `digest` (created, moved or restored)."""

    repository: str
    tag: str
    digest: str | None  # None only in events written before tag.deleted existed
    region: str
    changed_at: float
    previous: str | None = None
    kind: str = "set"  # created | moved | restored
    actor: Actor = ANONYMOUS


class TagDeleted(msgspec.Struct, kw_only=True):
    repository: str
    tag: str
    digest: str
    region: str
    deleted_at: float
    reason: str = "deleted"  # deleted | expired | manifest_deleted
    actor: Actor = ANONYMOUS


class RepositoryChanged(msgspec.Struct, kw_only=True):
    repository: str
    namespace: str
    region: str
    at: float
    visibility: str | None = None
    state: str | None = None
    actor: Actor = ANONYMOUS


class QuotaCrossed(msgspec.Struct, kw_only=True):
    """A namespace's usage crossed a Warning limit upwards (kind "warning"), or a change that would
    have taken it over its Reject limit was refused (kind "error"; once until usage changes again)."""

    namespace: str
    kind: str  # warning | error
    usage_bytes: int
    limit_bytes: int  # the quota (100 %); the system default reject size when no quota is set
    threshold_percent: int
    region: str
    at: float
    repository: str | None = None  # the repository whose change crossed or was refused
    adding_bytes: int = 0  # error: what the refused change would have added
    actor: Actor = ANONYMOUS


class NotificationRequested(msgspec.Struct, kw_only=True):
    """Deliver `event_data` to one notification: a test (sample data) or tags about to expire."""

    notification: str  # uuid
    event: str
    event_data: dict
    region: str
    at: float
    test: bool = False


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
