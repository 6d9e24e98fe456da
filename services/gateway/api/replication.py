"""Per-namespace replication (self-service, admin only) and replication status of a manifest.

GET/PUT /api/v1/organization/<namespace>/replication        {"locations": ["eu", ...]}
GET     /api/v1/repository/<namespace>/<repo>/manifest/<digest>/replication
"""
from __future__ import annotations

import json

from aiohttp import web

from shared.digest import InvalidDigest, parse_digest
from shared.errors import ApiError
from shared.registry import actor_for, manifests, replication

from ..state import gateway
from .base import ApiRoute, Op, namespace_for, repository_for, request_principal


async def _view(gw, namespace: str, namespace_id: int) -> dict:
    own = await replication.namespace_locations(gw.pool, namespace_id)
    defaults = list(gw.config.distributed_storage_default_locations)
    return {
        "namespace": namespace,
        "locations": own,
        "default_locations": defaults,
        "effective_locations": sorted(set(own) | set(defaults)),
        "replication_enabled": gw.switches.replication.enabled,
    }


async def get_namespace_replication(request: web.Request, namespace: str) -> web.Response:
    gw = gateway(request)
    row, _ = await namespace_for(request, namespace, need="member")
    return web.json_response(await _view(gw, namespace, row["id"]))


async def put_namespace_replication(request: web.Request, namespace: str) -> web.Response:
    gw = gateway(request)
    row, _ = await namespace_for(request, namespace, need="admin")
    namespace_id = row["id"]
    try:
        body = await request.json()
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "the body must be JSON like {\"locations\": [\"eu\"]}") from None
    locations = body.get("locations") if isinstance(body, dict) else None
    if not isinstance(locations, list) or not all(isinstance(x, str) for x in locations):
        raise ApiError(400, "locations must be a list of location names, e.g. {\"locations\": [\"eu\"]}")
    unknown = sorted(set(locations) - set(gw.location_ids))
    if unknown:
        raise ApiError(400, f"unknown location(s) {', '.join(unknown)}; known: {', '.join(sorted(gw.location_ids))}",
                       detail={"unknown": unknown})
    async with gw.registry.change(actor_for(request_principal(request))) as change:
        await replication.set_namespace_locations(change, namespace_id, [gw.location_ids[name] for name in locations])
    return web.json_response(await _view(gw, namespace, namespace_id))


async def manifest_replication(request: web.Request, repository: str, digest: str) -> web.Response:
    repo, _ = await repository_for(request, repository, "read")
    gw = gateway(request)
    try:
        digest = parse_digest(digest)
    except InvalidDigest as exc:
        raise ApiError(400, str(exc)) from None
    manifest_id = await manifests.id_of(gw.pool, repo["id"], digest)
    if manifest_id is None:
        raise ApiError(404, f"manifest {digest} not found in {repository}", error_type="not_found")
    rows = await manifests.blob_placements(gw.pool, manifest_id)
    namespace, namespace_id = repository.split("/", 1)[0], repo["namespace_id"]
    targets = gw.switches.replication.targets((await _view(gw, namespace, namespace_id))["effective_locations"])
    blobs = [
        {"digest": r["digest"], "size": r["size"], "locations": list(r["locations"]),
         "missing": sorted(set(targets) - set(r["locations"]))}
        for r in rows
    ]
    return web.json_response({
        "repository": repository,
        "manifest_digest": digest,
        "target_locations": targets,
        "complete": all(not b["missing"] for b in blobs),
        "blobs": blobs,
    }, dumps=lambda v: json.dumps(v))


ROUTES = [
    ApiRoute("namespace_replication", "/organization/{namespace}/replication", {
        "GET": Op(get_namespace_replication, "Locations the namespace's blobs replicate to"),
        "PUT": Op(put_namespace_replication, "Set the namespace's own replication locations",
                  body={"type": "object", "required": ["locations"],
                        "properties": {"locations": {"type": "array", "items": {"type": "string"}}}}),
    }),
    ApiRoute("manifest_replication", "/repository/{repository}/manifest/{digest}/replication", {
        "GET": Op(manifest_replication, "Where each blob of a manifest is stored, and what is still missing"),
    }),
]
