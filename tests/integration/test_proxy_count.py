"""Quay's PROXY_COUNT: behind N reverse proxies the client is the N-th X-Forwarded-For entry from the
right, for usage logs and login throttling alike; with the default 0 the header is never trusted (a
client would forge it to dodge the address throttle), and an entry that is not an IP address, or too
few entries, leave the socket peer."""
from __future__ import annotations

from services.gateway.app import registry_middleware
from tests.conftest import RunningRegistry
from tests.helpers import eventually
from tests.identity_world import PASSWORD, World, basic, unique

PEER = "127.0.0.1"  # every test client connects from here


async def _behind_proxies(world: World, make_registry, proxy_count: int, **overrides) -> RunningRegistry:
    """Another gateway of the world's registry (same database, same public host), with PROXY_COUNT set."""
    return await make_registry(MERIDIAN_INSECURE_OPEN_ACCESS=False, SUPER_USERS=["root"], SERVER_HOSTNAME=world.reg.host,
                               PROXY_COUNT=proxy_count, **overrides)


def _forwarded(*values: str) -> list[tuple[str, str]]:
    """One X-Forwarded-For header per value (a request may carry several)."""
    return [("X-Forwarded-For", value) for value in values]


async def _token_ip(world: World, gateway: RunningRegistry, *forwarded: str) -> str:
    """The address the login_success usage log of one /v2/auth token request to gateway names."""
    marker = unique("proxy-test-agent-")
    headers = [("Authorization", basic("alice", PASSWORD)), ("User-Agent", marker), *_forwarded(*forwarded)]
    async with world.reg.http.get(f"{gateway.url}/v2/auth", params={"scope": "repository:acme/private:pull"},
                                  headers=headers) as r:
        assert r.status == 200, await r.text()

    async def logged():
        return await world.conn.fetchval("SELECT ip FROM audit_logs WHERE kind = 'login_success' "
                                         "AND metadata->>'useragent' = $1", marker)

    return await eventually(logged, what="the token request's usage log")


async def test_with_one_proxy_the_last_forwarded_address_is_the_client(world, make_registry):
    gateway = await _behind_proxies(world, make_registry, 1)
    assert await _token_ip(world, gateway, "203.0.113.7") == "203.0.113.7"
    assert await _token_ip(world, gateway, "198.51.100.1, 203.0.113.7") == "203.0.113.7"
    assert await _token_ip(world, gateway, "198.51.100.1", "203.0.113.7") == "203.0.113.7"  # two headers
    assert await _token_ip(world, gateway, "2001:DB8::7") == "2001:db8::7"
    assert await _token_ip(world, gateway) == PEER  # no header: the proxy itself (a health check, say)


async def test_with_two_proxies_the_second_address_from_the_right_is_the_client(world, make_registry):
    gateway = await _behind_proxies(world, make_registry, 2)
    assert await _token_ip(world, gateway, "198.51.100.1, 203.0.113.7") == "198.51.100.1"
    assert await _token_ip(world, gateway, "192.0.2.1,198.51.100.1 , 203.0.113.7") == "198.51.100.1"
    assert await _token_ip(world, gateway, "198.51.100.1", "203.0.113.7") == "198.51.100.1"  # two headers
    assert await _token_ip(world, gateway, "203.0.113.7") == PEER  # fewer entries than proxies


async def test_without_proxy_count_a_forged_x_forwarded_for_is_ignored(world, make_registry):
    # The same request, to the default gateway and to one told it stands behind one proxy.
    assert await _token_ip(world, world.reg, "203.0.113.7") == PEER
    assert await _token_ip(world, world.reg, "198.51.100.1, 203.0.113.7") == PEER
    gateway = await _behind_proxies(world, make_registry, 1)
    assert await _token_ip(world, gateway, "203.0.113.7") == "203.0.113.7"
    # PROXY_COUNT 0 costs nothing per request: nothing but the gateway's own middleware is installed.
    assert list(world.reg.runner.app.middlewares) == [registry_middleware]
    assert len(gateway.runner.app.middlewares) == 2 and gateway.runner.app.middlewares[-1] is registry_middleware


async def test_an_entry_that_is_not_an_ip_address_leaves_the_peer(world, make_registry):
    gateway = await _behind_proxies(world, make_registry, 1)
    assert await _token_ip(world, gateway, "not-an-ip") == PEER
    assert await _token_ip(world, gateway, "203.0.113.7, not-an-ip") == PEER
    assert await _token_ip(world, gateway, "203.0.113.7:4711") == PEER  # a port is not part of the address
    assert await _token_ip(world, gateway, "203.0.113.7,") == PEER  # an empty last entry
    assert await _token_ip(world, gateway, "not-an-ip, 203.0.113.7") == "203.0.113.7"  # only the trusted entry counts


async def test_pulls_and_api_actions_log_the_forwarded_client(world, make_registry):
    gateway = await _behind_proxies(world, make_registry, 1)
    async with world.reg.http.get(f"{gateway.url}/v2/auth", params={"scope": "repository:acme/private:pull"},
                                  headers={"Authorization": basic("alice", PASSWORD)}) as r:
        token = (await r.json())["token"]
    async with world.reg.http.get(f"{gateway.url}/v2/acme/private/manifests/v1",
                                  headers=[("Authorization", f"Bearer {token}"), *_forwarded("198.51.100.1, 203.0.113.8")]) as r:
        assert r.status == 200
    repository = await world.fresh_repo()
    async with world.reg.http.post(f"{gateway.url}/api/v1/repository/{repository}/changevisibility",
                                   json={"visibility": "public"},
                                   headers=[*world.api_headers("alice").items(), *_forwarded("203.0.113.9")]) as r:
        assert r.status == 200, await r.text()

    async def ips():
        rows = await world.conn.fetch("SELECT kind, ip FROM audit_logs WHERE kind IN ('pull_repo', 'change_repo_visibility') "
                                      "AND ip <> $1 ORDER BY id", PEER)
        return rows if len(rows) >= 2 else None

    rows = await eventually(ips, what="the pull's and the API action's usage logs")
    assert {(row["kind"], row["ip"]) for row in rows} == {("pull_repo", "203.0.113.8"),
                                                          ("change_repo_visibility", "203.0.113.9")}


async def test_each_forwarded_client_has_its_own_address_throttle(world, make_registry):
    """Behind the proxy, one client's failures lock its own address, not the proxy's (which every
    client would share)."""
    gateway = await _behind_proxies(world, make_registry, 1, MERIDIAN_LOGIN_BACKOFF_SEC=30,
                                    MERIDIAN_LOGIN_ADDRESS_FREE_ATTEMPTS=3)

    async def v2auth(username: str, secret: str, client: str) -> int:
        async with world.reg.http.get(f"{gateway.url}/v2/auth", params={"scope": "repository:acme/private:pull"},
                                      headers=[("Authorization", basic(username, secret)),
                                               *_forwarded(f"10.9.9.9, {client}")]) as r:
            return r.status

    guesser, other = "203.0.113.66", "198.51.100.77"
    assert [await v2auth(f"nobody{n}", "x", guesser) for n in range(4)] == [401] * 4
    assert await v2auth("alice", PASSWORD, guesser) == 429  # the guesser's address is locked
    assert await v2auth("alice", PASSWORD, other) == 200  # another client behind the same proxy is not
    assert [r["key"] for r in await world.conn.fetch("SELECT key FROM login_throttle WHERE key LIKE 'ip:%'")] == \
        [f"ip:{guesser}"]

    async def throttled():
        return await world.conn.fetch("SELECT ip, metadata->>'throttled' AS what FROM audit_logs "
                                      "WHERE kind = 'login_throttled'") or None

    assert [(r["ip"], r["what"]) for r in await eventually(throttled, what="the login_throttled usage log")] == \
        [(guesser, "address")]
