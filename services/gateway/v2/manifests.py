"""Manifest PUT/GET/HEAD/DELETE by tag and by digest."""
from __future__ import annotations

import datetime as dt
import json

from aiohttp import web
from multidict import CIMultiDict

from shared.config import IMAGE_CONFIG_TYPES, parse_duration
from shared.digest import InvalidDigest, digest_of, parse_digest
from shared.errors import RegistryError
from shared.locations import BlobMissing, LocationUnavailable
from shared.model import labels as label_model
from shared.registry import actor_for, blobs, manifests, repositories, tags
from shared.registry.manifests import NewManifest, unknown_reference

from ..auth import Action
from . import manifest_rules as rules
from .base import audit, authorize, content_length, ensure_repository, gateway
from .edge import text_problem


def _is_digest(reference: str) -> bool:
    return ":" in reference


def _checked_reference(reference: str) -> str:
    if _is_digest(reference):
        try:
            return parse_digest(reference)
        except InvalidDigest as exc:
            raise RegistryError("DIGEST_INVALID", str(exc), detail={"reference": reference}) from None
    if not rules.TAG_RE.match(reference):
        raise RegistryError("MANIFEST_INVALID", f"invalid tag {reference!r}", detail={"tag": reference})
    return reference


async def _load(request: web.Request, name: str, reference: str):
    identity = await authorize(request, name, Action.PULL)
    reference = _checked_reference(reference)
    gw = gateway(request)
    if _is_digest(reference):
        manifest = await manifests.get_by_digest(gw.pool, name, reference, gw.lookups)
    else:
        manifest = await manifests.get_by_tag(gw.pool, name, reference, gw.lookups)
    if manifest is None:
        if await repositories.get_id(gw.pool, name) is None:
            raise RegistryError("NAME_UNKNOWN", detail={"name": name})
        raise RegistryError("MANIFEST_UNKNOWN", detail={"reference": reference})
    return manifest, identity


def _headers(manifest) -> dict[str, str]:
    return {"Content-Type": manifest.media_type, "Docker-Content-Digest": manifest.digest, "ETag": f'"{manifest.digest}"'}


async def get_manifest(request: web.Request, name: str, reference: str) -> web.Response:
    manifest, identity = await _load(request, name, reference)
    body = await manifests.body_of(gateway(request).pool, manifest)
    if body is None:  # deleted between the lookup and now
        raise RegistryError("MANIFEST_UNKNOWN", detail={"reference": reference})
    audit(request, "pull_repo", identity, name, repository_id=manifest.repository_id, namespace_id=manifest.namespace_id,
          **({"manifest_digest": manifest.digest} if _is_digest(reference) else {"tag": reference, "manifest_digest": manifest.digest}))
    return web.Response(body=body, headers=_headers(manifest))


async def head_manifest(request: web.Request, name: str, reference: str) -> web.StreamResponse:
    manifest, _ = await _load(request, name, reference)
    response = web.StreamResponse(status=200, headers=_headers(manifest))
    response.content_length = manifest.size
    await response.prepare(request)
    return response


async def put_manifest(request: web.Request, name: str, reference: str) -> web.Response:
    identity = await authorize(request, name, Action.PUSH)
    gw = gateway(request)
    reference = _checked_reference(reference)
    body = await _read_limited(request, rules.MAX_MANIFEST_BYTES)
    parsed = rules.parse(body, request.headers.get("Content-Type"))
    rules.enforce_policy(parsed, gw.config)
    digest = _digest_for(body, reference)
    tag_params = request.query.getall("tag", [])
    tag_names = _tag_names(reference, tag_params)
    repo = await ensure_repository(request, name, identity)
    manifest = NewManifest(
        digest=digest, media_type=parsed.media_type, body=body, artifact_type=parsed.artifact_type,
        config_media_type=parsed.config_media_type, subject_digest=parsed.subject.digest if parsed.subject else None,
        annotations=parsed.annotations, total_size=len(body))
    found = await _link_blobs(gw, name, repo, parsed, manifest)
    await _link_children(gw, name, repo, parsed, manifest)
    manifest.labels, manifest.expires_at = await _config_labels(gw, name, parsed, found)
    async with gw.registry.change(actor_for(identity.principal)) as change:
        await manifests.put(change, repo, manifest, tag_names)
    audit(request, "push_repo", identity, name, manifest_digest=digest, tags=tag_names)
    headers = CIMultiDict({"Location": f"/v2/{name}/manifests/{digest}", "Docker-Content-Digest": digest,
                           "Content-Length": "0"})
    if parsed.subject:
        headers["OCI-Subject"] = parsed.subject.digest
    for tag in tag_params:  # the spec's answer to `?tag=`: one OCI-Tag header per tag applied
        headers.add("OCI-Tag", tag)
    return web.Response(status=201, headers=headers)


def _digest_for(body: bytes, reference: str) -> str:
    """The manifest's digest: the reference's algorithm when pushed by digest (which must match)."""
    if not _is_digest(reference):
        return digest_of(body)
    digest = digest_of(body, reference.split(":", 1)[0])
    if digest != reference:
        raise RegistryError("DIGEST_INVALID", "manifest digest does not match the reference",
                            detail={"expected": reference, "computed": digest})
    return digest


def _tag_names(reference: str, tag_params: list[str]) -> list[str]:
    """The tag of the reference (if it is one) and each `?tag=`, checked, without repeats."""
    names = [] if _is_digest(reference) else [reference]
    for extra in tag_params:
        if _is_digest(extra) or not rules.TAG_RE.match(extra):
            raise RegistryError("MANIFEST_INVALID", f"invalid tag {extra!r}", detail={"tag": extra})
        if extra not in names:
            names.append(extra)
    return names


async def _link_blobs(gw, name: str, repo, parsed, manifest: NewManifest) -> dict:
    """Record the config and layers the manifest uses; refuse one the repository lacks (unless it may
    be missing: non-distributable, or MERIDIAN_SPARSE_MANIFESTS) or whose size differs. Returns what
    was found, by digest."""
    blob_refs = ([parsed.config] if parsed.config else []) + parsed.layers
    found = await blobs.sizes_in_repository(gw.pool, repo.id, [d.digest for d in blob_refs])
    for descriptor in blob_refs:
        hit = found.get(descriptor.digest)
        if hit is None:
            if descriptor is not parsed.config and rules.missing_layer_allowed(descriptor, gw.config):
                continue
            raise unknown_reference("blob", descriptor.digest, name)
        if hit[1] != descriptor.size:
            raise rules.invalid(f"descriptor of {descriptor.digest} says {descriptor.size} bytes; the blob has {hit[1]}",
                                digest=descriptor.digest)
        manifest.blob_ids.append(hit[0])
        manifest.total_size += hit[1]
    return found


async def _link_children(gw, name: str, repo, parsed, manifest: NewManifest) -> None:
    """Record an index's children; refuse a missing one unless the sparse rules allow it."""
    if not parsed.children:
        return
    known = await manifests.ids_in_repository(gw.pool, repo.id, [c.digest for c in parsed.children])
    for child in parsed.children:
        if child.digest not in known:
            if rules.missing_child_allowed(child, gw.config):
                continue  # a sparse index: the child may come later, or never
            if gw.config.feature_sparse_index:
                raise RegistryError("MANIFEST_BLOB_UNKNOWN", f"manifest {child.digest} is not in {name}; a sparse "
                                    "index may omit only children whose platform.architecture is set and not in "
                                    "SPARSE_INDEX_REQUIRED_ARCHS", detail={"digest": child.digest})
            raise unknown_reference("manifest", child.digest, name)
        manifest.child_ids.append(known[child.digest])
        manifest.total_size += child.size


MAX_CONFIG_BYTES = 1 << 20
EXPIRES_AFTER = "quay.expires-after"


async def _read_small_blob(gw, name: str, digest: str) -> bytes:
    """A small blob of the repository (an image config), from the nearest location holding it."""
    blob = await blobs.in_repository(gw.pool, name, digest)
    if blob is None:
        raise LookupError(digest)
    for location in gw.locations.candidates(blob.locations):
        try:
            opened = await gw.locations.open(location, digest, blob.size)
        except (BlobMissing, LocationUnavailable):
            continue
        try:
            if opened.local_file is not None:
                return opened.local_file.read_bytes()
            out = bytearray()
            async for block in opened.chunks:
                out += block
            return bytes(out)
        finally:
            opened.release()
    raise LookupError(digest)


async def _config_labels(gw, name: str, parsed, found) -> tuple[dict[str, str], dt.datetime | None]:
    """Labels of an image config (imported with the manifest), and the tag expiry that the
    `quay.expires-after` label asks for. A config that cannot be read or parsed imports nothing."""
    if parsed.config is None or parsed.config_media_type not in IMAGE_CONFIG_TYPES:
        return {}, None
    hit = found.get(parsed.config.digest)
    if hit is None or hit[1] > MAX_CONFIG_BYTES:
        return {}, None
    try:
        document = json.loads(await _read_small_blob(gw, name, parsed.config.digest))
        raw = (document.get("config") or {}).get("Labels") or {}
    except Exception:  # unreachable right now, or not JSON: labels are a convenience
        return {}, None
    labels = {}
    for key, value in raw.items() if isinstance(raw, dict) else ():
        if isinstance(key, str) and isinstance(value, str):
            if text_problem(key) or text_problem(value):
                continue  # NUL or a lone surrogate: not storable text, so not imported (like any invalid label)
            try:
                label_model.check(key, value, imported=True)
            except label_model.LabelError:
                continue
            labels[key] = value
    expires_at = None
    seconds = parse_duration(labels.get(EXPIRES_AFTER, "").strip()) if EXPIRES_AFTER in labels else None
    if seconds:
        try:
            expires_at = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds)
        except OverflowError:  # past year 9999 (e.g. 99999999999w): as good as never, so no expiry
            expires_at = None
    return labels, expires_at


async def _read_limited(request: web.Request, limit: int) -> bytes:
    declared = content_length(request)
    if declared is not None and declared > limit:
        raise rules.too_large(declared)
    body = bytearray()
    async for chunk in request.content.iter_chunked(65536):
        body += chunk
        if len(body) > limit:
            raise rules.too_large(len(body))
    return bytes(body)


async def delete_manifest(request: web.Request, name: str, reference: str) -> web.Response:
    identity = await authorize(request, name, Action.DELETE)
    reference = _checked_reference(reference)
    gw = gateway(request)
    repo = await repositories.get(gw.pool, name)
    if repo is None:
        raise RegistryError("NAME_UNKNOWN", detail={"name": name})
    async with gw.registry.change(actor_for(identity.principal)) as change:
        if _is_digest(reference):
            ended = await manifests.delete(change, repo, reference)
            if ended is None:
                raise RegistryError("MANIFEST_UNKNOWN", detail={"reference": reference})
        else:
            if not await tags.delete(change, repo, reference):
                raise RegistryError("MANIFEST_UNKNOWN", detail={"reference": reference})
            ended = [reference]
    audit(request, "delete_tag" if not _is_digest(reference) else "delete_manifest", identity, name,
          reference=reference, tags=ended)
    return web.Response(status=202)
