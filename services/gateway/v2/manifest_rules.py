"""Manifest parsing, validation and the artifact-type policy (FEATURE_GENERAL_OCI_SUPPORT,
ALLOWED_OCI_ARTIFACT_TYPES, IGNORE_UNKNOWN_MEDIATYPES). See docs/decisions.md "Media-type policy"."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from shared.config import IMAGE_CONFIG_TYPES, Config
from shared.digest import InvalidDigest, parse_digest
from shared.errors import RegistryError

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_SCHEMA1 = ("application/vnd.docker.distribution.manifest.v1+json", "application/vnd.docker.distribution.manifest.v1+prettyjws")
MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
EMPTY_CONFIG = "application/vnd.oci.empty.v1+json"
MAX_MANIFEST_BYTES = 4 * 1024 * 1024

IMAGE_LAYER_TYPES = frozenset(
    {
        "application/vnd.oci.image.layer.v1.tar",
        "application/vnd.oci.image.layer.v1.tar+gzip",
        "application/vnd.oci.image.layer.v1.tar+zstd",
        "application/vnd.oci.image.layer.nondistributable.v1.tar",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
        "application/vnd.docker.image.rootfs.diff.tar.gzip",
        "application/vnd.docker.image.rootfs.diff.tar",
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
    }
)
# Layers whose bytes may live elsewhere (they carry `urls`): their blobs need not be pushed.
NON_DISTRIBUTABLE = frozenset(t for t in IMAGE_LAYER_TYPES if "nondistributable" in t or "foreign" in t)
MEDIA_TYPE_RE = re.compile(r"^\w+/[-.\w]+(?:\+[-.\w]+)*$")
TAG_RE = re.compile(r"^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$")


@dataclass
class Descriptor:
    media_type: str
    digest: str
    size: int


@dataclass
class ParsedManifest:
    media_type: str
    is_index: bool
    config: Descriptor | None
    layers: list[Descriptor] = field(default_factory=list)
    children: list[Descriptor] = field(default_factory=list)
    subject: Descriptor | None = None
    artifact_type: str | None = None
    annotations: dict | None = None

    @property
    def config_media_type(self) -> str | None:
        return self.config.media_type if self.config else None


def invalid(message: str, **detail) -> RegistryError:
    return RegistryError("MANIFEST_INVALID", message, detail=detail or None)


def _descriptor(raw, where: str) -> Descriptor:
    if not isinstance(raw, dict):
        raise invalid(f"{where} must be a descriptor object")
    media_type, digest, size = raw.get("mediaType"), raw.get("digest"), raw.get("size")
    if not isinstance(media_type, str) or not MEDIA_TYPE_RE.match(media_type):
        raise invalid(f"{where}.mediaType {media_type!r} is not a valid media type")
    try:
        parse_digest(digest)
    except InvalidDigest as exc:
        raise invalid(f"{where}.digest: {exc}") from None
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise invalid(f"{where}.size {size!r} must be a non-negative integer")
    return Descriptor(media_type, digest, size)


def too_large(size: int) -> RegistryError:
    return RegistryError("SIZE_INVALID", f"manifest is {size} bytes; the limit is 4 MiB", status=413)


def parse(body: bytes, content_type: str | None) -> ParsedManifest:
    if len(body) > MAX_MANIFEST_BYTES:
        raise too_large(len(body))
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise invalid(f"manifest is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise invalid("manifest must be a JSON object")
    declared = doc.get("mediaType")
    header = (content_type or "").split(";")[0].strip() or None
    if header in DOCKER_SCHEMA1 or declared in DOCKER_SCHEMA1:
        raise invalid("Docker schema1 manifests are not supported; push schema2 or OCI")
    if doc.get("schemaVersion") != 2:
        raise invalid(f"schemaVersion must be 2, got {doc.get('schemaVersion')!r}")
    if declared is not None and header and header != declared and header not in ("application/json", "application/octet-stream"):
        raise invalid(f"Content-Type {header!r} does not match the manifest's mediaType {declared!r}")
    media_type = declared or (header if header in MANIFEST_TYPES + INDEX_TYPES else None)
    if media_type is None:
        media_type = OCI_INDEX if "manifests" in doc else OCI_MANIFEST
    if media_type not in MANIFEST_TYPES + INDEX_TYPES:
        raise invalid(f"unsupported manifest media type {media_type!r}")
    artifact_type = doc.get("artifactType")
    if artifact_type is not None and (not isinstance(artifact_type, str) or not MEDIA_TYPE_RE.match(artifact_type)):
        raise invalid(f"artifactType {artifact_type!r} is not a valid media type")
    annotations = doc.get("annotations")
    if annotations is not None and not (isinstance(annotations, dict) and all(isinstance(v, str) for v in annotations.values())):
        raise invalid("annotations must be a map of strings")
    subject = _descriptor(doc["subject"], "subject") if doc.get("subject") is not None else None
    parsed = ParsedManifest(media_type, media_type in INDEX_TYPES, None, subject=subject, artifact_type=artifact_type, annotations=annotations)
    if parsed.is_index:
        children = doc.get("manifests")
        if not isinstance(children, list):
            raise invalid("an index needs a manifests list")
        parsed.children = [_descriptor(c, f"manifests[{i}]") for i, c in enumerate(children)]
    else:
        if "config" not in doc:
            raise invalid("an image manifest needs a config descriptor")
        parsed.config = _descriptor(doc["config"], "config")
        layers = doc.get("layers", [])
        if not isinstance(layers, list):
            raise invalid("layers must be a list")
        parsed.layers = [_descriptor(layer, f"layers[{i}]") for i, layer in enumerate(layers)]
    return parsed


def enforce_policy(parsed: ParsedManifest, config: Config) -> None:
    """Refuse artifact and layer types the registry is not configured to hold."""
    if parsed.is_index or config.ignore_unknown_mediatypes:
        return
    config_type = parsed.config_media_type
    is_image = config_type in IMAGE_CONFIG_TYPES and parsed.artifact_type is None
    if is_image:
        allowed_layers = IMAGE_LAYER_TYPES | set(config.allowed_oci_artifact_types.get(config_type, ()))
        kind = "image"
    else:
        kind = parsed.artifact_type if config_type == EMPTY_CONFIG else config_type
        if not config.feature_general_oci_support:
            raise invalid(
                f"artifact type {kind!r} refused: OCI artifacts are disabled (FEATURE_GENERAL_OCI_SUPPORT is false)",
                artifactType=kind,
            )
        if kind not in config.allowed_oci_artifact_types and kind not in IMAGE_CONFIG_TYPES:
            raise invalid(
                f"artifact type {kind!r} is not allowed: add it to ALLOWED_OCI_ARTIFACT_TYPES "
                "or set IGNORE_UNKNOWN_MEDIATYPES: true",
                artifactType=kind,
            )
        allowed_layers = set(config.allowed_oci_artifact_types.get(kind, ())) | {EMPTY_CONFIG}
        if kind in IMAGE_CONFIG_TYPES:
            allowed_layers |= IMAGE_LAYER_TYPES
    for index, layer in enumerate(parsed.layers):
        if layer.media_type not in allowed_layers:
            raise invalid(
                f"layer media type {layer.media_type!r} is not allowed for {kind} manifests: add it to "
                "ALLOWED_OCI_ARTIFACT_TYPES or set IGNORE_UNKNOWN_MEDIATYPES: true",
                layer=index,
                mediaType=layer.media_type,
            )
