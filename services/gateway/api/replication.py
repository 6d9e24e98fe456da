"""Per-namespace replication (self-service, admin only) and replication status of a manifest.

GET/PUT /api/v1/organization/<namespace>/replication        {"locations": ["eu", ...]}
GET     /api/v1/repository/<namespace>/<repo>/manifest/<digest>/replication
"""
from __future__ import annotations

import json

from aiohttp import web

from shared.digest import InvalidDigest, parse_digest
from shared.errors import ApiError

from ..v2.base import gateway
from .base import ApiRoute, Op, namespace_for, repository_for


async def _namespace_id(gw, namespace: str) -> int:
    namespace_id = await gw.pool.fetchval("SELECT id FROM namespaces WHERE name = $1 AND deleted_at IS NULL", namespace)
    if namespace_id is None:
        raise ApiError(404, f"organization {namespace!r} not found", error_type="not_found")
    return namespace_id


async def _view(gw, namespace: str, namespace_id: int) -> dict:
    rows = await gw.pool.fetch(
        "SELECT l.name FROM namespace_replication nr JOIN storage_locations l ON l.id = nr.location_id "
        "WHERE nr.namespace_id = $1 ORDER BY l.name",
        namespace_id,
    )
    own = [r["name"] for r in rows]
    defaults = list(gw.config.distributed_storage_default_locations)
    return {
        "namespace": namespace,
        "locations": own,
        "default_locations": defaults,
        "effective_locations": sorted(set(own) | set(defaults)),
        "replication_enabled": gw.config.feature_storage_replication,
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
    async with gw.pool.acquire() as conn:
        async with conn.transaction():
            await conn.execute("DELETE FROM namespace_replication WHERE namespace_id = $1", namespace_id)
            await conn.executemany(
                "INSERT INTO namespace_replication (namespace_id, location_id) VALUES ($1, $2)",
                [(namespace_id, gw.location_ids[name]) for name in sorted(set(locations))],
            )
    return web.json_response(await _view(gw, namespace, namespace_id))


async def manifest_replication(request: web.Request, repository: str, digest: str) -> web.Response:
    await repository_for(request, repository, "read")
    gw = gateway(request)
    try:
        digest = parse_digest(digest)
    except InvalidDigest as exc:
        raise ApiError(400, str(exc)) from None
    manifest_id = await gw.pool.fetchval(
        "SELECT m.id FROM manifests m JOIN repositories r ON r.id = m.repository_id "
        "WHERE r.full_name = $1 AND m.digest = $2 AND r.state <> 'deleted'",
        repository, digest,
    )
    if manifest_id is None:
        raise ApiError(404, f"manifest {digest} not found in {repository}", error_type="not_found")
    rows = await gw.pool.fetch(
        """
        WITH RECURSIVE tree(id) AS (
            SELECT $1::bigint UNION SELECT c.child_id FROM manifest_children c JOIN tree t ON c.parent_id = t.id
        )
        SELECT b.digest, b.size, coalesce(array_agg(l.name ORDER BY l.name) FILTER (WHERE l.name IS NOT NULL), '{}') AS locations
        FROM tree JOIN manifest_blobs mb ON mb.manifest_id = tree.id JOIN blobs b ON b.id = mb.blob_id
        LEFT JOIN blob_placements p ON p.blob_id = b.id LEFT JOIN storage_locations l ON l.id = p.location_id
        GROUP BY b.digest, b.size ORDER BY b.digest
        """,
        manifest_id,
    )
    namespace = repository.split("/", 1)[0]
    namespace_id = await _namespace_id(gw, namespace)
    targets = (await _view(gw, namespace, namespace_id))["effective_locations"] if gw.config.feature_storage_replication else []
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
