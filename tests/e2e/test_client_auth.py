"""Real clients through Docker token auth: skopeo and podman push and pull with a user's password
and with a robot token, anonymous pulls of public repositories, and refused pushes."""
from __future__ import annotations

import pytest

from tests.e2e.clients import attempt, ok
from tests.identity_world import PASSWORD
from tests.images import single_image

pytestmark = pytest.mark.e2e


async def robot(world, short: str, permissions: dict[str, str]) -> str:
    headers = world.api_headers("alice")
    async with world.reg.http.put(world.api(f"organization/acme/robots/{short}"), json={}, headers=headers) as r:
        token = (await r.json())["token"]
    async with world.reg.http.put(world.api(f"organization/acme/robots/{short}/permissions"),
                                  json={"permissions": permissions}, headers=headers) as r:
        assert r.status == 200, await r.text()
    return token


async def test_skopeo_with_password_robot_token_and_anonymously(world, tmp_path):
    single_image(tmp_path / "src")
    env = {"REGISTRY_AUTH_FILE": str(tmp_path / "auth.json")}  # no stray credentials from the machine
    source = f"oci:{tmp_path / 'src'}:latest"
    host = world.reg.host
    await ok("skopeo", "copy", "--dest-tls-verify=false", "--dest-creds", f"alice:{PASSWORD}", source,
             f"docker://{host}/acme/skopeo:v1", env=env)
    assert await world.conn.fetchval("SELECT visibility FROM repositories WHERE full_name = 'acme/skopeo'") == "private"
    await ok("skopeo", "copy", "--src-tls-verify=false", "--src-creds", f"alice:{PASSWORD}",
             f"docker://{host}/acme/skopeo:v1", f"oci:{tmp_path / 'user-pulled'}:latest", env=env)
    token = await robot(world, "shipper", {"acme/skopeo": "write", "acme/private": "read"})
    await ok("skopeo", "copy", "--src-tls-verify=false", "--src-creds", f"acme+shipper:{token}",
             f"docker://{host}/acme/skopeo:v1", f"oci:{tmp_path / 'robot-pulled'}:latest", env=env)
    await ok("skopeo", "copy", "--dest-tls-verify=false", "--dest-creds", f"acme+shipper:{token}", source,
             f"docker://{host}/acme/skopeo:v2", env=env)
    code, out = await attempt("skopeo", "copy", "--dest-tls-verify=false", "--dest-creds", f"acme+shipper:{token}", source,
                              f"docker://{host}/acme/private:robot", env=env)
    assert code != 0 and "denied" in out.lower(), out  # read-only on acme/private
    # anonymous: public pulls, private stays invisible
    await ok("skopeo", "copy", "--src-tls-verify=false", "--src-no-creds", f"docker://{host}/acme/public:v1",
             f"oci:{tmp_path / 'public'}:latest", env=env)
    code, out = await attempt("skopeo", "inspect", "--tls-verify=false", "--no-creds", f"docker://{host}/acme/private:v1", env=env)
    assert code != 0, out
    code, out = await attempt("skopeo", "copy", "--dest-tls-verify=false", "--dest-creds", f"rita:{PASSWORD}", source,
                              f"docker://{host}/acme/private:rita", env=env)
    assert code != 0 and "denied" in out.lower(), out
    tags = await world.conn.fetch("SELECT t.name FROM tags t JOIN repositories r ON r.id = t.repository_id "
                                  "WHERE r.full_name = 'acme/private' AND t.lifetime_end IS NULL ORDER BY t.name")
    assert [t["name"] for t in tags] == ["v1"]


async def test_podman_login_push_pull_with_password_and_robot(world, tmp_path, short_runroot):
    single_image(tmp_path / "src")
    authfile = str(tmp_path / "auth.json")
    podman = ["podman", "--root", str(tmp_path / "root"), "--runroot", short_runroot, "--storage-driver", "vfs"]
    host = world.reg.host
    image_id = (await ok(*podman, "pull", "-q", f"oci:{tmp_path / 'src'}:latest")).strip().splitlines()[-1]

    await ok(*podman, "login", "--tls-verify=false", "--authfile", authfile, "-u", "alice", "-p", PASSWORD, host)
    await ok(*podman, "push", "--tls-verify=false", "--authfile", authfile, image_id, f"{host}/acme/podman:v1")
    await ok(*podman, "logout", "--authfile", authfile, host)

    await ok(*podman, "login", "--tls-verify=false", "--authfile", authfile, "-u", "alice", "-p", PASSWORD, host)
    await ok(*podman, "rmi", "-a", "-f")
    await ok(*podman, "pull", "--tls-verify=false", "--authfile", authfile, f"{host}/acme/podman:v1")
    await ok(*podman, "logout", "--authfile", authfile, host)

    writer = await robot(world, "builder", {"acme/podman": "write"})
    await ok(*podman, "login", "--tls-verify=false", "--authfile", authfile, "-u", "acme+builder", "-p", writer, host)
    await ok(*podman, "push", "--tls-verify=false", "--authfile", authfile, f"{host}/acme/podman:v1", f"{host}/acme/podman:robot")
    await ok(*podman, "logout", "--authfile", authfile, host)

    token = await robot(world, "puller", {"acme/podman": "read"})
    await ok(*podman, "login", "--tls-verify=false", "--authfile", authfile, "-u", "acme+puller", "-p", token, host)
    await ok(*podman, "rmi", "-a", "-f")
    await ok(*podman, "pull", "--tls-verify=false", "--authfile", authfile, f"{host}/acme/podman:robot")
    code, out = await attempt(*podman, "push", "--tls-verify=false", "--authfile", authfile, image_id, f"{host}/acme/podman:v2")
    assert code != 0 and "denied" in out.lower(), out
    await ok(*podman, "logout", "--authfile", authfile, host)

    code, out = await attempt(*podman, "login", "--tls-verify=false", "--authfile", authfile, "-u", "alice", "-p", "wrong", host)
    assert code != 0 and "invalid" in out.lower(), out
    # anonymous: refused while private, pulled once public
    await ok(*podman, "rmi", "-a", "-f")
    code, out = await attempt(*podman, "pull", "--tls-verify=false", "--authfile", authfile, f"{host}/acme/podman:v1")
    assert code != 0, out
    async with world.reg.http.post(world.api("repository/acme/podman/changevisibility"), json={"visibility": "public"},
                                   headers=world.api_headers("alice")) as r:
        assert r.status == 200
    await ok(*podman, "pull", "--tls-verify=false", "--authfile", authfile, f"{host}/acme/podman:v1")
