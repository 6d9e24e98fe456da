"""Builds real OCI image layouts on disk (tar layers, gzip or not, one or two platforms) for clients."""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
from pathlib import Path
from typing import Any


def _tar(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 0
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


class Layout:
    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
        (root / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))

    def blob(self, data: bytes) -> str:
        hexdigest = hashlib.sha256(data).hexdigest()
        (self.root / "blobs" / "sha256" / hexdigest).write_bytes(data)
        return f"sha256:{hexdigest}"

    def descriptor(self, media_type: str, data: bytes, **extra) -> dict:
        return {"mediaType": media_type, "digest": self.blob(data), "size": len(data), **extra}

    def image(self, *, arch: str = "amd64", payload: bytes | None = None, layer_size: int = 64 * 1024) -> dict:
        """One image with a gzip layer and an uncompressed layer; returns the manifest descriptor."""
        seed = payload or os.urandom(16)
        raw = _tar({"hello.txt": b"meridian " + seed, "random.bin": os.urandom(layer_size)})
        raw2 = _tar({"etc/arch": arch.encode() + seed})
        compressed = gzip.compress(raw, mtime=0)
        config = {
            "architecture": arch,
            "os": "linux",
            "rootfs": {
                "type": "layers",
                "diff_ids": [f"sha256:{hashlib.sha256(raw).hexdigest()}", f"sha256:{hashlib.sha256(raw2).hexdigest()}"],
            },
            "config": {"Cmd": ["/bin/sh"]},
        }
        manifest = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": self.descriptor("application/vnd.oci.image.config.v1+json", json.dumps(config).encode()),
            "layers": [
                self.descriptor("application/vnd.oci.image.layer.v1.tar+gzip", compressed),
                self.descriptor("application/vnd.oci.image.layer.v1.tar", raw2),
            ],
        }
        body = json.dumps(manifest).encode()
        return self.descriptor(
            "application/vnd.oci.image.manifest.v1+json", body, platform={"architecture": arch, "os": "linux"}
        )

    def index(self, manifests: list[dict]) -> dict:
        body = json.dumps(
            {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": manifests}
        ).encode()
        return self.descriptor("application/vnd.oci.image.index.v1+json", body)

    def tag(self, descriptor: dict, name: str) -> None:
        entry = dict(descriptor)
        entry.pop("platform", None)
        entry["annotations"] = {"org.opencontainers.image.ref.name": name}
        index_path = self.root / "index.json"
        index: dict[str, Any] = (json.loads(index_path.read_text()) if index_path.exists()
                                 else {"schemaVersion": 2, "manifests": []})
        index["manifests"].append(entry)
        index_path.write_text(json.dumps(index))


def single_image(root: Path, tag: str = "latest") -> tuple[Layout, dict]:
    layout = Layout(root)
    descriptor = layout.image()
    layout.tag(descriptor, tag)
    return layout, descriptor


def multi_platform(root: Path, tag: str = "latest") -> tuple[Layout, dict]:
    layout = Layout(root)
    index = layout.index([layout.image(arch="amd64"), layout.image(arch="arm64")])
    layout.tag(index, tag)
    return layout, index
