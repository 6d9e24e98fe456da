"""The bus contract: every NATS subject, stream, durable consumer, KV bucket, blobstore command and
message-id format, in one place. The message bodies are the msgspec Structs of shared/messages.py.

Everything is named under a prefix: `meridian` in production (MERIDIAN_BUS_PREFIX), a random one per
test so runs can share a NATS server.

    stream <PREFIX>_EVENTS                  subjects <prefix>.events.>   (domain events, 7 days)
      <prefix>.events.blob.written.<location>    BlobWritten      bytes committed at a location (push)
      <prefix>.events.blob.placed.<location>     BlobPlaced       a replicator copied bytes there
      <prefix>.events.blob.missing.<location>    BlobMissingCopy  anti-entropy / backfill: copy it there
      <prefix>.events.manifest.pushed            ManifestPushed   a manifest stored (tags, pusher, size)
      <prefix>.events.manifest.deleted           ManifestDeleted  a manifest removed (API, v2 or gc)
      <prefix>.events.tag.changed                TagChanged       a tag created, moved or restored
      <prefix>.events.tag.deleted                TagDeleted       a tag deleted or expired
      <prefix>.events.repository.created         RepositoryChanged
      <prefix>.events.repository.deleted         RepositoryChanged
      <prefix>.events.repository.changed         RepositoryChanged  state or visibility
      <prefix>.events.quota.warning              QuotaCrossed     usage crossed a Warning limit upwards
      <prefix>.events.quota.rejected             QuotaCrossed     a change was refused over the Reject limit
      <prefix>.events.notification.requested     NotificationRequested  deliver this to one notification
                                                                  (a test, tags about to expire)
    durable consumers: replicator-<location> (one per location, shared by its replicas);
      notifier on <prefix>.events.*.* (every event but the blob ones, which have three tokens),
      shared by every notifier of every region
    request/reply: <prefix>.blobstore.<location>.<stat|delete|verify|clean>   BlobCommand/CleanCommand
    KV buckets: <prefix>_locks (gc), <prefix>_heartbeats (every service)

Message ids (`Nats-Msg-Id`, JetStream drops a repeat inside the 10-minute duplicate window):
`blob:<digest>:<location>` for blob.written (one event per placement); a random hex id otherwise.
"""
from __future__ import annotations

import uuid

BLOBSTORE_COMMANDS = ("stat", "delete", "verify", "clean")
EVENTS_MAX_AGE_S = 7 * 24 * 3600
DUPLICATE_WINDOW_S = 600


class Subjects:
    """Names for one prefix."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.events_stream = f"{prefix.upper().replace('-', '_')}_EVENTS"
        self.events_all = f"{prefix}.events.>"

    def _event(self, tail: str) -> str:
        return f"{self.prefix}.events.{tail}"

    # Blobs: the location is the last token so a consumer can filter on it.
    def blob_written(self, location: str) -> str:
        return self._event(f"blob.written.{location}")

    @property
    def blob_written_all(self) -> str:
        return self._event("blob.written.>")

    def blob_placed(self, location: str) -> str:
        return self._event(f"blob.placed.{location}")

    def blob_missing(self, location: str) -> str:
        return self._event(f"blob.missing.{location}")

    @property
    def manifest_pushed(self) -> str:
        return self._event("manifest.pushed")

    @property
    def manifest_deleted(self) -> str:
        return self._event("manifest.deleted")

    @property
    def tag_changed(self) -> str:
        return self._event("tag.changed")

    @property
    def tag_deleted(self) -> str:
        return self._event("tag.deleted")

    def repository(self, verb: str) -> str:
        """verb: created, deleted or changed."""
        return self._event(f"repository.{verb}")

    @property
    def quota_warning(self) -> str:
        return self._event("quota.warning")

    @property
    def quota_rejected(self) -> str:
        return self._event("quota.rejected")

    @property
    def notification_requested(self) -> str:
        return self._event("notification.requested")

    @property
    def notifier_filter(self) -> str:
        """What the notifier consumes: two tokens after `events` (manifest.*, tag.*, repository.*,
        quota.*, notification.*), so the busy blob.<verb>.<location> subjects never reach it."""
        return self._event("*.*")

    @property
    def notifier_consumer(self) -> str:
        return "notifier"

    def blobstore_command(self, location: str, command: str) -> str:
        return f"{self.prefix}.blobstore.{location}.{command}"

    def replicator_consumer(self, location: str) -> str:
        return f"replicator-{location}"

    @property
    def locks_bucket(self) -> str:
        return f"{self.prefix}_locks"

    @property
    def heartbeats_bucket(self) -> str:
        return f"{self.prefix}_heartbeats"


def blob_written_id(digest: str, location: str) -> str:
    """One blob.written per placement: a retried commit of the same bytes publishes nothing new."""
    return f"blob:{digest}:{location}"


def new_message_id() -> str:
    return uuid.uuid4().hex
