"""Checking a password or token someone presents, with failed-login throttling and the usage logs of
the attempt: /v2/auth (Basic credentials) and /api/v1/signin come through here.

Throttling (docs/identity.md "Failed sign-ins"): failures are counted per user name (password sign-ins
only: robot and API tokens carry 256 bits, guessing them is hopeless, and locking `$token` would lock
every API-token user) and per client address (every kind; IPv6 by /64). After the free attempts each
further failure locks the key for MERIDIAN_LOGIN_BACKOFF_SEC * 2^(n-1) seconds (at most
MERIDIAN_LOGIN_BACKOFF_MAX_SEC); while a key is locked every attempt on it is answered 429 with
Retry-After *without checking the credentials*, so a lock tells nothing about the password. The
start of a lock is a `login_throttled` usage log. Counts live in the database (every gateway of every
region shares them); read-only mode may not write, so there each process counts in memory.

Unknown users cost the same argon2 check as known ones (shared/model/accounts.check_password), and
names longer than anyone's are stored truncated.
"""
from __future__ import annotations

import datetime as dt
import ipaddress
import math
import time
from dataclasses import dataclass

from aiohttp import web

from shared.config import Config
from shared.logging import get_logger
from shared.model import Db, accounts, logins
from shared.model.accounts import Principal
from shared.model.audit import AuditBuffer, Entry, record

from .credentials import TOKEN_USERNAMES, BadCredentials, basic_principal

log = get_logger("gateway.logins")
MAX_STORED = 255  # longest user name, user agent or address kept in a usage log or a throttle key


class Throttled(Exception):
    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many failed sign-ins: retry after {retry_after} seconds")
        self.retry_after = retry_after


def bounded(value: str | None, limit: int = MAX_STORED) -> str:
    value = value or ""
    return value if len(value) <= limit else value[:limit] + "…"


def address_key(remote: str | None) -> str | None:
    """`ip:<address>`; an IPv6 address counts as its /64 (one host usually holds the whole /64)."""
    if not remote:
        return None
    try:
        address = ipaddress.ip_address(remote)
    except ValueError:
        return "ip:" + bounded(remote, 64)
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return f"ip:{address.ipv4_mapped}"
        return f"ip:{ipaddress.ip_network(f'{address}/64', strict=False)}"
    return f"ip:{address}"


@dataclass
class _Row:
    failures: int
    last_failure: float
    locked_until: float = 0.0


class MemoryCounts:
    """Read-only mode: this process's own counts (the database refuses writes)."""

    def __init__(self, capacity: int = 100_000) -> None:
        self.capacity = capacity
        self.rows: dict[str, _Row] = {}

    async def locked_until(self, keys: list[str]) -> float | None:
        now = time.time()
        ends = [row.locked_until for key in keys if (row := self.rows.get(key)) and row.locked_until > now]
        return max(ends) if ends else None

    async def has_failures(self, key: str) -> bool:
        return key in self.rows

    async def record_failure(self, key: str, window_s: float) -> int:
        now = time.time()
        row = self.rows.get(key)
        if row is None or row.last_failure < now - window_s:
            if len(self.rows) >= self.capacity:
                self.rows = {k: r for k, r in self.rows.items() if r.last_failure >= now - window_s or r.locked_until > now}
            row = self.rows[key] = _Row(0, now)
        row.failures += 1
        row.last_failure = now
        return row.failures

    async def lock(self, key: str, seconds: float) -> float:
        row = self.rows[key]
        row.locked_until = time.time() + seconds
        return row.locked_until

    async def clear(self, key: str) -> None:
        self.rows.pop(key, None)


class DatabaseCounts:
    def __init__(self, pool: Db) -> None:
        self.pool = pool
        self._failures = 0

    async def locked_until(self, keys: list[str]) -> float | None:
        until = await logins.locked_until(self.pool, keys)
        return until.timestamp() if until else None

    async def has_failures(self, key: str) -> bool:
        return await logins.has_failures(self.pool, key)

    async def record_failure(self, key: str, window_s: float) -> int:
        self._failures += 1
        if self._failures % 100 == 0:  # keep the table to the keys that matter
            await logins.forget_old(self.pool, window_s=window_s)
        return await logins.record_failure(self.pool, key, window_s=window_s)

    async def lock(self, key: str, seconds: float) -> float:
        until: dt.datetime = await logins.lock(self.pool, key, seconds)
        return until.timestamp()

    async def clear(self, key: str) -> None:
        await logins.clear(self.pool, key)


class Logins:
    def __init__(self, config: Config, pool: Db, audit: AuditBuffer, *, read_only: bool) -> None:
        self.config = config
        self.pool = pool
        self.audit = audit
        self.read_only = read_only
        self.counts: MemoryCounts | DatabaseCounts = MemoryCounts() if read_only else DatabaseCounts(pool)

    @property
    def enabled(self) -> bool:
        return self.config.meridian_login_backoff_sec > 0

    def _keys(self, request: web.Request, username: str, password_login: bool) -> list[tuple[str, str, int]]:
        """(key, what, free attempts) of one attempt."""
        keys = []
        if password_login:
            keys.append((f"user:{bounded(username)}", "user", self.config.meridian_login_free_attempts))
        address = address_key(request.remote)
        if address and self.config.meridian_login_address_free_attempts > 0:
            keys.append((address, "address", self.config.meridian_login_address_free_attempts))
        return keys

    async def _guard(self, keys: list[tuple[str, str, int]]) -> None:
        if not self.enabled or not keys:
            return
        until = await self.counts.locked_until([key for key, _, _ in keys])
        if until is not None:
            raise Throttled(max(1, math.ceil(until - time.time())))

    async def _failed(self, request: web.Request, surface: str, username: str, keys: list[tuple[str, str, int]]) -> None:
        metadata = {"type": surface, "username": bounded(username)}
        if surface == "v2auth":
            metadata["useragent"] = bounded(request.headers.get("User-Agent", ""))
        await self._log(surface, Entry("login_failure", ip=request.remote, metadata=metadata))
        if not self.enabled:
            return
        for key, what, free in keys:
            failures = await self.counts.record_failure(key, self.config.meridian_login_failure_window_sec)
            if failures <= free:
                continue
            seconds = min(self.config.meridian_login_backoff_max_sec,
                          self.config.meridian_login_backoff_sec * 2 ** min(failures - free - 1, 40))
            await self.counts.lock(key, seconds)
            log.warning("sign-ins throttled", key=what, failures=failures, seconds=seconds, surface=surface)
            await self._log(surface, Entry("login_throttled", ip=request.remote, metadata={
                "type": surface, "username": bounded(username), "throttled": what, "failures": failures,
                "seconds": seconds}))

    async def _log(self, surface: str, entry: Entry) -> None:
        if not self.config.action_log_audit_logins or self.read_only:
            return
        if surface == "api":  # the API writes its logs at once
            await record(self.pool, entry)
        else:
            self.audit.add(entry)

    async def _succeeded(self, username: str, password_login: bool) -> None:
        if not self.enabled or not password_login:
            return
        key = f"user:{bounded(username)}"
        if await self.counts.has_failures(key):
            await self.counts.clear(key)  # the address keeps its count: a valid account must not reset it

    async def basic(self, request: web.Request, username: str, secret: str) -> tuple[Principal, str]:
        """/v2/auth: (principal, kind); BadCredentials or Throttled."""
        password_login = username not in TOKEN_USERNAMES and "+" not in username
        keys = self._keys(request, username, password_login)
        await self._guard(keys)
        try:
            found = await basic_principal(self.pool, username, secret, self.config.super_users)
        except BadCredentials:
            await self._failed(request, "v2auth", username, keys)
            raise
        await self._succeeded(username, password_login)
        return found

    async def password(self, request: web.Request, username: str, password: str) -> Principal | None:
        """/api/v1/signin: the user, or None; Throttled."""
        keys = self._keys(request, username, True)
        await self._guard(keys)
        principal = await accounts.check_password(self.pool, username, password, self.config.super_users)
        if principal is None:
            await self._failed(request, "api", username, keys)
            return None
        await self._succeeded(username, True)
        return principal
