"""What one gateway process holds (config, database pool, the registry domain, bus, storage drivers,
upload hash states), and how a handler reaches it: `gateway(request)`."""
from __future__ import annotations

import collections
import hashlib
import uuid
from dataclasses import dataclass, field

import asyncpg
from aiohttp import web

from shared.bus import Bus
from shared.config import Config
from shared.locations import Locations
from shared.model.audit import AuditBuffer
from shared.outbox import OutboxRelay
from shared.registry import Registry
from shared.registry.lookups import Lookups
from shared.servicekeys import PublicKeys
from shared.storage import StorageDriver
from shared.switches import Switches

from .auth import Authorizer
from .keys import InstanceKeys
from .logins import Logins


@dataclass
class HashState:
    """A running sha256 of an upload, valid only while `size` matches the session's size."""

    size: int
    hasher: hashlib._Hash


class HashStates:
    """Bounded map upload id -> HashState. A miss only costs a re-hash when the upload completes."""

    def __init__(self, capacity: int = 4096) -> None:
        self.capacity = capacity
        self._states: collections.OrderedDict[uuid.UUID, HashState] = collections.OrderedDict()

    def get(self, upload_id: uuid.UUID, size: int) -> HashState | None:
        state = self._states.get(upload_id)
        if state is None or state.size != size:
            return None
        self._states.move_to_end(upload_id)
        return state

    def put(self, upload_id: uuid.UUID, state: HashState) -> None:
        self._states[upload_id] = state
        self._states.move_to_end(upload_id)
        while len(self._states) > self.capacity:
            self._states.popitem(last=False)

    def drop(self, upload_id: uuid.UUID) -> None:
        self._states.pop(upload_id, None)

    def __len__(self) -> int:
        return len(self._states)


@dataclass
class Gateway:
    config: Config
    pool: asyncpg.Pool
    bus: Bus
    relay: OutboxRelay
    locations: Locations
    location_ids: dict[str, int]
    authorizer: Authorizer
    keys: InstanceKeys
    audit: AuditBuffer
    public_keys: PublicKeys
    registry: Registry
    logins: Logins
    # Which manifest a tag or digest names, kept under a lease (None: always asked of the database).
    lookups: Lookups | None = None
    hash_states: HashStates = field(default_factory=HashStates)
    switches: Switches = field(init=False)

    def __post_init__(self) -> None:
        self.switches = Switches.from_config(self.config)

    @property
    def region(self) -> str:
        return self.config.meridian_region

    @property
    def write_location(self) -> str:
        """The region's own location (exports live here); uploads go to `locations.write_target()`."""
        return self.locations.own

    @property
    def location_names(self) -> dict[int, str]:
        return {location_id: name for name, location_id in self.location_ids.items()}

    @property
    def write_driver(self) -> StorageDriver:
        return self.locations.own_driver


GATEWAY = web.AppKey("gateway", Gateway)
ROUTE = web.RequestKey("route", str)


def gateway(request: web.Request) -> Gateway:
    return request.app[GATEWAY]
