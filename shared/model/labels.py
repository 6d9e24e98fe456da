"""Labels on manifests: from the image config at push (`source_type` manifest) or the API (api)."""
from __future__ import annotations

import re
import uuid

KEY_RE = re.compile(r"^[0-9A-Za-z/._-]{1,255}$")
RESERVED_PREFIXES = ("com.docker.", "io.docker.", "org.dockerproject.")
MEDIA_TYPES = ("text/plain", "application/json")
FORMAT_ERROR = "Invalid label format, must be key value separated by ="


class LabelError(ValueError):
    pass


def parse_label(text: str) -> tuple[str, str]:
    """`key=value` -> (key, value)."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise LabelError(FORMAT_ERROR)
    return key.strip(), value


def check(key: str, value: str, *, imported: bool = False) -> None:
    if not KEY_RE.match(key):
        raise LabelError(f"Invalid label key {key!r}: use 1-255 of A-Z a-z 0-9 / . _ -")
    if not imported and key.startswith(RESERVED_PREFIXES):
        raise LabelError("Label has a reserved prefix")
    if len(value) > 65536:
        raise LabelError("Label value is longer than 65536 characters")


async def add(conn, manifest_id: int, key: str, value: str, media_type: str, source_type: str) -> uuid.UUID:
    label_id = uuid.uuid4()
    await conn.execute(
        "INSERT INTO labels (id, manifest_id, key, value, media_type, source_type) VALUES ($1, $2, $3, $4, $5, $6)",
        label_id, manifest_id, key, value, media_type, source_type,
    )
    return label_id


def view(row) -> dict:
    return {"id": str(row["id"]), "key": row["key"], "value": row["value"], "source_type": row["source_type"],
            "media_type": row["media_type"]}


async def has_imported(db, manifest_id: int) -> bool:
    """Whether the manifest's labels were already imported from its image config (a re-push)."""
    return bool(await db.fetchval("SELECT 1 FROM labels WHERE manifest_id = $1 AND source_type = 'manifest' LIMIT 1",
                                  manifest_id))


async def list_for(db, manifest_id: int, key_prefix: str = ""):
    pattern = key_prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    return await db.fetch("SELECT * FROM labels WHERE manifest_id = $1 AND key LIKE $2 ORDER BY key, created_at",
                          manifest_id, pattern)


async def get(db, manifest_id: int, label_id: uuid.UUID):
    return await db.fetchrow("SELECT * FROM labels WHERE id = $1 AND manifest_id = $2", label_id, manifest_id)


async def delete(conn, label_id: uuid.UUID) -> None:
    await conn.execute("DELETE FROM labels WHERE id = $1", label_id)
