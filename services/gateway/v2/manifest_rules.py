"""Manifest parsing, validation and the artifact-type policy (FEATURE_GENERAL_OCI_SUPPORT,
ALLOWED_OCI_ARTIFACT_TYPES, IGNORE_UNKNOWN_MEDIATYPES). See docs/decisions.md "Media-type policy".

`parse` runs one named check per rule, in the order a client would fix them: size, JSON, schema
version, media type (and its agreement with Content-Type), artifactType, annotations, subject, then
the index's children or the image's config and layers. Each refusal is MANIFEST_INVALID (SIZE_INVALID
for size) with a message naming the field."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from shared.config import IMAGE_CONFIG_TYPES, Config
from shared.digest import InvalidDigest, parse_digest
from shared.errors import RegistryError

from .edge import text_problem

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
# \Z, not $: `$` also matches before a trailing newline, which would let "v1\n" in as a tag.
MEDIA_TYPE_RE = re.compile(r"^\w+/[-.\w]+(?:\+[-.\w]+)*\Z")
TAG_RE = re.compile(r"^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}\Z")
# Content types a client may send without naming the manifest's own media type.
GENERIC_CONTENT_TYPES = ("application/json", "application/octet-stream")


@dataclass
class Platform:
    """An index child's `platform` (the fields a sparse index is filtered by)."""

    os: str | None
    architecture: str | None
    variant: str | None = None


@dataclass
class Descriptor:
    media_type: str
    digest: str
    size: int
    # Only index children carry one.
    platform: Platform | None = None


@dataclass
class ParsedManifest:
    media_type: str
    is_index: bool
    config: Descriptor | None
    layers: list[Descriptor] = field(default_factory=list)
    children: list[Descriptor] = field(default_factory=list)
    subject: Descriptor | None = None
    artifact_type: str | None = None
    annotations: dict[str, str] | None = None

    @property
    def config_media_type(self) -> str | None:
        return self.config.media_type if self.config else None


def invalid(message: str, **detail: object) -> RegistryError:
    return RegistryError("MANIFEST_INVALID", message, detail=detail or None)


def too_large(size: int) -> RegistryError:
    return RegistryError("SIZE_INVALID", f"manifest is {size} bytes; the limit is 4 MiB", status=413)


def parse(body: bytes, content_type: str | None) -> ParsedManifest:
    doc = _json_object(body)
    declared = doc.get("mediaType")
    header = (content_type or "").split(";")[0].strip() or None
    _check_not_schema1(declared, header)
    _check_schema_version(doc)
    _check_content_type_agrees(declared, header)
    media_type = _media_type(doc, declared, header)
    artifact_type = _artifact_type(doc)
    annotations = _annotations(doc)
    subject = _subject(doc)
    parsed = ParsedManifest(media_type, media_type in INDEX_TYPES, None, subject=subject, artifact_type=artifact_type,
                            annotations=annotations)
    if parsed.is_index:
        parsed.children = _index_children(doc)
    else:
        parsed.config, parsed.layers = _image_parts(doc)
    return parsed


# --- the checks `parse` runs, in order -----------------------------------------------------------


def _json_object(body: bytes) -> dict:
    if len(body) > MAX_MANIFEST_BYTES:
        raise too_large(len(body))
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise invalid(f"manifest is not valid JSON: {exc}") from None
    except RecursionError:  # thousands of nested brackets: refused, not a 500
        raise invalid("manifest is not valid JSON: nested too deeply") from None
    if not isinstance(doc, dict):
        raise invalid("manifest must be a JSON object")
    return doc


def _check_not_schema1(declared: object, header: str | None) -> None:
    if header in DOCKER_SCHEMA1 or declared in DOCKER_SCHEMA1:
        raise invalid("Docker schema1 manifests are not supported; push schema2 or OCI")


def _check_schema_version(doc: dict) -> None:
    if doc.get("schemaVersion") != 2:
        raise invalid(f"schemaVersion must be 2, got {doc.get('schemaVersion')!r}")


def _check_content_type_agrees(declared: object, header: str | None) -> None:
    if declared is not None and header and header != declared and header not in GENERIC_CONTENT_TYPES:
        raise invalid(f"Content-Type {header!r} does not match the manifest's mediaType {declared!r}")


def _media_type(doc: dict, declared: object, header: str | None) -> str:
    """The body's mediaType, else a specific Content-Type, else what the body's shape says."""
    media_type = declared or (header if header in MANIFEST_TYPES + INDEX_TYPES else None)
    if media_type is None:
        media_type = OCI_INDEX if "manifests" in doc else OCI_MANIFEST
    if media_type not in MANIFEST_TYPES + INDEX_TYPES:
        raise invalid(f"unsupported manifest media type {media_type!r}")
    return str(media_type)


def _artifact_type(doc: dict) -> str | None:
    artifact_type = doc.get("artifactType")
    if artifact_type is not None and (not isinstance(artifact_type, str) or not MEDIA_TYPE_RE.match(artifact_type)):
        raise invalid(f"artifactType {artifact_type!r} is not a valid media type")
    return artifact_type


def _annotations(doc: dict) -> dict[str, str] | None:
    annotations = doc.get("annotations")
    if annotations is not None and not (isinstance(annotations, dict) and all(isinstance(v, str) for v in annotations.values())):
        raise invalid("annotations must be a map of strings")
    for key, value in (annotations or {}).items():
        problem = text_problem(key) or text_problem(value)
        if problem is not None:  # PostgreSQL's jsonb takes neither NUL nor lone surrogates
            raise invalid(f"annotation {key[:100]!r} {problem}", annotation=key[:100].encode("utf-8", "replace").decode())
    return annotations


def _subject(doc: dict) -> Descriptor | None:
    return _descriptor(doc["subject"], "subject") if doc.get("subject") is not None else None


def _index_children(doc: dict) -> list[Descriptor]:
    children = doc.get("manifests")
    if not isinstance(children, list):
        raise invalid("an index needs a manifests list")
    return [_index_child(child, f"manifests[{i}]") for i, child in enumerate(children)]


def _image_parts(doc: dict) -> tuple[Descriptor, list[Descriptor]]:
    if "config" not in doc:
        raise invalid("an image manifest needs a config descriptor")
    config = _descriptor(doc["config"], "config")
    layers = doc.get("layers", [])
    if not isinstance(layers, list):
        raise invalid("layers must be a list")
    return config, [_descriptor(layer, f"layers[{i}]") for i, layer in enumerate(layers)]


def _descriptor(raw: object, where: str) -> Descriptor:
    if not isinstance(raw, dict):
        raise invalid(f"{where} must be a descriptor object")
    media_type, digest, size = raw.get("mediaType"), raw.get("digest"), raw.get("size")
    if not isinstance(media_type, str) or not MEDIA_TYPE_RE.match(media_type):
        raise invalid(f"{where}.mediaType {media_type!r} is not a valid media type")
    if not isinstance(digest, str):
        raise invalid(f"{where}.digest: invalid digest format: {digest!r}")
    try:
        parse_digest(digest)
    except InvalidDigest as exc:
        raise invalid(f"{where}.digest: {exc}") from None
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise invalid(f"{where}.size {size!r} must be a non-negative integer")
    return Descriptor(media_type, digest, size)


def _index_child(raw: object, where: str) -> Descriptor:
    child = _descriptor(raw, where)
    platform = raw.get("platform") if isinstance(raw, dict) else None  # a dict: _descriptor refused anything else
    child.platform = _platform(platform, f"{where}.platform")
    return child


def _platform(raw: object, where: str) -> Platform | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise invalid(f"{where} must be an object")
    fields = {key: raw.get(key) for key in ("os", "architecture", "variant")}
    for key, value in fields.items():
        if value is not None and not isinstance(value, str):
            raise invalid(f"{where}.{key} {value!r} must be a string")
    return Platform(**fields)


# --- the artifact-type policy --------------------------------------------------------------------


def enforce_policy(parsed: ParsedManifest, config: Config) -> None:
    """Refuse what the operator chose not to hold. By default every well-formed manifest is held: the
    image spec forbids refusing an artifactType or layer media type only because it is unknown."""
    if parsed.is_index:
        return  # its children were checked when they were pushed
    kind = artifact_kind(parsed)
    if kind is not None and not config.feature_general_oci_support:
        raise invalid(
            f"artifact type {kind!r} refused: OCI artifacts are disabled (FEATURE_GENERAL_OCI_SUPPORT is false)",
            artifactType=kind,
        )
    allowed = config.allowed_oci_artifact_types
    if allowed is None or config.ignore_unknown_mediatypes:
        return
    _check_layers(parsed, kind or "image", _allowed_layer_types(parsed, kind, allowed))


def artifact_kind(parsed: ParsedManifest) -> str | None:
    """None for an image (an image config and no artifactType); for an artifact, what names it: its
    artifactType when the config is the empty descriptor, else its config media type."""
    config_type = parsed.config_media_type
    if config_type in IMAGE_CONFIG_TYPES and parsed.artifact_type is None:
        return None
    if config_type == EMPTY_CONFIG and parsed.artifact_type:
        return parsed.artifact_type
    return config_type


def _allowed_layer_types(parsed: ParsedManifest, kind: str | None, allowed: dict[str, list[str]]) -> set[str]:
    """Layer types ALLOWED_OCI_ARTIFACT_TYPES lets this manifest carry; refuses an artifact type it lacks."""
    if kind is None:
        return set(IMAGE_LAYER_TYPES).union(allowed.get(parsed.config_media_type or "", ()))
    if kind not in allowed and kind not in IMAGE_CONFIG_TYPES:
        raise invalid(
            f"artifact type {kind!r} is not allowed: add it to ALLOWED_OCI_ARTIFACT_TYPES "
            "or set IGNORE_UNKNOWN_MEDIATYPES: true",
            artifactType=kind,
        )
    permitted = set(allowed.get(kind, ())) | {EMPTY_CONFIG}
    if kind in IMAGE_CONFIG_TYPES:
        permitted |= IMAGE_LAYER_TYPES
    return permitted


def _check_layers(parsed: ParsedManifest, kind: str, permitted: set[str]) -> None:
    for index, layer in enumerate(parsed.layers):
        if layer.media_type not in permitted:
            raise invalid(
                f"layer media type {layer.media_type!r} is not allowed for {kind} manifests: add it to "
                "ALLOWED_OCI_ARTIFACT_TYPES or set IGNORE_UNKNOWN_MEDIATYPES: true",
                layer=index,
                mediaType=layer.media_type,
            )


# --- sparse manifests ----------------------------------------------------------------------------


def missing_child_allowed(child: Descriptor, config: Config) -> bool:
    """May an index be stored without this child? MERIDIAN_SPARSE_MANIFESTS: always. Quay's
    FEATURE_SPARSE_INDEX: when SPARSE_INDEX_REQUIRED_ARCHS is non-empty and the child's platform names an
    architecture outside it (an empty list, or a child without an architecture, stays required, as in Quay)."""
    if config.meridian_sparse_manifests:
        return True
    if not config.feature_sparse_index or not config.sparse_index_required_archs:
        return False
    architecture = child.platform.architecture if child.platform else None
    return architecture is not None and architecture not in config.sparse_index_required_archs


def missing_layer_allowed(descriptor: Descriptor, config: Config) -> bool:
    """May an image be stored without this blob? Non-distributable layers live elsewhere; with
    MERIDIAN_SPARSE_MANIFESTS any layer may be missing (never the config, which clients read first)."""
    return descriptor.media_type in NON_DISTRIBUTABLE or config.meridian_sparse_manifests
