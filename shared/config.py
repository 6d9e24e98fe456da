"""One config.yaml with Quay-compatible keys, decoded into msgspec Structs.

Operators bring Quay's file as they wrote it: numbers and booleans may be strings (`port: "443"`,
`is_secure: 'true'`), Quay keys Meridian has no use for load and are ignored, and every storage
driver of Quay is either served or refused with a reason. A bad file fails at start with every
problem at once, each naming the file, the line, the key and what was expected; no message ever
shows a secret (see `scrub`).
"""
from __future__ import annotations

import difflib
import ipaddress
import os
import re
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import msgspec
import yaml

from shared.quaykeys import IGNORED_QUAY_KEY_SUFFIXES, IGNORED_QUAY_KEYS

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


# --------------------------------------------------------------------------------------------
# Secrets: recognised by key name (and DSN passwords inside URLs); every value seen under such a
# key is remembered so that `scrub` can take it out of any text: errors, logs, exception messages.

_SECRET_WORDS = ("password", "passwd", "secret", "token", "credential", "access_key", "account_key",
                 "private", "psk", "dsn", "sas")
# Shorter values are not masked inside free text: replacing every "k" in a log line helps nobody.
MIN_SECRET_LENGTH = 6
_known_secrets: set[str] = set()
_URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^:/@\s]*):(?P<password>[^@/\s]+)@")


# Names that contain a secret-looking word but hold a path, a lifetime or an id.
_NOT_SECRET_SUFFIXES = ("_location", "_filename", "_path", "_lifetime_s", "_expiration", "_ttl_sec", "_key_id")


def is_secret_key(name: str) -> bool:
    low = str(name).lower()
    if low.endswith(_NOT_SECRET_SUFFIXES):
        return False
    return any(word in low for word in _SECRET_WORDS) or low.endswith("_key") or low == "key"


def mask_url_passwords(text: str) -> str:
    """`postgresql://user:pw@host/db` -> `postgresql://user:***@host/db`, anywhere in a text."""
    return _URL_PASSWORD.sub(lambda m: f"{m['head']}:***@", text)


def register_secret(value: Any) -> None:
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        text = str(value)
        if len(text) >= MIN_SECRET_LENGTH:
            _known_secrets.add(text)


def scrub(text: str) -> str:
    """The text with every known secret and every URL password replaced by ***."""
    text = str(text)
    if "@" in text:  # a URL password needs user:password@host
        text = mask_url_passwords(text)
    for secret in _secrets_longest_first():
        if secret in text:
            text = text.replace(secret, "***")
    return text


_sorted_secrets: tuple[int, list[str]] = (-1, [])


def _secrets_longest_first() -> list[str]:
    """The known secrets, longest first (so a secret containing another is masked whole); sorted
    again only when one was registered since: every log line asks."""
    global _sorted_secrets
    if _sorted_secrets[0] != len(_known_secrets):
        _sorted_secrets = (len(_known_secrets), sorted(_known_secrets, key=len, reverse=True))
    return _sorted_secrets[1]


def _collect_secrets(value: Any, secret: bool = False) -> None:
    if isinstance(value, Mapping):
        for key, item in value.items():
            _collect_secrets(item, secret or is_secret_key(key))
    elif isinstance(value, list):
        for item in value:
            _collect_secrets(item, secret)
    elif isinstance(value, str):
        if secret:
            register_secret(value)
        for found in _URL_PASSWORD.finditer(value):
            register_secret(found["password"])
            from urllib.parse import unquote

            register_secret(unquote(found["password"]))
    elif secret:
        register_secret(value)


def redacted(value: Any, secret: bool = False) -> Any:
    """A copy of a config document fit to show: secrets as "******", URL passwords masked."""
    if isinstance(value, Mapping):
        return {key: redacted(item, secret or is_secret_key(key)) for key, item in value.items()}
    if isinstance(value, list):
        return [redacted(item, secret) for item in value]
    if secret and value not in (None, ""):
        return "******"
    if isinstance(value, str):
        return mask_url_passwords(value)
    return value


def _show(key: str, value: Any) -> str:
    """A value as an error message may print it."""
    if is_secret_key(key.rsplit(".", 1)[-1]):
        return "(a secret, not shown)"
    if isinstance(value, (dict, list)):
        return f"of type {'mapping' if isinstance(value, dict) else 'list'}"
    return scrub(repr(value))


# --------------------------------------------------------------------------------------------
# Problems: everything wrong with a file, reported together.

@dataclass(frozen=True)
class Problem:
    key: str
    message: str
    line: int | None = None
    warning: bool = False

    def render(self, source: str) -> str:
        where = f"{source}:{self.line}" if self.line else source
        kind = "warning: " if self.warning else ""
        text = f"{where}: {kind}key {self.key}: {self.message}" if self.key else f"{where}: {kind}{self.message}"
        return scrub(text)


class ConfigError(Exception):
    """A config that cannot run; the message names the file, line, key, value and what was expected,
    one line per problem, and never a secret."""

    def __init__(self, message: str | None = None, *, problems: list[Problem] | None = None,
                 source: str = "config.yaml") -> None:
        self.problems = list(problems or [])
        self.source = source
        if message is None:
            message = "\n".join(p.render(source) for p in self.problems)
        super().__init__(scrub(message))


# --------------------------------------------------------------------------------------------
# YAML with line numbers.

@dataclass
class Document:
    data: Any
    source: str
    lines: dict[tuple, int]


def _record_lines(node: yaml.Node, path: tuple, lines: dict[tuple, int]) -> None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            if key is None:
                continue
            lines[path + (key,)] = key_node.start_mark.line + 1
            _record_lines(value_node, path + (key,), lines)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines[path + (index,)] = item.start_mark.line + 1
            _record_lines(item, path + (index,), lines)


def parse_yaml(text: str, source: str = "config.yaml") -> Document:
    loader = yaml.SafeLoader(text)
    loader.name = source  # marks name the file, not "<unicode string>"
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        text = f"not valid YAML: {exc.problem or exc.context}"
        if exc.context and exc.problem:
            text += f" ({exc.context}" + (f" on line {exc.context_mark.line + 1})" if exc.context_mark else ")")
        raise ConfigError(problems=[Problem("", text, mark.line + 1 if mark else None)], source=source) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {type(exc).__name__}") from None
    finally:
        loader.dispose()
    lines: dict[tuple, int] = {}
    if node is not None:
        _record_lines(node, (), lines)
    return Document(data, source, lines)


def read_document(path: str | os.PathLike[str]) -> Document:
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: cannot read config: not UTF-8 text") from None
    return parse_yaml(text, str(path))


# --------------------------------------------------------------------------------------------
# Storage: Quay's drivers with Quay's parameter names. Every parameter is optional to the decoder;
# `required` is enforced only for the locations this process opens itself, so a config may list
# another region's location (reached through its blobstore, MERIDIAN_BLOBSTORE_URLS) by driver
# name alone.

class LocationParams(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    storage_path: str | None = None

    required: ClassVar[tuple[str, ...]] = ("storage_path",)

    def missing(self) -> list[str]:
        return [name for name in self.required if getattr(self, name) in (None, "")]


class LocalStorageParams(LocationParams):
    pass


@dataclass(frozen=True)
class AssumeRole:
    """STSS3Storage: S3 credentials come from STS AssumeRole, refreshed before they expire."""
    role_arn: str
    access_key: str | None
    secret_key: str | None
    endpoint_url: str | None
    region: str


@dataclass(frozen=True)
class S3Settings:
    """How an S3-family location is reached, whatever its driver spelled."""
    bucket: str
    prefix: str
    endpoint_url: str | None
    region: str
    access_key: str | None = None
    secret_key: str | None = None
    session_token: str | None = None
    signature_version: str | None = "s3v4"
    connect_timeout: float = 5
    read_timeout: float = 30
    # GCS's XML API has no ListObjectsV2 and no multi-object delete.
    list_version: int = 2
    batch_delete: bool = True
    # Stores that are not AWS get checksums only when an operation requires them (older Ceph, GCS
    # and IBM reject the streaming checksum trailers newer botocore sends by default).
    checksums_when_required: bool = False
    assume_role: AssumeRole | None = None
    cdn_host: str | None = None


def build_endpoint_url(hostname: str, port: int | None = None, is_secure: bool = True) -> str:
    """Quay's rule (storage/cloud.py): a scheme in the hostname wins over is_secure, a port in the
    hostname wins over port."""
    if not hostname.startswith(("http://", "https://")):
        hostname = ("https://" if is_secure else "http://") + hostname
    if port and not hostname.split(":")[-1].strip(" /").isdigit():
        hostname = f"{hostname}:{port}"
    return hostname


def aws_endpoint(region: str | None) -> str | None:
    if not region:
        return None
    url = f"https://s3.{region}.amazonaws.com"
    return url + ".cn" if region.startswith("cn-") else url


class S3StorageParams(LocationParams):
    s3_bucket: str | None = None
    s3_access_key: str | None = None
    s3_secret_key: str | None = None
    s3_region: str | None = None
    host: str | None = None
    port: int | None = None
    endpoint_url: str | None = None
    maximum_chunk_size_gb: float | None = None
    minimum_chunk_size_mb: float | None = None
    aws_session_token: str | None = None
    signature_version: str | None = None
    # Meridian's: the scheme for `host` when it has none (Quay's S3Storage always uses https).
    is_secure: bool = True

    required: ClassVar[tuple[str, ...]] = ("storage_path", "s3_bucket")

    @property
    def cdn_host(self) -> str | None:
        return None

    def s3(self) -> S3Settings:
        # Quay builds the AWS endpoint from s3_region and then ignores host; Meridian takes an
        # explicit endpoint_url or host first, so an S3-compatible store may name its region too.
        url: str | None
        if self.endpoint_url:
            url = self.endpoint_url
        elif self.host:
            url = build_endpoint_url(self.host, self.port, self.is_secure)
        else:
            url = aws_endpoint(self.s3_region)
        return S3Settings(
            bucket=self.s3_bucket or "", prefix=(self.storage_path or "").strip("/"), endpoint_url=url,
            region=self.s3_region or "us-east-1", access_key=self.s3_access_key or None,
            secret_key=self.s3_secret_key or None, session_token=self.aws_session_token or None,
            signature_version=self.signature_version or "s3v4", cdn_host=self.cdn_host,
        )


class CloudFrontedS3StorageParams(S3StorageParams):
    cloudfront_distribution_domain: str | None = None
    cloudfront_key_id: str | None = None
    cloudfront_privatekey_filename: str | None = None
    cloudfront_distribution_org_overrides: dict[str, str] | None = None

    required: ClassVar[tuple[str, ...]] = ("storage_path", "s3_bucket", "s3_region", "cloudfront_distribution_domain",
                                           "cloudfront_key_id", "cloudfront_privatekey_filename")

    @property
    def cdn_host(self) -> str | None:
        return self.cloudfront_distribution_domain


class CloudFlareStorageParams(S3StorageParams):
    cloudflare_domain: str | None = None
    cloudflare_privatekey_filename: str | None = None

    required: ClassVar[tuple[str, ...]] = ("storage_path", "s3_bucket", "s3_region", "cloudflare_domain",
                                           "cloudflare_privatekey_filename")

    @property
    def cdn_host(self) -> str | None:
        return self.cloudflare_domain


class AkamaiS3StorageParams(S3StorageParams):
    akamai_domain: str | None = None
    akamai_shared_secret: str | None = None

    required: ClassVar[tuple[str, ...]] = ("storage_path", "s3_bucket", "s3_region", "akamai_domain",
                                           "akamai_shared_secret")

    @property
    def cdn_host(self) -> str | None:
        return self.akamai_domain


class STSS3StorageParams(LocationParams):
    s3_bucket: str | None = None
    sts_role_arn: str | None = None
    sts_user_access_key: str | None = None
    sts_user_secret_key: str | None = None
    s3_region: str | None = None
    endpoint_url: str | None = None
    maximum_chunk_size_gb: float | None = None
    signature_version: str | None = None
    # Meridian's: where STS answers (Quay always asks AWS's STS).
    sts_endpoint_url: str | None = None

    required: ClassVar[tuple[str, ...]] = ("storage_path", "s3_bucket")

    def s3(self) -> S3Settings:
        region = self.s3_region or "us-east-1"
        role = None
        if self.sts_role_arn:
            role = AssumeRole(self.sts_role_arn, self.sts_user_access_key or None, self.sts_user_secret_key or None,
                              self.sts_endpoint_url, region)
        return S3Settings(
            bucket=self.s3_bucket or "", prefix=(self.storage_path or "").strip("/"),
            endpoint_url=self.endpoint_url or aws_endpoint(self.s3_region), region=region,
            signature_version=self.signature_version or "s3v4", assume_role=role,
        )


class RadosGWStorageParams(LocationParams):
    hostname: str | None = None
    is_secure: bool = True
    port: int | None = None
    access_key: str | None = None
    secret_key: str | None = None
    bucket_name: str | None = None
    region_name: str | None = None
    signature_version: str | None = None
    minimum_chunk_size_mb: float | None = None
    maximum_chunk_size_mb: float | None = None
    server_side_assembly: bool = True

    required: ClassVar[tuple[str, ...]] = ("storage_path", "hostname", "access_key", "secret_key", "bucket_name")

    def s3(self) -> S3Settings:
        return S3Settings(
            bucket=self.bucket_name or "", prefix=(self.storage_path or "").strip("/"),
            endpoint_url=build_endpoint_url(self.hostname or "", self.port, self.is_secure),
            region=self.region_name or "us-east-1", access_key=self.access_key or None,
            secret_key=self.secret_key or None, signature_version=self.signature_version or "s3v4",
            connect_timeout=5 if self.server_side_assembly else 60, read_timeout=60 if self.server_side_assembly else 600,
            checksums_when_required=True,
        )


class RHOCSStorageParams(RadosGWStorageParams):
    pass


class IBMCloudStorageParams(LocationParams):
    hostname: str | None = None
    is_secure: bool = True
    port: int | None = None
    access_key: str | None = None
    secret_key: str | None = None
    bucket_name: str | None = None
    maximum_chunk_size_mb: float | None = None
    signature_version: str | None = None

    required: ClassVar[tuple[str, ...]] = ("storage_path", "hostname", "access_key", "secret_key", "bucket_name")

    def s3(self) -> S3Settings:
        return S3Settings(
            bucket=self.bucket_name or "", prefix=(self.storage_path or "").strip("/"),
            endpoint_url=build_endpoint_url(self.hostname or "", self.port, self.is_secure), region="us-east-1",
            access_key=self.access_key or None, secret_key=self.secret_key or None,
            signature_version=self.signature_version or "s3v4", checksums_when_required=True,
        )


GCS_XML_API = "https://storage.googleapis.com"


class GoogleCloudStorageParams(LocationParams):
    access_key: str | None = None
    secret_key: str | None = None
    bucket_name: str | None = None
    boto_timeout: float = 60
    minimum_chunk_size_mb: float | None = None
    signature_version: str | None = None
    # Meridian's: another endpoint speaking GCS's XML (S3-interoperable) API; Quay's is fixed.
    endpoint_url: str | None = None

    required: ClassVar[tuple[str, ...]] = ("storage_path", "access_key", "secret_key", "bucket_name")

    def s3(self) -> S3Settings:
        return S3Settings(
            bucket=self.bucket_name or "", prefix=(self.storage_path or "").strip("/"),
            endpoint_url=self.endpoint_url or GCS_XML_API, region="auto",
            access_key=self.access_key or None, secret_key=self.secret_key or None,
            signature_version=self.signature_version or "s3v4", connect_timeout=self.boto_timeout,
            read_timeout=self.boto_timeout, list_version=1, batch_delete=False, checksums_when_required=True,
        )


class AzureStorageParams(LocationParams):
    azure_container: str | None = None
    azure_account_name: str | None = None
    azure_account_key: str | None = None
    sas_token: str | None = None
    endpoint_url: str | None = None

    required: ClassVar[tuple[str, ...]] = ("storage_path", "azure_container", "azure_account_name")

    @property
    def account_url(self) -> str:
        return self.endpoint_url or f"https://{self.azure_account_name}.blob.core.windows.net"


STORAGE_PARAMS: dict[str, type[LocationParams]] = {
    "LocalStorage": LocalStorageParams,
    "S3Storage": S3StorageParams,
    "GoogleCloudStorage": GoogleCloudStorageParams,
    "RadosGWStorage": RadosGWStorageParams,
    "CloudFrontedS3Storage": CloudFrontedS3StorageParams,
    "AzureStorage": AzureStorageParams,
    "RHOCSStorage": RHOCSStorageParams,
    "CloudFlareStorage": CloudFlareStorageParams,
    "IBMCloudStorage": IBMCloudStorageParams,
    "STSS3Storage": STSS3StorageParams,
    "AkamaiS3Storage": AkamaiS3StorageParams,
}
STORAGE_DRIVERS = tuple(STORAGE_PARAMS)

REFUSED_DRIVERS = {
    "SwiftStorage": "Meridian has no Swift driver (no Swift server to test one against); most Swift "
                    "clusters also serve the S3 API (the s3api middleware): use S3Storage with its host and keys, "
                    "or RadosGWStorage for Ceph",
    "MultiCDNStorage": "Meridian does not choose between CDNs by rule; use the CDN's own driver "
                       "(CloudFrontedS3Storage, CloudFlareStorage or AkamaiS3Storage) for each location, with "
                       "the parameters of MultiCDNStorage's storage_config and of one provider",
}


class StorageLocation(msgspec.Struct):
    name: str
    driver: str
    params: Any  # one of STORAGE_PARAMS' classes


def _decode_params(name: str, driver: str, params: Mapping, lines: dict[tuple, int]) -> tuple[LocationParams | None, list[Problem]]:
    """Each parameter on its own, so every mistake of a location is reported at once."""
    kind = STORAGE_PARAMS[driver]
    fields = {f.encode_name: f for f in msgspec.structs.fields(kind)}
    base = ("DISTRIBUTED_STORAGE_CONFIG", name)
    problems: list[Problem] = []
    values = {}
    for param, value in params.items():
        key = f"DISTRIBUTED_STORAGE_CONFIG.{name}.{param}"
        line = lines.get(base + (1, param)) or lines.get(base)
        field = fields.get(param)
        if field is None:
            suggestion = _suggest(str(param), list(fields))
            problems.append(Problem(key, f"unknown parameter of {driver}{suggestion}; expected some of "
                                         f"{', '.join(sorted(fields))}", line))
            continue
        _, converted, problem = _convert(key, value, field.type, line)
        if problem is None:
            values[field.name] = converted
        else:
            problems.append(problem)
    if problems:
        return None, problems
    return kind(**values), []


def decode_location(name: str, spec: Any, lines: dict[tuple, int] | None = None) -> tuple[StorageLocation | None, list[Problem]]:
    lines = lines or {}
    key = f"DISTRIBUTED_STORAGE_CONFIG.{name}"
    line = lines.get(("DISTRIBUTED_STORAGE_CONFIG", name))
    if not isinstance(spec, list) or len(spec) != 2 or not isinstance(spec[1], Mapping):
        return None, [Problem(key, f"value {_show(key, spec)} is invalid: expected [DriverName, {{parameters}}], "
                                   "e.g. [S3Storage, {s3_bucket: ..., storage_path: /registry}]", line)]
    driver, params = spec
    if driver in REFUSED_DRIVERS:
        return None, [Problem(key, f"driver {driver} is not supported: {REFUSED_DRIVERS[driver]}", line)]
    if driver not in STORAGE_PARAMS:
        return None, [Problem(key, f"driver {driver!r} is not supported: expected one of {', '.join(STORAGE_DRIVERS)}", line)]
    decoded, problems = _decode_params(name, driver, params, lines)
    if decoded is None:
        return None, problems
    return StorageLocation(name, driver, decoded), []


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
    # Quay's sparse indexes: an index may name children that were not pushed, when their platform's
    # architecture is not listed in SPARSE_INDEX_REQUIRED_ARCHS (an empty list requires every child).
    feature_sparse_index: bool = False
    sparse_index_required_archs: list[str] = msgspec.field(default_factory=list)
    # The distribution spec's sparse manifests: any layer or index child may be missing.
    meridian_sparse_manifests: bool = False
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
    # Quay's switch: true streams every blob through the registry; false (default) answers blob GETs
    # from S3-family and Azure locations with a redirect to a short-lived signed URL of the store.
    feature_proxy_storage: bool = False
    meridian_redirect_expiry_sec: int = 300
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
    # /v2 tokens whose lifetime (exp - iat, or exp - now) exceeds this are refused, whoever signed them.
    meridian_token_max_lifetime_sec: int = 3600
    # How long a gateway process trusts what it checked about a /v2 token (its signing key is still
    # registered, approved and unexpired; its user or robot still exists and is enabled): a removed key
    # or account stops the tokens within this many seconds on every gateway.
    meridian_token_recheck_sec: float = 5.0
    # How long a gateway process may answer which manifest a tag or digest names from memory after its
    # last check that nothing changed (shared/registry/lookups.py); a request that moves or deletes a
    # tag waits the longest such lease registered by any gateway before it answers, so no gateway
    # serves the old answer after that. 0 keeps nothing (such a gateway still waits for the others).
    meridian_lookup_cache_sec: float = 0.1
    # Failed-login throttling (/v2/auth Basic credentials, /api/v1/signin), kept in the database so every
    # gateway of every region sees it. After the free failures, each further failure locks the user
    # name (and, separately, the client address) for BACKOFF * 2^(n-1) seconds, at most BACKOFF_MAX;
    # failures older than WINDOW are forgotten. 0 free attempts for the address turns that key off.
    meridian_login_free_attempts: int = 5
    meridian_login_address_free_attempts: int = 20
    meridian_login_backoff_sec: float = 1.0
    meridian_login_backoff_max_sec: float = 300.0
    meridian_login_failure_window_sec: float = 900.0
    # Quay's: the number of reverse proxies in front of the gateway; the client address (usage logs, login
    # throttling) is the PROXY_COUNT-th X-Forwarded-For entry from the right. 0: the header is never trusted.
    proxy_count: int = 0
    # API sessions (cookie) and personal API tokens.
    session_cookie_lifetime_s: int = 14 * 24 * 3600
    # /api/v1 request bodies larger than this are refused (413) before they are read.
    meridian_api_max_body_bytes: int = 1024 * 1024
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
    meridian_metrics_per_namespace: bool = False
    # Operations: heartbeats, the health service, the replicator's /metrics.
    meridian_heartbeat_interval_sec: float = 5.0
    # The services this region must run (health checks); by default derived from the config.
    meridian_health_services: list[str] | None = None
    meridian_health_listen: str = "0.0.0.0:8084"
    meridian_replicator_listen: str = "0.0.0.0:8083"
    # Quotas (Quay's switches): limits are enforced only with the feature on; usage is always kept.
    # The system default rejects pushes into a namespace without a quota of its own (0: none).
    feature_quota_management: bool = False
    default_system_reject_quota_bytes: int = 0
    # Notifications: this region runs a notifier (`meridian up` does), so health expects one here.
    meridian_notifier_enabled: bool = False
    meridian_notifier_listen: str = "0.0.0.0:8085"
    meridian_notifier_concurrency: int = 8
    # Quay's timeout of one delivery (seconds); attempts per event, the first retry's back-off (it
    # doubles), and how many events in a row may fail before a notification disables itself.
    notification_send_timeout: float = 10.0
    meridian_notification_attempts: int = 3
    meridian_notification_retry_sec: float = 5.0
    meridian_notification_max_failures: int = 3
    # How often one notifier looks for tags about to expire (repo_image_expiry); deliveries kept per notification.
    meridian_notification_expiry_interval_sec: float = 60.0
    meridian_notification_history: int = 100


    def storage_locations(self) -> dict[str, StorageLocation]:
        found = {}
        for name, spec in self.distributed_storage_config.items():
            location, problems = decode_location(name, spec)
            if location is None:
                raise ConfigError(problems=problems)
            found[name] = location
        return found

    def preferred_locations(self) -> list[str]:
        """This region's locations, nearest first; the first is its own (pushes are written there).
        The environment's preference was folded into DISTRIBUTED_STORAGE_PREFERENCE at load."""
        return list(self.distributed_storage_preference) or list(self.distributed_storage_config)

    def directly_opened_locations(self) -> list[str]:
        """Locations this region opens with their own driver: its own, and every location that has no
        blobstore URL (the others are reached through their blobstore)."""
        own = self.preferred_locations()[0] if self.distributed_storage_config else None
        return [name for name in self.distributed_storage_config
                if name == own or name not in self.meridian_blobstore_urls]


# --------------------------------------------------------------------------------------------
# Decoding: key by key, Quay's value types, all problems at once.

_FIELDS = {f.encode_name: f for f in msgspec.structs.fields(Config)}
IGNORED_KEYS: dict[str, str] = {key: reason for reason, keys in IGNORED_QUAY_KEYS.items() for key in keys
                                if key not in _FIELDS}
LISTEN_KEYS = tuple(name for name in _FIELDS if name.endswith("_LISTEN"))
PREFERENCE_ENV = ("MERIDIAN_DISTRIBUTED_STORAGE_PREFERENCE", "QUAY_DISTRIBUTED_STORAGE_PREFERENCE")
REGION_ENV = "MERIDIAN_REGION"


def _truthy(value: Any) -> bool:
    return value is True or str(value).strip().lower() in ("true", "1", "yes", "on")


# Quay keys whose value asks for something Meridian cannot do, where ignoring it would weaken what the
# operator relies on: refused, with the reason.
REFUSED_VALUES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "AUTHENTICATION_TYPE": (
        lambda value: value not in (None, "Database"),
        "expected Database: Meridian signs users in only against its own database; LDAP, OIDC, JWT, Keystone "
        "and AppToken sign-in are not implemented, and starting anyway would lock those users out"),
    "FEATURE_RESTRICTED_USERS": (
        _truthy, "expected false: restricted users are not implemented, so they would get every right of an "
                 "ordinary user"),
    "FEATURE_IMMUTABLE_TAGS": (
        _truthy, "expected false: immutable tags are not implemented, so a tag you made immutable could be "
                 "overwritten"),
    "FEATURE_FIPS": (_truthy, "expected false: Meridian makes no FIPS 140 claim"),
}

_TYPE_WORDS = {"int": "a whole number", "float": "a number", "bool": "true or false", "str": "a string",
               "array": "a list", "object": "a mapping", "null": "nothing"}
_BOOL_WORDS = {"yes": True, "on": True, "no": False, "off": False}
_ERROR_PATH = re.compile(r" - at `\$(.*)`$")


def _suggest(key: str, candidates: list[str]) -> str:
    upper = {c.upper(): c for c in candidates}
    if key.upper() in upper and key != upper[key.upper()]:
        return f" (did you mean {upper[key.upper()]}?)"
    close = difflib.get_close_matches(key.upper(), list(upper), n=1, cutoff=0.8)
    return f" (did you mean {upper[close[0]]}?)" if close else ""


def _allowed_literals(typ: Any) -> list[str]:
    for arg in (typing.get_args(typ) or ()):
        found = _allowed_literals(arg)
        if found:
            return found
    if typing.get_origin(typ) is Literal:
        return [str(v) for v in typing.get_args(typ)]
    return []


def _lax(value: Any, typ: Any) -> Any:
    """What msgspec's lax mode does not do on its own: YAML 1.1 booleans given as strings ('yes',
    'off'), and a number where a string is expected (an access key or password of digits only,
    which YAML reads as a number)."""
    args = typing.get_args(typ) or (typ,)
    if isinstance(value, str) and value.strip().lower() in _BOOL_WORDS and bool in args:
        return _BOOL_WORDS[value.strip().lower()]
    if isinstance(value, int) and not isinstance(value, bool) and str in args and int not in args and float not in args:
        return str(value)
    return value


def _convert(key: str, value: Any, typ: Any, line: int | None) -> tuple[bool, Any, Problem | None]:
    try:
        return True, msgspec.convert(_lax(value, typ), typ, strict=False), None
    except msgspec.ValidationError as exc:
        message = str(exc)
        found = _ERROR_PATH.search(message)
        sub = found.group(1) if found else ""
        shown_key = key + sub
        shown_value = _value_at(value, sub)
        text = message[: found.start()] if found else message
        expected = re.match(r"Expected `([^`]+)`, got `([^`]+)`", text)
        if expected:
            parts = [part.strip() for part in expected.group(1).split("|")]
            words = " or ".join(_TYPE_WORDS.get(part, part) for part in parts if part != "null" or len(parts) == 1)
            explanation = f"expected {words}"
        elif text.startswith("Invalid enum value"):
            explanation = f"expected one of {', '.join(_allowed_literals(typ))}"
        else:
            explanation = text[0].lower() + text[1:]
        return False, None, Problem(shown_key, f"value {_show(shown_key, shown_value)} is invalid: {explanation}", line)


def _value_at(value: Any, path: str) -> Any:
    for name, index in re.findall(r"\.([^.\[]+)|\[(\d+)\]", path):
        try:
            value = value[name] if name else value[int(index)]
        except (KeyError, IndexError, TypeError):
            return None
    return value


def parse_listen(value: str) -> tuple[str, int]:
    """`host:port` (`[v6]:port` for IPv6); raises ValueError saying what was expected."""
    expected = "expected host:port, e.g. 0.0.0.0:8080, 127.0.0.1:8080 or [::]:8080"
    found = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\]:(\d{1,5})|([A-Za-z0-9.-]*):(\d{1,5})", value.strip())
    if not found:
        raise ValueError(expected)
    host, port = (found.group(1), found.group(2)) if found.group(1) else (found.group(3), found.group(4))
    if not 1 <= int(port) <= 65535:
        raise ValueError(f"port {port} is out of range: expected 1 to 65535")
    try:
        if found.group(1):
            ipaddress.IPv6Address(host)
        elif host and re.fullmatch(r"[0-9.]+", host):
            ipaddress.IPv4Address(host)
        elif host and not all(re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?", part) for part in host.split(".")):
            raise ValueError
    except ValueError:
        raise ValueError(f"{host!r} is not an IP address or host name: {expected}") from None
    return host or "0.0.0.0", int(port)


def check_config(doc: Any, source: str = "config.yaml", *, lines: dict[tuple, int] | None = None,
                 environ: Mapping[str, str] | None = None) -> tuple[Config | None, list[Problem]]:
    """Decode a config document; returns the Config (None when there are errors) and every problem
    (errors and warnings). Never raises for a bad document."""
    lines = lines or {}
    environ = os.environ if environ is None else environ
    if doc is None:
        doc = {}
    if not isinstance(doc, Mapping):
        return None, [Problem("", f"expected a mapping of keys at the top level, got {type(doc).__name__}", 1)]
    _collect_secrets(doc)
    problems: list[Problem] = []
    values: dict[str, Any] = {}
    bad: set[str] = set()
    for key, value in doc.items():
        line = lines.get((key,))
        if not isinstance(key, str):
            problems.append(Problem(repr(key), "keys are names in capitals, e.g. SERVER_HOSTNAME", line))
            continue
        field = _FIELDS.get(key)
        if field is not None:
            _, converted, problem = _convert(key, value, field.type, line)
            if problem is None:
                values[field.name] = converted
            else:
                bad.add(key)
                problems.append(problem)
        elif key in REFUSED_VALUES:
            refuse, why = REFUSED_VALUES[key]
            if refuse(value):
                problems.append(Problem(key, f"value {_show(key, value)} is refused: {why}", line))
        elif key in IGNORED_KEYS or key.endswith(IGNORED_QUAY_KEY_SUFFIXES):
            continue
        else:
            suggestion = _suggest(key, list(_FIELDS) + list(IGNORED_KEYS) + list(REFUSED_VALUES))
            problems.append(Problem(key, f"unknown key, ignored{suggestion}", line, warning=True))

    preference_source = _environment_values(environ, values, problems)

    config = Config(**values)
    _check_semantics(config, doc, lines, bad, preference_source, problems)
    errors = [p for p in problems if not p.warning]
    problems.sort(key=lambda p: (p.line or 0, p.warning))
    return (None if errors else config), problems


def _environment_values(environ: Mapping[str, str], values: dict[str, Any], problems: list[Problem]) -> str | None:
    """The region and storage preference the environment sets (into values); returns the variable the
    preference came from, if any."""
    region = environ.get(REGION_ENV)
    if region is not None:
        if region.strip():
            values["meridian_region"] = region.strip()
        else:
            problems.append(Problem(f"{REGION_ENV} (environment)", "value '' is invalid: expected a region name"))
    for variable in PREFERENCE_ENV:
        if environ.get(variable, "").strip():
            values["distributed_storage_preference"] = environ[variable].split()
            return variable
    return None


# A problem reporter: (key, message, path of the key in the document or None for the key itself).
_Report = Callable[..., None]


def _check_semantics(config: Config, doc: Mapping, lines: dict[tuple, int], bad: set[str],
                     preference_source: str | None, problems: list[Problem]) -> None:
    def problem(key: str, message: str, path: tuple | None = None) -> None:
        problems.append(Problem(key, message, lines.get(path or (key.split(".")[0],))))

    locations = _check_locations(config, bad, lines, problems, problem)
    names = list(config.distributed_storage_config)
    preference_ok = _check_preference(config, names, bad, preference_source, problems, problem)
    _check_urls(config, doc, names, bad, problem)
    if config.feature_storage_replication and not config.distributed_storage_preference:
        problems.append(Problem(
            "", "Missing storage preference for geo-replication. Set DISTRIBUTED_STORAGE_PREFERENCE in config.yaml "
                "or the QUAY_DISTRIBUTED_STORAGE_PREFERENCE (or MERIDIAN_DISTRIBUTED_STORAGE_PREFERENCE) environment "
                "variable to this region's locations, nearest first, "
                "e.g. QUAY_DISTRIBUTED_STORAGE_PREFERENCE=\"us-east eu-west\"",
            lines.get(("FEATURE_STORAGE_REPLICATION",))))

    # Parameters a location needs are required only where this region opens it itself.
    if preference_ok and names and "MERIDIAN_BLOBSTORE_URLS" not in bad:
        _check_required_parameters(config, locations, problem)

    _check_tag_expiration(config, bad, problem)
    _check_numbers(config, bad, problem)
    if "MERIDIAN_BUS_PREFIX" not in bad and not re.fullmatch(r"[A-Za-z0-9_-]+", config.meridian_bus_prefix):
        problem("MERIDIAN_BUS_PREFIX", f"value {config.meridian_bus_prefix!r} is invalid: expected letters, digits, "
                                       "'_' or '-'")
    for key in LISTEN_KEYS:
        if key in bad:
            continue
        try:
            parse_listen(getattr(config, key.lower()))
        except ValueError as exc:
            problem(key, f"value {getattr(config, key.lower())!r} is invalid: {exc}")


def _check_locations(config: Config, bad: set[str], lines: dict[tuple, int], problems: list[Problem],
                     problem: _Report) -> dict[str, StorageLocation]:
    """The locations of DISTRIBUTED_STORAGE_CONFIG that decode, by name."""
    locations: dict[str, StorageLocation] = {}
    if "DISTRIBUTED_STORAGE_CONFIG" not in bad:
        for name, spec in config.distributed_storage_config.items():
            location, found = decode_location(name, spec, lines)
            problems.extend(found)
            if location is not None:
                locations[name] = location
        if not config.distributed_storage_config:
            problem("DISTRIBUTED_STORAGE_CONFIG", "value {} is invalid: expected at least one location")
    return locations


def _check_preference(config: Config, names: list[str], bad: set[str], preference_source: str | None,
                      problems: list[Problem], problem: _Report) -> bool:
    """The storage preference and default locations name configured locations; whether the preference does."""
    for key in ("DISTRIBUTED_STORAGE_PREFERENCE", "DISTRIBUTED_STORAGE_DEFAULT_LOCATIONS"):
        if key in bad or (key == "DISTRIBUTED_STORAGE_PREFERENCE" and preference_source):
            continue
        for index, name in enumerate(getattr(config, key.lower())):
            if name not in names:
                problem(key, f"value {name!r} is invalid: expected one of the locations in DISTRIBUTED_STORAGE_CONFIG "
                             f"({', '.join(names)})", (key, index))
    preference_ok = True
    if preference_source:
        for name in config.distributed_storage_preference:
            if name not in names:
                preference_ok = False
                problems.append(Problem(
                    f"{preference_source} (environment)",
                    f"storage preference value {name!r} is invalid: expected one of {', '.join(names)} "
                    "(QUAY_DISTRIBUTED_STORAGE_PREFERENCE/MERIDIAN_DISTRIBUTED_STORAGE_PREFERENCE or "
                    "DISTRIBUTED_STORAGE_PREFERENCE)"))
    elif any(name not in names for name in config.distributed_storage_preference):
        preference_ok = False
    return preference_ok


def _check_urls(config: Config, doc: Mapping, names: list[str], bad: set[str], problem: _Report) -> None:
    """DB_URI, NATS_URL, MERIDIAN_BLOBSTORE_URLS (and the service secret the blobstores share)."""
    if "DB_URI" not in bad and not config.db_uri.startswith(("postgresql://", "postgres://")):
        problem("DB_URI", f"value {_show('DB_URI', config.db_uri)} is invalid: expected a postgresql:// URI "
                          "(Meridian runs on PostgreSQL only)")
    if "NATS_URL" not in bad and not config.nats_url.startswith(("nats://", "tls://", "ws://", "wss://")):
        problem("NATS_URL", f"value {_show('NATS_URL', config.nats_url)} is invalid: expected a nats:// URL")
    if "MERIDIAN_BLOBSTORE_URLS" not in bad:
        for name, url in config.meridian_blobstore_urls.items():
            key = f"MERIDIAN_BLOBSTORE_URLS.{name}"
            if name not in names:
                problem(key, f"value {_show(key, url)} is invalid: expected a location of DISTRIBUTED_STORAGE_CONFIG "
                             f"({', '.join(names)})", ("MERIDIAN_BLOBSTORE_URLS", name))
            if not url.startswith(("http://", "https://")):
                problem(key, f"value {_show(key, url)} is invalid: expected an http(s) URL", ("MERIDIAN_BLOBSTORE_URLS", name))
        if config.meridian_blobstore_urls and len(config.meridian_service_secret or "") < 32:
            secret_path = ("MERIDIAN_SERVICE_SECRET",) if "MERIDIAN_SERVICE_SECRET" in doc else ("MERIDIAN_BLOBSTORE_URLS",)
            problem("MERIDIAN_SERVICE_SECRET", "value is invalid: expected a secret of at least 32 characters "
                                               "(blobstores authenticate each other with it); generate one with "
                                               "`openssl rand -hex 32`", secret_path)


def _check_required_parameters(config: Config, locations: dict[str, StorageLocation], problem: _Report) -> None:
    own = config.preferred_locations()[0]
    for name in config.directly_opened_locations():
        location = locations.get(name)
        if location is None:
            continue
        missing = location.params.missing()
        if missing:
            how = ("this region's own location" if name == own
                   else "opened directly by this region (it has no MERIDIAN_BLOBSTORE_URLS entry)")
            problem(f"DISTRIBUTED_STORAGE_CONFIG.{name}",
                    f"missing parameter(s) {', '.join(missing)} of {location.driver}: {how}",
                    ("DISTRIBUTED_STORAGE_CONFIG", name))


def _check_tag_expiration(config: Config, bad: set[str], problem: _Report) -> None:
    if "TAG_EXPIRATION_OPTIONS" not in bad:
        for index, option in enumerate(config.tag_expiration_options):
            if parse_duration(option) is None:
                problem("TAG_EXPIRATION_OPTIONS", f"value {option!r} is invalid: expected a number followed by s, m, "
                                                  "h, d or w (e.g. 2w)", ("TAG_EXPIRATION_OPTIONS", index))
    if "DEFAULT_TAG_EXPIRATION" in bad or "TAG_EXPIRATION_OPTIONS" in bad:
        return
    if parse_duration(config.default_tag_expiration) is None:
        problem("DEFAULT_TAG_EXPIRATION", f"value {config.default_tag_expiration!r} is invalid: expected a number "
                                          "followed by s, m, h, d or w (e.g. 2w)")
    elif config.default_tag_expiration not in config.tag_expiration_options:
        problem("DEFAULT_TAG_EXPIRATION", f"value {config.default_tag_expiration!r} is invalid: expected one of "
                                          f"TAG_EXPIRATION_OPTIONS ({', '.join(config.tag_expiration_options)})")


def _check_numbers(config: Config, bad: set[str], problem: _Report) -> None:
    """Counts, sizes and durations in their ranges."""
    refresh_keys = {"INSTANCE_SERVICE_KEY_REFRESH", "INSTANCE_SERVICE_KEY_EXPIRATION"}
    if not refresh_keys & bad and config.instance_service_key_refresh >= config.instance_service_key_expiration:
        problem("INSTANCE_SERVICE_KEY_REFRESH", f"value {config.instance_service_key_refresh!r} is invalid: expected "
                                                "fewer minutes than INSTANCE_SERVICE_KEY_EXPIRATION")
    _check_sign_in_numbers(config, bad, problem)
    for key in ("MERIDIAN_REPLICATION_CONCURRENCY", "MERIDIAN_REPLICATION_MAX_DELIVER", "DB_POOL_SIZE",
                "MERIDIAN_NOTIFIER_CONCURRENCY", "MERIDIAN_NOTIFICATION_ATTEMPTS", "MERIDIAN_NOTIFICATION_MAX_FAILURES",
                "MERIDIAN_NOTIFICATION_HISTORY", "MERIDIAN_API_MAX_BODY_BYTES"):
        if key not in bad and getattr(config, key.lower()) < 1:
            problem(key, f"value {getattr(config, key.lower())!r} is invalid: expected at least 1")
    if "PROXY_COUNT" not in bad and config.proxy_count < 0:
        problem("PROXY_COUNT", f"value {config.proxy_count!r} is invalid: expected 0 (X-Forwarded-For is not trusted) or "
                               "the number of reverse proxies in front of the gateway")
    for key in ("DEFAULT_SYSTEM_REJECT_QUOTA_BYTES",):
        if key not in bad and getattr(config, key.lower()) < 0:
            problem(key, f"value {getattr(config, key.lower())!r} is invalid: expected 0 (no default) or a number of bytes")
    # A lease shorter than a database round trip is never usable, and its check loop (four per lease)
    # would ask the database thousands of times a second: 0 (off), or 0.01 to 5 seconds.
    lease = config.meridian_lookup_cache_sec
    if "MERIDIAN_LOOKUP_CACHE_SEC" not in bad and not (lease == 0 or 0.01 <= lease <= 5):
        problem("MERIDIAN_LOOKUP_CACHE_SEC", f"value {lease!r} is invalid: expected 0 (off) or 0.01 to 5 seconds")
    # The relay's grace period is counted from just before a change's commit (shared/outbox.py
    # hold_for_lease): it must outlast the commit itself, and a relay that republishes at once would race
    # every publish after commit.
    relay_after = config.meridian_outbox_relay_after_sec
    if "MERIDIAN_OUTBOX_RELAY_AFTER_SEC" not in bad and not 1 <= relay_after <= 3600:
        problem("MERIDIAN_OUTBOX_RELAY_AFTER_SEC", f"value {relay_after!r} is invalid: expected 1 to 3600 seconds")
    for key in ("NOTIFICATION_SEND_TIMEOUT", "MERIDIAN_NOTIFICATION_RETRY_SEC", "MERIDIAN_NOTIFICATION_EXPIRY_INTERVAL_SEC"):
        if key not in bad and getattr(config, key.lower()) <= 0:
            problem(key, f"value {getattr(config, key.lower())!r} is invalid: expected a number of seconds above 0")


def _check_sign_in_numbers(config: Config, bad: set[str], problem: _Report) -> None:
    """Registry token lifetimes and failed-login throttling in their ranges."""
    if not {"TOKEN_VALIDITY_LIFETIME_S", "MERIDIAN_TOKEN_MAX_LIFETIME_SEC"} & bad:
        if config.token_validity_lifetime_s < 1:
            problem("TOKEN_VALIDITY_LIFETIME_S", f"value {config.token_validity_lifetime_s!r} is invalid: expected at least 1")
        elif config.token_validity_lifetime_s > config.meridian_token_max_lifetime_sec:
            problem("TOKEN_VALIDITY_LIFETIME_S", f"value {config.token_validity_lifetime_s!r} is invalid: expected at most "
                                                 f"MERIDIAN_TOKEN_MAX_LIFETIME_SEC ({config.meridian_token_max_lifetime_sec}); "
                                                 "raise that too if longer registry tokens are really wanted")
    for key in ("MERIDIAN_TOKEN_RECHECK_SEC", "MERIDIAN_LOGIN_BACKOFF_MAX_SEC", "MERIDIAN_LOGIN_FAILURE_WINDOW_SEC"):
        if key not in bad and getattr(config, key.lower()) <= 0:
            problem(key, f"value {getattr(config, key.lower())!r} is invalid: expected a number of seconds above 0")
    for key in ("MERIDIAN_LOGIN_FREE_ATTEMPTS", "MERIDIAN_LOGIN_ADDRESS_FREE_ATTEMPTS", "MERIDIAN_LOGIN_BACKOFF_SEC"):
        if key not in bad and getattr(config, key.lower()) < 0:
            problem(key, f"value {getattr(config, key.lower())!r} is invalid: expected 0 or more")


_DURATION_RE = re.compile(r"^([0-9]+)([smhdw])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(value: str) -> int | None:
    """Quay's duration strings ("2w", "1d", "0s") in seconds; None when malformed."""
    found = _DURATION_RE.match(value.strip()) if isinstance(value, str) else None
    return int(found.group(1)) * _UNIT_SECONDS[found.group(2)] if found else None


def valid_duration(value: str) -> int:
    """A duration check_config has validated (DEFAULT_TAG_EXPIRATION, TAG_EXPIRATION_OPTIONS), in seconds."""
    seconds = parse_duration(value)
    if seconds is None:
        raise ValueError(f"{value!r} is not a duration (s, m, h, d or w)")
    return seconds


def parse_config(doc: Any, source: str = "config.yaml", *, lines: dict[tuple, int] | None = None,
                 environ: Mapping[str, str] | None = None) -> Config:
    """The Config of a document, or ConfigError listing every error (warnings do not fail)."""
    config, problems = check_config(doc, source, lines=lines, environ=environ)
    if config is None:
        raise ConfigError(problems=[p for p in problems if not p.warning], source=source)
    return config


def check_file(path: str | os.PathLike[str], *, environ: Mapping[str, str] | None = None) -> tuple[Config | None, list[Problem]]:
    """`meridian config validate`: the Config (None when invalid) and every problem of a file."""
    try:
        document = read_document(path)
    except ConfigError as exc:
        return None, exc.problems or [Problem("", str(exc).split(": ", 1)[-1])]
    return check_config(document.data, document.source, lines=document.lines, environ=environ)


def load_config(path: str | os.PathLike[str], *, environ: Mapping[str, str] | None = None) -> Config:
    document = read_document(path)
    return parse_config(document.data, document.source, lines=document.lines, environ=environ)
