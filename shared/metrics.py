"""Prometheus metrics shared by the services. Each process exposes them at /metrics."""
from __future__ import annotations

import os

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess

HTTP_REQUESTS = Counter(
    "meridian_http_requests_total", "HTTP requests", ["service", "route", "method", "status"]
)
HTTP_LATENCY = Histogram(
    "meridian_http_request_duration_seconds",
    "HTTP request latency",
    ["service", "route", "method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
BYTES_PUSHED = Counter("meridian_bytes_pushed_total", "Blob bytes received", ["location"])
BYTES_PULLED = Counter("meridian_bytes_pulled_total", "Blob bytes served", ["location"])
UPLOADS_OPEN = Gauge("meridian_upload_sessions_open", "Upload sessions open (all processes)", multiprocess_mode="max")
UPLOAD_REHASH = Counter(
    "meridian_upload_rehash_total",
    "Uploads completed by re-reading stored chunks (the hash state was in another process)",
)
BUS_PUBLISHED = Counter("meridian_bus_published_total", "Messages published to JetStream", ["subject_kind"])
BUS_PUBLISH_ERRORS = Counter("meridian_bus_publish_errors_total", "Failed publishes", ["subject_kind"])
OUTBOX_RELAYED = Counter("meridian_outbox_relayed_total", "Outbox rows republished by the relay")
OUTBOX_PENDING = Gauge("meridian_outbox_pending", "Outbox rows waiting to be published", multiprocess_mode="max")


def render() -> tuple[bytes, str]:
    # With several worker processes (PROMETHEUS_MULTIPROC_DIR set before start) every worker answers
    # for all of them, so a scrape that lands on any one sees the whole service.
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST


class RequestMetrics:
    """Label children cached per (route, method[, status]): labels() costs a lock and a dict build."""

    def __init__(self, service: str) -> None:
        self.service = service
        self._counters: dict[tuple[str, str, int], Counter] = {}
        self._latency: dict[tuple[str, str], Histogram] = {}

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        counter = self._counters.get((route, method, status))
        if counter is None:
            counter = self._counters[(route, method, status)] = HTTP_REQUESTS.labels(self.service, route, method, str(status))
        counter.inc()
        latency = self._latency.get((route, method))
        if latency is None:
            latency = self._latency[(route, method)] = HTTP_LATENCY.labels(self.service, route, method)
        latency.observe(seconds)


LOCATION_UP = Gauge(
    "meridian_location_up", "1 while this process can write its region's own location (probed), 0 while it fails over",
    ["location"], multiprocess_mode="min",
)
REDIRECTS = Counter("meridian_blob_redirects", "Blob GETs answered with a redirect to the store", ["location"])
REPLICATION_LAG = Histogram(
    "meridian_replication_lag_seconds",
    "Push commit to placement in this location",
    ["location"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600),
)
REPLICATION_COPIES = Counter("meridian_replication_copies_total", "Blobs copied into this location", ["location"])
REPLICATION_BYTES = Counter("meridian_replication_bytes_total", "Bytes copied into this location", ["location"])
REPLICATION_FAILURES = Counter(
    "meridian_replication_failures_total",
    "Copy attempts that failed (corrupt: source bytes did not match the digest; gave_up: recorded as failed after "
    "its last attempt; target: this location's own storage failed, the copy is held)",
    ["location", "reason"],
)
REPLICATION_BACKLOG = Gauge(
    "meridian_replication_backlog", "blob.written and blob.missing events not yet processed by this location's replicator",
    ["location"], multiprocess_mode="max",
)
REPLICATION_MISSING_BLOBS = Gauge(
    "meridian_replication_missing_blobs", "Blobs that must be in this location and are not (anti-entropy's last count)",
    ["location"], multiprocess_mode="max",
)
REPLICATION_MISSING_BYTES = Gauge(
    "meridian_replication_missing_bytes", "Bytes of the blobs missing from this location", ["location"],
    multiprocess_mode="max",
)
REPLICATION_OLDEST_MISSING = Gauge(
    "meridian_replication_oldest_missing_seconds", "Age of the oldest blob missing from this location (0: none)",
    ["location"], multiprocess_mode="max",
)
REPLICATION_REPAIRS_QUEUED = Counter(
    "meridian_replication_repairs_queued", "Missing copies queued by anti-entropy", ["location"],
)
REPLICATION_HELD = Gauge(
    "meridian_replication_held", "1 while copies into this location wait for its storage to answer", ["location"],
    multiprocess_mode="max",
)

# Garbage collection: Quay's counter names, plus what Quay cannot tell (bytes reclaimed).
GC_ITERATIONS = Counter("quay_gc_iterations", "Garbage collection passes completed")
GC_NAMESPACES_PURGED = Counter("quay_gc_namespaces_purged", "Deleted namespaces purged")
GC_REPOS_PURGED = Counter("quay_gc_repos_purged", "Deleted repositories purged")
GC_BLOBS_DELETED = Counter("quay_gc_storage_blobs_deleted", "Blobs deleted from storage (every location)")
GC_BYTES_RECLAIMED = Counter("quay_gc_storage_bytes_reclaimed", "Bytes of blobs deleted, counted once per location")
GC_TAGS_COLLECTED = Counter("meridian_gc_tags_collected", "Tag history rows collected past their time-machine window")
GC_MANIFESTS_COLLECTED = Counter("meridian_gc_manifests_collected", "Manifests nothing referenced any more")
GC_UPLOADS_CLEANED = Counter("meridian_gc_uploads_cleaned", "Stale upload sessions removed")
GC_STORAGE_ORPHANS_DELETED = Counter(
    "meridian_gc_storage_orphans_deleted",
    "Content-addressed objects with no blob row, older than PUSH_TEMP_TAG_EXPIRATION_SEC, deleted from storage",
    ["location"])
GC_LOCKS_LOST = Counter("meridian_gc_locks_lost", "Collections aborted because their lock was lost")

DB_POOL = Gauge("meridian_db_pool_connections", "Database pool connections", ["service", "state"], multiprocess_mode="max")
BUS_CONSUMED = Counter("meridian_bus_consumed_total", "Messages taken from JetStream", ["consumer"])
BUS_CONSUME_ERRORS = Counter("meridian_bus_consume_errors_total", "Messages whose handling failed (NAKed or terminated)", ["consumer"])


def observe_pool(service: str, pool) -> None:
    """Pool figures at scrape time: connections open, idle, in use, and the ceiling."""
    if pool is None:
        return
    size, idle = pool.get_size(), pool.get_idle_size()
    DB_POOL.labels(service, "open").set(size)
    DB_POOL.labels(service, "idle").set(idle)
    DB_POOL.labels(service, "in_use").set(size - idle)
    DB_POOL.labels(service, "max").set(pool.get_max_size())

# Notifications and quotas.
NOTIFICATION_DELIVERIES = Counter(
    "meridian_notification_deliveries_total", "Notification delivery attempts, by method and outcome", ["method", "outcome"])
NOTIFIER_BACKLOG = Gauge("meridian_notifier_backlog", "Events the notifiers have not handled yet", multiprocess_mode="max")
QUOTA_USAGE = Gauge("meridian_quota_usage_bytes", "A namespace's usage: distinct blobs its live manifests reference",
                    ["namespace"], multiprocess_mode="max")
QUOTA_LIMIT = Gauge("meridian_quota_limit_bytes", "A namespace's quota (0: none)", ["namespace"], multiprocess_mode="max")
QUOTA_REJECT = Gauge("meridian_quota_reject_bytes", "Usage above which a namespace's pushes are refused (0: none)",
                     ["namespace"], multiprocess_mode="max")
REGISTRY_SIZE = Gauge("meridian_registry_size_bytes", "Every blob stored, counted once whatever its locations",
                      multiprocess_mode="max")
