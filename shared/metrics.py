"""Prometheus metrics shared by the services. Each process exposes them at /metrics."""
from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

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
UPLOADS_OPEN = Gauge("meridian_upload_sessions_open", "Upload sessions open in this process")
UPLOAD_REHASH = Counter(
    "meridian_upload_rehash_total",
    "Uploads completed by re-reading stored chunks (the hash state was in another process)",
)
BUS_PUBLISHED = Counter("meridian_bus_published_total", "Messages published to JetStream", ["subject_kind"])
BUS_PUBLISH_ERRORS = Counter("meridian_bus_publish_errors_total", "Failed publishes", ["subject_kind"])
OUTBOX_RELAYED = Counter("meridian_outbox_relayed_total", "Outbox rows republished by the relay")
OUTBOX_PENDING = Gauge("meridian_outbox_pending", "Outbox rows waiting to be published")


def render() -> tuple[bytes, str]:
    return generate_latest(), CONTENT_TYPE_LATEST
