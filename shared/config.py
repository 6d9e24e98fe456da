"""One config.yaml with Quay-compatible keys, decoded into msgspec Structs.

A bad file fails at start with the key, the value and what was expected. Keys we do not know are
kept out of the Struct but do not fail: operators bring whole Quay files.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

import msgspec
import yaml

IMAGE_CONFIG_TYPES = (
    "application/vnd.oci.image.config.v1+json",
    "application/vnd.docker.container.image.v1+json",
)

DEFAULT_ARTIFACT_TYPES: dict[str, list[str]] = {
    "application/vnd.oci.image.config.v1+json": [
        "application/vnd.dev.cosign.simplesigning.v1+json",
        "application/vnd.dsse.envelope.v1+json",
        "text/spdx",
        "text/spdx+xml",
        "text/spdx+json",
        "application/vnd.syft+json",
        "application/vnd.cyclonedx",
        "application/vnd.cyclonedx+xml",
        "application/vnd.cyclonedx+json",
        "application/vnd.in-toto+json",
    ],
    "application/vnd.cncf.helm.config.v1+json": [
        "application/tar+gzip",
        "application/vnd.cncf.helm.chart.content.v1.tar+gzip",
    ],
    "application/vnd.oci.source.image.config.v1+json": [
        "application/vnd.oci.image.layer.v1.tar+gzip",
    ],
    "application/vnd.unknown.config.v1+json": [
        "application/vnd.cncf.openpolicyagent.policy.layer.v1+rego",
        "application/vnd.cncf.openpolicyagent.data.layer.v1+json",
    ],
}

STORAGE_DRIVERS = ("LocalStorage", "S3Storage", "RadosGWStorage", "RHOCSStorage")


class ConfigError(Exception):
    """A config file that cannot run; the message names the key, the value and what was expected."""


class LocalStorageParams(msgspec.Struct, forbid_unknown_fields=True):
    storage_path: str


class S3StorageParams(msgspec.Struct, forbid_unknown_fields=True):
    """Params of the S3 family. RadosGW/RHOCS use hostname/port/is_secure like Quay's config."""

    storage_path: str = "/registry"
    s3_bucket: str | None = None
    bucket_name: str | None = None  # RHOCSStorage spells it this way
    s3_access_key: str | None = None
    s3_secret_key: str | None = None
    access_key: str | None = None  # RadosGW/RHOCS spelling
    secret_key: str | None = None
    s3_region: str | None = None
    host: str | None = None
    hostname: str | None = None
    port: int | None = None
    is_secure: bool = True
    endpoint_url: str | None = None
    s3_signature_version: str | None = None
    maximum_chunk_size_mb: int | None = None
    server_side_assembly: bool | None = None

    @property
    def bucket(self) -> str:
        return self.s3_bucket or self.bucket_name or ""

    @property
    def key_id(self) -> str | None:
        return self.s3_access_key or self.access_key

    @property
    def secret(self) -> str | None:
        return self.s3_secret_key or self.secret_key

    @property
    def url(self) -> str | None:
        if self.endpoint_url:
            return self.endpoint_url
        host = self.hostname or self.host
        if not host:
            return None
        scheme = "https" if self.is_secure else "http"
        return f"{scheme}://{host}:{self.port}" if self.port else f"{scheme}://{host}"


class StorageLocation(msgspec.Struct):
    name: str
    driver: str
    params: LocalStorageParams | S3StorageParams | Any


class Config(msgspec.Struct, rename="upper", kw_only=True):
    server_hostname: str = "localhost:8080"
    preferred_url_scheme: Literal["http", "https"] = "http"
    db_uri: str = "postgresql://postgres@127.0.0.1:5432/meridian"
    db_pool_size: int = 20
    nats_url: str = "nats://127.0.0.1:4222"
    # Subject and stream prefix; lets several registries (or test runs) share one NATS.
    meridian_bus_prefix: str = "meridian"
    meridian_region: str = "default"
    meridian_listen: str = "0.0.0.0:8080"
    distributed_storage_config: dict[str, list[Any]] = msgspec.field(
        default_factory=lambda: {"default": ["LocalStorage", {"storage_path": "/datastorage/registry"}]}
    )
    distributed_storage_preference: list[str] = msgspec.field(default_factory=list)
    distributed_storage_default_locations: list[str] = msgspec.field(default_factory=list)
    feature_storage_replication: bool = False
    registry_state: Literal["normal", "readonly"] = "normal"
    feature_general_oci_support: bool = True
    feature_referrers_api: bool = True
    # Unset (None): every well-formed artifact is held, as the OCI image spec requires. Set: an allow-list.
    allowed_oci_artifact_types: dict[str, list[str]] | None = None
    ignore_unknown_mediatypes: bool = False
    push_temp_tag_expiration_sec: int = 3600
    super_users: list[str] = msgspec.field(default_factory=list)
    registry_title: str = "Meridian"
    registry_title_short: str = "Meridian"
    branding: dict[str, str] = msgspec.field(default_factory=dict)
    # Anyone may pull and push on /v2 without a token. Development only.
    meridian_insecure_open_access: bool = False
    # Advertised as OCI-Chunk-Min-Length on upload sessions.
    meridian_chunk_min_length: int = 0
    # Seconds an outbox row may stay unpublished before the relay republishes it.
    meridian_outbox_relay_after_sec: float = 5.0
    # Quay's switch: refuse pushes while the API stays writable (used before remove-location).
    disable_pushes: bool = False
    # Geo-replication: each location's blobstore (its HTTP storage proxy), reached by other regions.
    meridian_blobstore_urls: dict[str, str] = msgspec.field(default_factory=dict)
    meridian_blobstore_listen: str = "0.0.0.0:8081"
    # Signs the short-lived tokens services present to blobstores; the same in every region.
    meridian_service_secret: str | None = None
    meridian_replication_concurrency: int = 4
    meridian_replication_max_deliver: int = 5
    meridian_replication_ack_wait_sec: float = 60.0
    # NAK back-off doubles per delivery (1, 2, 4, ... s) up to this.
    meridian_replication_max_backoff_sec: float = 60.0
    # Temporary objects (interrupted copies and uploads: temporary files, S3 multipart uploads) that
    # made no progress for this long are removed (by gc's passes, and by the replicator at start).
    meridian_partial_object_max_age_sec: float = 600.0
    # Anti-entropy: how often each region compares what must be placed in its location with what is,
    # how many missing copies one pass queues, and how old a blob must be before it counts as missing
    # (younger ones are still on their way through the event path).
    meridian_reconcile_interval_sec: float = 30.0
    meridian_reconcile_batch: int = 1000
    meridian_reconcile_grace_sec: float = 60.0
    # /health/warning reports under-replication once the oldest missing copy is this old.
    meridian_under_replication_warning_sec: float = 300.0
    # Upload sessions that received no byte are removed after this (abandoned POSTs).
    meridian_empty_upload_session_max_age_sec: float = 3600.0
    # A location that failed is skipped for this long before it is tried again.
    meridian_location_retry_after_sec: float = 30.0
    # Health: each check answers within this, so a hung dependency cannot hang a probe.
    meridian_health_check_timeout_sec: float = 3.0
    diskspace_health_threshold: float = 0.01
    diskspace_health_warning_threshold: float = 0.1
    # Identity and registry tokens (Quay's keys).
    feature_anonymous_access: bool = True
    create_private_repo_on_push: bool = True
    instance_service_key_service: str = "quay"
    instance_service_key_location: str = "conf/quay.pem"
    instance_service_key_kid_location: str = "conf/quay.kid"
    # Minutes an instance's own key lives, and how often it makes a new one.
    instance_service_key_expiration: int = 120
    instance_service_key_refresh: int = 55
    token_validity_lifetime_s: int = 3600
    # API sessions (cookie) and personal API tokens.
    session_cookie_lifetime_s: int = 14 * 24 * 3600
    tag_expiration_options: list[str] = msgspec.field(default_factory=lambda: ["0s", "1d", "1w", "2w", "4w"])
    default_tag_expiration: str = "2w"
    feature_log_export: bool = True
    action_log_audit_logins: bool = True
    # Hosts exempt from the "no loopback or private address" rule for export callbacks.
    meridian_callback_allowed_hosts: list[str] = msgspec.field(default_factory=list)
    mail_server: str | None = None
    mail_port: int = 587
    mail_use_tls: bool = True
    mail_username: str | None = None
    mail_password: str | None = None
    mail_default_sender: str = "meridian@localhost"
    # Garbage collection (Quay's switches) and the gc service.
    feature_garbage_collection: bool = True
    feature_namespace_garbage_collection: bool = True
    feature_repository_garbage_collection: bool = True
    garbage_collection_frequency: float = 30.0
    clean_blob_upload_folder: bool = True
    # Upload sessions untouched this long are removed with their chunks (Quay: two days).
    meridian_upload_session_max_age_sec: float = 2 * 24 * 3600.0
    # A gc lock whose holder stops renewing it ends after this.
    meridian_gc_lock_ttl_sec: float = 60.0
    meridian_gc_listen: str = "0.0.0.0:8082"
    # Operations: heartbeats, the health service, the replicator's /metrics.
    meridian_heartbeat_interval_sec: float = 5.0
    # The services this region must run (health checks); by default derived from the config.
    meridian_health_services: list[str] | None = None
    meridian_health_listen: str = "0.0.0.0:8084"
    meridian_replicator_listen: str = "0.0.0.0:8083"

    def storage_locations(self) -> dict[str, StorageLocation]:
        return {loc.name: loc for loc in _decode_locations(self.distributed_storage_config)}

    def preferred_locations(self) -> list[str]:
        env = os.environ.get("MERIDIAN_DISTRIBUTED_STORAGE_PREFERENCE") or os.environ.get(
            "QUAY_DISTRIBUTED_STORAGE_PREFERENCE"
        )
        if env:
            return env.split()
        return list(self.distributed_storage_preference) or list(self.distributed_storage_config)


def _decode_locations(raw: dict[str, list[Any]]) -> list[StorageLocation]:
    out = []
    for name, spec in raw.items():
        key = f"DISTRIBUTED_STORAGE_CONFIG.{name}"
        if not isinstance(spec, list) or len(spec) != 2 or not isinstance(spec[1], dict):
            raise ConfigError(
                f"{key}: value {spec!r} is invalid: expected [DriverName, {{params}}]"
            )
        driver, params = spec
        if driver not in STORAGE_DRIVERS:
            raise ConfigError(
                f"{key}: driver {driver!r} is not supported: expected one of {', '.join(STORAGE_DRIVERS)}"
            )
        kind = LocalStorageParams if driver == "LocalStorage" else S3StorageParams
        try:
            decoded = msgspec.convert(params, kind)
        except msgspec.ValidationError as exc:
            raise ConfigError(f"{key}: value {params!r} is invalid: {_explain(exc)}") from None
        if isinstance(decoded, S3StorageParams) and not decoded.bucket:
            raise ConfigError(f"{key}: value {params!r} is invalid: expected an s3_bucket (or bucket_name)")
        out.append(StorageLocation(name, driver, decoded))
    return out


_PATH_RE = re.compile(r"at `\$(.*)`")


def _explain(exc: msgspec.ValidationError) -> str:
    return str(exc).replace("`$.", "`").replace("`$", "`")


def _value_at(doc: Any, path: str) -> tuple[str, Any]:
    """Walk a msgspec error path like `.DB_URI` or `.X[0]` through the raw document."""
    parts = re.findall(r"\.([^.\[]+)|\[(\d+)\]", path)
    value, names = doc, []
    for key, index in parts:
        try:
            if key:
                names.append(key)
                value = value[key]
            else:
                names[-1:] = [f"{names[-1] if names else ''}[{index}]"]
                value = value[int(index)]
        except (KeyError, IndexError, TypeError):
            return ".".join(names), None
    return ".".join(names), value


def parse_config(doc: Any, source: str = "config.yaml") -> Config:
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise ConfigError(f"{source}: expected a mapping of keys at the top level, got {type(doc).__name__}")
    try:
        config = msgspec.convert(doc, Config)
    except msgspec.ValidationError as exc:
        message = str(exc)
        match = _PATH_RE.search(message)
        key, value = _value_at(doc, match.group(1)) if match else ("?", None)
        expected = message.split(" - at ")[0]
        raise ConfigError(f"{source}: key {key}: value {value!r} is invalid: {expected}") from None
    _check_semantics(config, source)
    return config


def _check_semantics(config: Config, source: str) -> None:
    locations = config.storage_locations()
    if not locations:
        raise ConfigError(f"{source}: key DISTRIBUTED_STORAGE_CONFIG: value {{}} is invalid: expected at least one location")
    for key in ("DISTRIBUTED_STORAGE_PREFERENCE", "DISTRIBUTED_STORAGE_DEFAULT_LOCATIONS"):
        for name in getattr(config, key.lower()):
            if name not in locations:
                raise ConfigError(
                    f"{source}: key {key}: value {name!r} is invalid: expected one of the locations "
                    f"in DISTRIBUTED_STORAGE_CONFIG ({', '.join(locations)})"
                )
    preference = config.preferred_locations()
    for name in preference:
        if name not in locations:
            raise ConfigError(
                f"storage preference (QUAY_DISTRIBUTED_STORAGE_PREFERENCE/MERIDIAN_DISTRIBUTED_STORAGE_PREFERENCE "
                f"or DISTRIBUTED_STORAGE_PREFERENCE): value {name!r} is invalid: expected one of {', '.join(locations)}"
            )
    if not config.db_uri.startswith(("postgresql://", "postgres://")):
        raise ConfigError(f"{source}: key DB_URI: value {config.db_uri!r} is invalid: expected a postgresql:// URI")
    if not config.nats_url.startswith(("nats://", "tls://", "ws://", "wss://")):
        raise ConfigError(f"{source}: key NATS_URL: value {config.nats_url!r} is invalid: expected a nats:// URL")
    for name, url in config.meridian_blobstore_urls.items():
        if name not in locations:
            raise ConfigError(
                f"{source}: key MERIDIAN_BLOBSTORE_URLS.{name}: value {url!r} is invalid: expected a location "
                f"of DISTRIBUTED_STORAGE_CONFIG ({', '.join(locations)})"
            )
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"{source}: key MERIDIAN_BLOBSTORE_URLS.{name}: value {url!r} is invalid: expected an http(s) URL")
    if config.meridian_blobstore_urls and len(config.meridian_service_secret or "") < 32:
        raise ConfigError(
            f"{source}: key MERIDIAN_SERVICE_SECRET: value is invalid: expected a secret of at least 32 characters "
            "(blobstores authenticate each other with it); generate one with `openssl rand -hex 32`"
        )
    if config.feature_storage_replication:
        if not (os.environ.get("QUAY_DISTRIBUTED_STORAGE_PREFERENCE") or os.environ.get("MERIDIAN_DISTRIBUTED_STORAGE_PREFERENCE") or config.distributed_storage_preference):
            raise ConfigError(
                "Missing storage preference for geo-replication. Set DISTRIBUTED_STORAGE_PREFERENCE in config.yaml "
                "or the QUAY_DISTRIBUTED_STORAGE_PREFERENCE (or MERIDIAN_DISTRIBUTED_STORAGE_PREFERENCE) environment "
                "variable to this region's locations, nearest first, e.g. QUAY_DISTRIBUTED_STORAGE_PREFERENCE=\"us-east eu-west\""
            )
    for option in config.tag_expiration_options:
        if parse_duration(option) is None:
            raise ConfigError(f"{source}: key TAG_EXPIRATION_OPTIONS: value {option!r} is invalid: expected a number "
                              "followed by s, m, h, d or w (e.g. 2w)")
    if parse_duration(config.default_tag_expiration) is None:
        raise ConfigError(f"{source}: key DEFAULT_TAG_EXPIRATION: value {config.default_tag_expiration!r} is invalid: "
                          "expected a number followed by s, m, h, d or w (e.g. 2w)")
    if config.default_tag_expiration not in config.tag_expiration_options:
        raise ConfigError(f"{source}: key DEFAULT_TAG_EXPIRATION: value {config.default_tag_expiration!r} is invalid: "
                          f"expected one of TAG_EXPIRATION_OPTIONS ({', '.join(config.tag_expiration_options)})")
    if config.instance_service_key_refresh >= config.instance_service_key_expiration:
        raise ConfigError(f"{source}: key INSTANCE_SERVICE_KEY_REFRESH: value {config.instance_service_key_refresh!r} "
                          "is invalid: expected fewer minutes than INSTANCE_SERVICE_KEY_EXPIRATION")
    for key in ("meridian_replication_concurrency", "meridian_replication_max_deliver"):
        if getattr(config, key) < 1:
            raise ConfigError(f"{source}: key {key.upper()}: value {getattr(config, key)!r} is invalid: expected at least 1")
    if not re.fullmatch(r"[A-Za-z0-9_-]+", config.meridian_bus_prefix):
        raise ConfigError(
            f"{source}: key MERIDIAN_BUS_PREFIX: value {config.meridian_bus_prefix!r} is invalid: "
            "expected letters, digits, '_' or '-'"
        )


_DURATION_RE = re.compile(r"^([0-9]+)([smhdw])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(value: str) -> int | None:
    """Quay's duration strings ("2w", "1d", "0s") in seconds; None when malformed."""
    found = _DURATION_RE.match(value.strip()) if isinstance(value, str) else None
    return int(found.group(1)) * _UNIT_SECONDS[found.group(2)] if found else None


def load_config(path: str | os.PathLike[str]) -> Config:
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config: {exc.strerror}") from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    return parse_config(doc, str(path))
