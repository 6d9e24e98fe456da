"""A registry with token auth and a small cast, for the identity and permission tests.

Cast (organisation acme, repository acme/private with tag v1, acme/public, globex/secret):
  root   superuser (SUPER_USERS)          alice  admin of acme (owners team)
  rita   read on acme/private             walt   write on acme/private
  olga   admin of globex                  acme+ci    robot with write on acme/private
  tom    no role (joins and leaves teams)
  anonymous (no credentials)              acme+idle  robot without permissions
"""
from __future__ import annotations

import base64
import itertools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import aiohttp
import asyncpg

from shared.model import access, accounts
from tests.helpers import push_image

if TYPE_CHECKING:
    from tests.conftest import RunningRegistry

PASSWORD = "correct horse battery staple"
USERS = ("root", "alice", "rita", "walt", "olga", "tom")  # tom: no role; joins and leaves teams in tests
ROBOTS = {"robot_with": "acme+ci", "robot_without": "acme+idle"}
ACTORS = ("anonymous", "rita", "walt", "alice", "robot_with", "robot_without", "olga", "root")
_counter = itertools.count(1)


def unique(prefix: str) -> str:
    return f"{prefix}{next(_counter)}"


def basic(username: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{secret}".encode()).decode()


@dataclass
class Authed:
    """A registry-like object (.http, .v2) whose requests carry one Bearer token."""

    url: str
    http: aiohttp.ClientSession

    def v2(self, path: str) -> str:
        return f"{self.url}/v2/{path.lstrip('/')}"


@dataclass
class World:
    reg: RunningRegistry
    conn: asyncpg.Connection
    ids: dict[str, int] = field(default_factory=dict)
    api_tokens: dict[str, str] = field(default_factory=dict)
    robot_tokens: dict[str, str] = field(default_factory=dict)
    private_digest: str = ""
    sessions: list[aiohttp.ClientSession] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.reg.url

    def api(self, path: str) -> str:
        return f"{self.reg.url}/api/v1/{path.lstrip('/')}"

    def api_headers(self, actor: str) -> dict[str, str]:
        if actor == "anonymous":
            return {}
        if actor in ROBOTS:  # robots have no API credentials; their token is refused there
            return {"Authorization": f"Bearer {self.robot_tokens[actor]}"}
        return {"Authorization": f"Bearer {self.api_tokens[actor]}"}

    def credentials(self, actor: str) -> str | None:
        if actor == "anonymous":
            return None
        if actor in ROBOTS:
            return basic(ROBOTS[actor], self.robot_tokens[actor])
        return basic(actor, PASSWORD)

    async def v2_token(self, actor: str, *scopes: str) -> str:
        credentials = self.credentials(actor)
        headers = {"Authorization": credentials} if credentials else {}
        params = [("service", self.reg.host)] + [("scope", s) for s in scopes]
        async with self.reg.http.get(f"{self.url}/v2/auth", params=params, headers=headers) as r:
            assert r.status == 200, await r.text()
            return (await r.json())["token"]

    async def as_actor(self, actor: str, *scopes: str) -> Authed:
        token = await self.v2_token(actor, *scopes)
        session = aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"})
        self.sessions.append(session)
        return Authed(self.url, session)

    async def fresh_repo(self, *, visibility: str = "private") -> str:
        """A new acme repository with the cast's usual grants (rita read, walt write, acme+ci write)."""
        name = unique("repo")
        async with self.conn.transaction():
            repo_id, _ = await access.create_repository(self.conn, self.ids["acme"], "acme", name, creator=None, visibility=visibility)
            await access.set_permission(self.conn, repo_id, "user", self.ids["rita"], "read")
            await access.set_permission(self.conn, repo_id, "user", self.ids["walt"], "write")
            await access.set_permission(self.conn, repo_id, "user", self.ids["robot_with"], "write")
            if "team:readers" in self.ids:  # the permission matrix's team reader (tess) reads it too
                await access.set_permission(self.conn, repo_id, "team", self.ids["team:readers"], "read")
        return f"acme/{name}"

    async def fresh_org(self) -> str:
        name = unique("org")
        async with self.conn.transaction():
            await accounts.create_organization(self.conn, name, None, self.ids["alice"], None)
        return name

    async def fresh_team(self, *members: str) -> str:
        name = unique("team")
        team_id = await self.conn.fetchval(
            "INSERT INTO teams (namespace_id, name, role) VALUES ($1, $2, 'member') RETURNING id", self.ids["acme"], name)
        for member in members:
            await self.conn.execute("INSERT INTO team_members (team_id, user_id) VALUES ($1, $2)", team_id, self.ids[member])
        return name

    async def fresh_robot(self) -> str:
        short = unique("bot")
        await accounts.create_robot(self.conn, self.ids["acme"], f"acme+{short}", "")
        return short

    async def close(self) -> None:
        for session in self.sessions:
            await session.close()


async def build_world(make_registry, database, **overrides) -> World:
    reg = await make_registry(MERIDIAN_INSECURE_OPEN_ACCESS=False, SUPER_USERS=["root"],
                              MERIDIAN_CALLBACK_ALLOWED_HOSTS=["127.0.0.1"], **{"FEATURE_QUOTA_MANAGEMENT": True, **overrides})
    conn = await asyncpg.connect(database)
    world = World(reg, conn)
    async with conn.transaction():
        for user in USERS:
            world.ids[user] = await accounts.create_user(conn, user, PASSWORD, f"{user}@example.com")
            world.api_tokens[user] = (await accounts.create_api_token(conn, world.ids[user]))[1]
        world.ids["acme"] = await accounts.create_organization(conn, "acme", None, world.ids["alice"], None)
        world.ids["globex"] = await accounts.create_organization(conn, "globex", None, world.ids["olga"], None)
        for actor, full in ROBOTS.items():
            world.robot_tokens[actor] = await accounts.create_robot(conn, world.ids["acme"], full, "")
            world.ids[actor] = await conn.fetchval("SELECT id FROM users WHERE username = $1", full)
        for name, visibility in (("private", "private"), ("public", "public")):
            repo_id, _ = await access.create_repository(conn, world.ids["acme"], "acme", name, creator=None, visibility=visibility)
            world.ids[f"acme/{name}"] = repo_id
        await access.set_permission(conn, world.ids["acme/private"], "user", world.ids["rita"], "read")
        await access.set_permission(conn, world.ids["acme/private"], "user", world.ids["walt"], "write")
        await access.set_permission(conn, world.ids["acme/private"], "user", world.ids["robot_with"], "write")
        world.ids["globex/secret"], _ = await access.create_repository(conn, world.ids["globex"], "globex", "secret", creator=None)
    root = await world.as_actor("root", "repository:acme/private:pull,push", "repository:acme/public:pull,push",
                                "repository:globex/secret:pull,push")
    world.private_digest, _ = await push_image(root, "acme/private", "v1")
    await push_image(root, "acme/public", "v1")
    await push_image(root, "globex/secret", "v1")
    return world
