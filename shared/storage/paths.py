"""The storage layout of a location, drawn once. Every key a service reads or writes is built here.

A location's root is a folder (LocalStorage `storage_path`) or a bucket plus a key prefix (the S3
family's `storage_path`). Below it:

    <root>/
    ├── sha256/<2 hex>/<64 hex>             content-addressed blob bytes: written once, atomically, at
    │                                        the end of a verified push or replication copy; never
    ├── sha512/<2 hex>/<128 hex>             changed; deleted only by gc under the digest's lock
    ├── uploads/<upload uuid>/               one folder per upload session (POST .. PUT):
    │   └── <offset, 16 digits>-<nonce>      one object per PATCH (or final PUT body), in offset order;
    │                                        the folder goes when the upload completes or is cancelled,
    │                                        and gc removes the folders of abandoned sessions
    ├── exportedlogs/<export uuid>.json      usage-log exports, served back to whoever asked
    ├── health/_verify-<uuid>                health probes: written, read back and deleted at once
    └── .tmp/<random>                        LocalStorage only: partial writes before their rename
                                             (S3: unfinished multipart uploads play this part)

Quay and Distribution lay content addresses out the same way, so a location can be read by tools
that know either.
"""
from __future__ import annotations

import re
import uuid

UPLOADS = "uploads"
EXPORTS = "exportedlogs"
HEALTH = "health"


def blob(digest: str) -> str:
    """Content address: `sha256/ab/abcd...`."""
    algorithm, hexpart = digest.split(":", 1)
    return f"{algorithm}/{hexpart[:2]}/{hexpart}"


def upload_folder(upload_id: uuid.UUID | str) -> str:
    """Every chunk of one upload session (with the trailing slash: a prefix, not an object)."""
    return f"{UPLOADS}/{uuid.UUID(str(upload_id))}/"


def upload_chunk(upload_id: uuid.UUID | str, offset: int) -> str:
    """A new chunk object at `offset`; the nonce keeps a retried chunk from overwriting the first."""
    return f"{upload_folder(upload_id)}{offset:016d}-{uuid.uuid4().hex[:8]}"


def export(export_id: uuid.UUID | str) -> str:
    return f"{EXPORTS}/{export_id}.json"


def health_probe() -> str:
    return f"{HEALTH}/_verify-{uuid.uuid4().hex}"


# Read-only mode may not write: its storage check only stats this key (absent is fine).
HEALTH_STAT = f"{HEALTH}/_verify"


_BLOB_KEY = re.compile(r"(sha256/[0-9a-f]{2}/[0-9a-f]{64}|sha512/[0-9a-f]{2}/[0-9a-f]{128})")
_UPLOAD_KEY = re.compile(rf"{UPLOADS}/[0-9a-f-]{{36}}/(?:[0-9]{{16}}-[0-9a-f]{{8}})?")


def is_blob_key(key: str) -> bool:
    """A content address (whose last part must also match its folder)."""
    return bool(_BLOB_KEY.fullmatch(key)) and key.split("/")[1] == key.split("/")[2][:2]


def is_upload_key(key: str) -> bool:
    """An upload folder (`uploads/<uuid>/`) or one chunk in it."""
    return bool(_UPLOAD_KEY.fullmatch(key))
