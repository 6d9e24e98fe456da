"""Small HTTP helpers for the /v2 tests."""
from __future__ import annotations

import asyncio
import hashlib
import json
import os
import time

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def error_codes(body: dict) -> list[str]:
    return [e["code"] for e in body.get("errors", [])]


async def push_blob(reg, name: str, data: bytes) -> str:
    digest = sha256(data)
    async with reg.http.post(reg.v2(f"{name}/blobs/uploads/"), params={"digest": digest}, data=data) as r:
        assert r.status == 201, await r.text()
        assert r.headers["Docker-Content-Digest"] == digest
    return digest


def descriptor(media_type: str, data: bytes, **extra) -> dict:
    return {"mediaType": media_type, "digest": sha256(data), "size": len(data), **extra}


async def push_image(reg, name: str, tag: str | None = None, *, layers: int = 1, extra: dict | None = None,
                     layer_bytes: list[bytes] | None = None, labels: dict[str, str] | None = None) -> tuple[str, bytes]:
    """Push config + layers (random, or `layer_bytes`) + an OCI manifest; returns (manifest digest, manifest bytes)."""
    config_doc: dict[str, object] = {"architecture": "amd64", "os": "linux", "nonce": os.urandom(8).hex()}
    if labels is not None:
        config_doc["config"] = {"Labels": labels}
    config = json.dumps(config_doc).encode()
    await push_blob(reg, name, config)
    layer_descs = []
    for layer in layer_bytes if layer_bytes is not None else (os.urandom(2048) for _ in range(layers)):
        await push_blob(reg, name, layer)
        layer_descs.append(descriptor(LAYER_GZIP, layer))
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": descriptor(OCI_CONFIG, config), "layers": layer_descs}
    manifest.update(extra or {})
    body = json.dumps(manifest).encode()
    digest = sha256(body)
    async with reg.http.put(reg.v2(f"{name}/manifests/{tag or digest}"), data=body, headers={"Content-Type": OCI_MANIFEST}) as r:
        assert r.status == 201, await r.text()
        assert r.headers["Docker-Content-Digest"] == digest
    return digest, body


async def eventually(predicate, timeout: float = 15.0, interval: float = 0.1, what: str = "condition"):
    """Wait for an async predicate to return a truthy value, with a deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout}s")
        await asyncio.sleep(interval)
