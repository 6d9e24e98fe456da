"""End to end with real clients: skopeo, podman (root, vfs) and oras (PyPI) against Meridian on
real PostgreSQL, NATS and storage."""
from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path

import pytest

from tests.helpers import OCI_MANIFEST, push_image
from tests.images import multi_platform, single_image

pytestmark = pytest.mark.e2e


async def run(*command: str, timeout: float = 180) -> str:
    process = await asyncio.create_subprocess_exec(*command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), timeout)
    assert process.returncode == 0, f"{' '.join(command)} failed ({process.returncode}):\n{err.decode()}"
    return out.decode()


def layout_digests(root: Path) -> tuple[str, set[str]]:
    """(digest of the tagged manifest or index, every blob in the layout)."""
    index = json.loads((root / "index.json").read_text())
    blobs = {f"sha256:{p.name}" for p in (root / "blobs" / "sha256").iterdir()}
    return index["manifests"][0]["digest"], blobs


async def test_skopeo_round_trip_of_image_with_gzip_and_plain_layers(registry, tmp_path):
    _, descriptor = single_image(tmp_path / "src")
    manifest = json.loads((tmp_path / "src" / "blobs" / "sha256" / descriptor["digest"].split(":")[1]).read_text())
    assert {layer["mediaType"] for layer in manifest["layers"]} == {
        "application/vnd.oci.image.layer.v1.tar+gzip", "application/vnd.oci.image.layer.v1.tar"}
    target = f"docker://{registry.host}/acme/single:v1"
    await run("skopeo", "copy", "--preserve-digests", "--dest-tls-verify=false", f"oci:{tmp_path / 'src'}:latest", target)
    await run("skopeo", "copy", "--preserve-digests", "--src-tls-verify=false", target, f"oci:{tmp_path / 'back'}:latest")
    assert layout_digests(tmp_path / "back") == layout_digests(tmp_path / "src")
    raw = await run("skopeo", "inspect", "--raw", "--tls-verify=false", target)
    assert "sha256:" + hashlib.sha256(raw.encode()).hexdigest() == descriptor["digest"]


async def test_skopeo_round_trip_of_two_platform_index(registry, tmp_path):
    _, index = multi_platform(tmp_path / "src")
    target = f"docker://{registry.host}/acme/multi:v1"
    await run("skopeo", "copy", "--all", "--preserve-digests", "--dest-tls-verify=false", f"oci:{tmp_path / 'src'}:latest", target)
    await run("skopeo", "copy", "--all", "--preserve-digests", "--src-tls-verify=false", target, f"oci:{tmp_path / 'back'}:latest")
    assert layout_digests(tmp_path / "back") == layout_digests(tmp_path / "src")
    async with registry.http.get(registry.v2("acme/multi/manifests/v1")) as r:
        assert r.headers["Docker-Content-Digest"] == index["digest"]
        assert len((await r.json())["manifests"]) == 2


async def test_skopeo_delete(registry, tmp_path):
    single_image(tmp_path / "src")
    target = f"docker://{registry.host}/acme/gone:v1"
    await run("skopeo", "copy", "--dest-tls-verify=false", f"oci:{tmp_path / 'src'}:latest", target)
    await run("skopeo", "delete", "--tls-verify=false", target)
    async with registry.http.get(registry.v2("acme/gone/manifests/v1")) as r:
        assert r.status == 404
    async with registry.http.get(registry.v2("acme/gone/tags/list")) as r:
        assert (await r.json())["tags"] == []


async def test_podman_push_and_pull(registry, tmp_path, short_runroot):
    single_image(tmp_path / "src")
    podman = ["podman", "--root", str(tmp_path / "root"), "--runroot", short_runroot, "--storage-driver", "vfs"]
    image_id = (await run(*podman, "pull", "-q", f"oci:{tmp_path / 'src'}:latest")).strip().splitlines()[-1]
    reference = f"{registry.host}/acme/podman:v1"
    await run(*podman, "push", "--tls-verify=false", image_id, reference)
    async with registry.http.get(registry.v2("acme/podman/manifests/v1")) as r:
        assert r.status == 200
        pushed_digest = r.headers["Docker-Content-Digest"]
    await run(*podman, "rmi", "-a", "-f")
    await run(*podman, "pull", "--tls-verify=false", reference)
    listed = json.loads(await run(*podman, "images", "--format", "json"))
    assert any(image["Id"].startswith(image_id[:12]) for image in listed)
    assert any(pushed_digest in image.get("Digest", "") or pushed_digest in image.get("RepoDigests", [""])[0] for image in listed)


async def test_oras_artifact_with_artifact_type_and_subject(make_registry, tmp_path):
    import oras.client
    import oras.oci

    artifact_type = "application/vnd.example.sbom+json"
    layer_type = "application/vnd.example.sbom.layer+json"
    reg = await make_registry(ALLOWED_OCI_ARTIFACT_TYPES={artifact_type: [layer_type]})
    subject_digest, subject_body = await push_image(reg, "acme/app", "v1")
    sbom = tmp_path / "sbom.json"
    sbom.write_text('{"packages": ["meridian"]}')
    empty = tmp_path / "empty.json"
    empty.write_text("{}")

    def push() -> str:
        client = oras.client.OrasClient(hostname=reg.host, insecure=True)
        container = client.get_container(f"{reg.host}/acme/app:sbom")
        layer = oras.oci.NewLayer(str(sbom), media_type=layer_type)
        layer["annotations"] = {"org.opencontainers.image.title": "sbom.json"}
        config = oras.oci.NewLayer(str(empty), media_type="application/vnd.oci.empty.v1+json")
        for path, descriptor in ((sbom, layer), (empty, config)):
            client._check_200_response(client.upload_blob(str(path), container, descriptor))
        manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": artifact_type, "config": config,
                    "layers": [layer], "subject": {"mediaType": OCI_MANIFEST, "digest": subject_digest, "size": len(subject_body)}}
        response = client.upload_manifest(manifest, container)
        client._check_200_response(response)
        assert response.headers["OCI-Subject"] == subject_digest
        return response.headers["Docker-Content-Digest"]

    artifact_digest = await asyncio.to_thread(push)
    async with reg.http.get(reg.v2(f"acme/app/referrers/{subject_digest}"), params={"artifactType": artifact_type}) as r:
        index = await r.json()
        assert r.headers["OCI-Filters-Applied"] == "artifactType"
    assert [(m["digest"], m["artifactType"]) for m in index["manifests"]] == [(artifact_digest, artifact_type)]

    def pull() -> list[str]:
        client = oras.client.OrasClient(hostname=reg.host, insecure=True)
        return client.pull(target=f"{reg.host}/acme/app:sbom", outdir=str(tmp_path / "out"))

    files = await asyncio.to_thread(pull)
    assert [Path(f).read_text() for f in files] == [sbom.read_text()]
