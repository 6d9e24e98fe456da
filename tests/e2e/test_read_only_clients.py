"""Read-only mode seen by real clients: skopeo and podman pull; a podman push prints Quay's
`denied: System is currently read-only...` line."""
from __future__ import annotations

import pytest

from shared.errors import READ_ONLY_MESSAGE
from tests.e2e.clients import attempt, ok
from tests.images import single_image

pytestmark = pytest.mark.e2e


async def test_clients_pull_and_podman_push_is_denied_with_the_message(make_registry, service_key, tmp_path, short_runroot):
    writable = await make_registry()
    single_image(tmp_path / "src")
    await ok("skopeo", "copy", "--dest-tls-verify=false", f"oci:{tmp_path / 'src'}:latest", f"docker://{writable.host}/acme/app:v1")
    ro = await make_registry(REGISTRY_STATE="readonly", DISTRIBUTED_STORAGE_CONFIG=writable.doc["DISTRIBUTED_STORAGE_CONFIG"],
                             **service_key)
    await ok("skopeo", "copy", "--src-tls-verify=false", f"docker://{ro.host}/acme/app:v1", f"oci:{tmp_path / 'back'}:latest")
    podman = ["podman", "--root", str(tmp_path / "root"), "--runroot", short_runroot, "--storage-driver", "vfs"]
    await ok(*podman, "pull", "--tls-verify=false", f"{ro.host}/acme/app:v1")
    code, out = await attempt(*podman, "push", "--tls-verify=false", f"{ro.host}/acme/app:v1", f"{ro.host}/acme/app:v2")
    assert code != 0
    assert f"denied: {READ_ONLY_MESSAGE}" in out, out
    code, out = await attempt("skopeo", "copy", "--dest-tls-verify=false", f"oci:{tmp_path / 'src'}:latest",
                              f"docker://{ro.host}/acme/app:v3")
    assert code != 0 and READ_ONLY_MESSAGE in out, out
