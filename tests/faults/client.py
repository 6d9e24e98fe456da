"""A registry client that behaves like a well-written one under faults: it retries a request that
got 503 after the Retry-After the server asked for, and a request whose connection failed; it
records every server error it saw, so a scenario can assert what the registry answered (rule 4: a
dependency down is 503 + Retry-After, never another 5xx)."""
from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from tests.helpers import LAYER_GZIP, OCI_CONFIG, OCI_MANIFEST, descriptor, sha256

MAX_RETRY_AFTER = 10.0  # a client honours Retry-After; the scenarios' outages are short


@dataclass
class Seen:
    """One answer that was not a success: a 5xx or a failed connection."""
    at: float              # time.monotonic()
    method: str
    path: str
    status: int | None     # None: the connection failed
    retry_after: str | None
    body: str

    @property
    def acceptable_unavailable(self) -> bool:
        """503 with a Retry-After a client can act on (seconds, as Distribution and Quay send)."""
        if self.status != 503 or self.retry_after is None:
            return False
        try:
            return float(self.retry_after) >= 0
        except ValueError:
            return False

    def __str__(self) -> str:
        what = "connection failed" if self.status is None else f"{self.status} Retry-After={self.retry_after}"
        return f"{self.method} {self.path} -> {what}: {self.body[:200]}"


class PatientClient:
    def __init__(self, base_url: str, *, give_up_after: float = 180.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.give_up_after = give_up_after
        self.http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=300, sock_connect=3, sock_read=60))
        self.seen: list[Seen] = []
        self.requests = 0

    async def close(self) -> None:
        await self.http.close()

    def v2(self, path: str) -> str:
        return f"{self.base_url}/v2/{path.lstrip('/')}"

    # ----- what the registry answered ---------------------------------------------------------------

    def server_errors(self) -> list[Seen]:
        return [s for s in self.seen if s.status is not None and s.status >= 500]

    def violations(self) -> list[Seen]:
        """Server errors that break rule 4: any 5xx but a 503 carrying Retry-After."""
        return [s for s in self.server_errors() if not s.acceptable_unavailable]

    def seen_between(self, start: float, end: float) -> list[Seen]:
        return [s for s in self.seen if start <= s.at <= end]

    # ----- requests ---------------------------------------------------------------------------------

    async def request(self, method: str, url: str, *, expect: set[int], body: Callable[[], Any] | bytes | None = None,
                      headers: dict | None = None, params: dict | None = None) -> tuple[int, dict, bytes]:
        """Send until an expected status comes back: retry 503 after its Retry-After, any other 5xx and
        failed connections after a second (recording each); fail on an unexpected 4xx."""
        deadline = time.monotonic() + self.give_up_after
        path = url.removeprefix(self.base_url)
        while True:
            self.requests += 1
            data = body() if callable(body) else body
            try:
                async with self.http.request(method, url, data=data, headers=headers, params=params) as response:
                    content = await response.read()
                    status, answer_headers = response.status, dict(response.headers)
            except (TimeoutError, aiohttp.ClientError) as exc:
                self.seen.append(Seen(time.monotonic(), method, path, None, None, f"{type(exc).__name__}: {exc}"))
                wait = 0.5
            else:
                if status in expect:
                    return status, answer_headers, content
                if status < 500:
                    raise AssertionError(f"{method} {path} answered {status} (expected {sorted(expect)}): {content[:500]!r}")
                seen = Seen(time.monotonic(), method, path, status, answer_headers.get("Retry-After"),
                            content.decode(errors="replace"))
                self.seen.append(seen)
                retry_after = seen.retry_after if seen.acceptable_unavailable else None
                wait = min(float(retry_after), MAX_RETRY_AFTER) if retry_after is not None else 1.0
            finally:
                close = getattr(data, "close", None)
                if close is not None:
                    close()
            if time.monotonic() + wait > deadline:
                raise AssertionError(f"{method} {path} never succeeded within {self.give_up_after:.0f} s; last: {self.seen[-1]}")
            await asyncio.sleep(wait)

    async def push_blob(self, repository: str, data: bytes) -> str:
        """Monolithic upload (POST ?digest=), as skopeo does for small blobs."""
        digest = sha256(data)
        _, headers, _ = await self.request("POST", self.v2(f"{repository}/blobs/uploads/"), expect={201},
                                           params={"digest": digest}, body=data)
        assert headers.get("Docker-Content-Digest") == digest, headers
        return digest

    async def push_blob_file(self, repository: str, path: Path, digest: str) -> None:
        """Monolithic upload streamed from a file (a large layer is never held in memory)."""
        _, headers, _ = await self.request("POST", self.v2(f"{repository}/blobs/uploads/"), expect={201},
                                           params={"digest": digest},
                                           body=functools.partial(path.open, "rb"))  # request() closes each attempt's file
        assert headers.get("Docker-Content-Digest") == digest, headers

    async def push_manifest(self, repository: str, reference: str, manifest: dict) -> str:
        body = json.dumps(manifest).encode()
        _, headers, _ = await self.request("PUT", self.v2(f"{repository}/manifests/{reference}"), expect={201},
                                           body=body, headers={"Content-Type": OCI_MANIFEST})
        assert headers.get("Docker-Content-Digest") == sha256(body), headers
        return sha256(body)

    async def push_image(self, repository: str, tag: str, layers: list[bytes]) -> dict[str, int]:
        """Config + layers + a tagged OCI manifest; returns the pushed blobs (digest -> size)."""
        config = json.dumps({"architecture": "amd64", "os": "linux", "nonce": os.urandom(8).hex()}).encode()
        blobs = {await self.push_blob(repository, config): len(config)}
        for layer in layers:
            blobs[await self.push_blob(repository, layer)] = len(layer)
        await self.push_manifest(repository, tag, image_manifest(config, [descriptor(LAYER_GZIP, layer) for layer in layers]))
        return blobs


def image_manifest(config: bytes, layers: list[dict]) -> dict:
    """An OCI image manifest for a config and layer descriptors."""
    return {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": descriptor(OCI_CONFIG, config), "layers": layers}


def random_file(path: Path, size: int) -> str:
    """Write `size` random bytes to `path` in pieces; returns their digest."""
    hasher = hashlib.sha256()
    piece = 8 << 20
    with open(path, "wb") as out:
        left = size
        while left:
            block = os.urandom(min(piece, left))
            hasher.update(block)
            out.write(block)
            left -= len(block)
    return "sha256:" + hasher.hexdigest()
