"""Feature switches as real/disabled pairs (Zot's pattern): each switch is chosen once, from the
config, when a service starts; call sites ask the chosen object and never read the config flag.

- `Access`:  `CheckedAccess` (credentials and roles decide) or `UncheckedAccess` (the development
  registry, MERIDIAN_INSECURE_OPEN_ACCESS: an anonymous caller holds every right).
- `Writes`:  `WritesAllowed` or `ReadOnlyRegistry` (REGISTRY_STATE: readonly — every write refused
  with Quay's read-only message; the stores are only read).
- `Replication`: `Replicating` or `NotReplicating` (FEATURE_STORAGE_REPLICATION: off — blobs stay
  where they were pushed, no copies are planned).

Adding a switch: a Protocol, its two implementations, a line in `Switches.from_config`, and the
call sites ask `switches.<name>`.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from shared.config import Config
from shared.errors import read_only_error

ROLE_OF_OPEN_ACCESS = "admin"


class Access(Protocol):
    open: bool

    def requires_credentials(self) -> bool:
        """Whether a caller without credentials must authenticate before anything is checked."""

    def role_of_anonymous(self, role: str | None) -> str | None:
        """The role an anonymous caller holds, given what the permissions grant anonymous callers."""

    def grants_everything(self) -> bool:
        """Whether every action on every repository is granted without looking at roles."""


class CheckedAccess:
    open = False

    def requires_credentials(self) -> bool:
        return True

    def role_of_anonymous(self, role: str | None) -> str | None:
        return role

    def grants_everything(self) -> bool:
        return False


class UncheckedAccess:
    open = True

    def requires_credentials(self) -> bool:
        return False

    def role_of_anonymous(self, role: str | None) -> str | None:
        return ROLE_OF_OPEN_ACCESS

    def grants_everything(self) -> bool:
        return True


class Writes(Protocol):
    read_only: bool

    def refuse_if_read_only(self) -> None:
        """Raise the registry's read-only error when writes are suspended."""

    def problem(self) -> str | None:
        """Why a write is refused (the read-only message), or None."""


class WritesAllowed:
    read_only = False

    def refuse_if_read_only(self) -> None:
        return None

    def problem(self) -> str | None:
        return None


class ReadOnlyRegistry:
    read_only = True

    def refuse_if_read_only(self) -> None:
        raise read_only_error()

    def problem(self) -> str | None:
        return read_only_error().message


class Replication(Protocol):
    enabled: bool

    def targets(self, configured: Sequence[str]) -> list[str]:
        """The locations a namespace's blobs are copied to, given its configured ones."""


class Replicating:
    enabled = True

    def targets(self, configured: Sequence[str]) -> list[str]:
        return list(configured)


class NotReplicating:
    enabled = False

    def targets(self, configured: Sequence[str]) -> list[str]:
        return []


@dataclass(frozen=True)
class Switches:
    access: Access
    writes: Writes
    replication: Replication

    @classmethod
    def from_config(cls, config: Config) -> Switches:
        return cls(
            access=UncheckedAccess() if config.meridian_insecure_open_access else CheckedAccess(),
            writes=ReadOnlyRegistry() if config.registry_state == "readonly" else WritesAllowed(),
            replication=Replicating() if config.feature_storage_replication else NotReplicating(),
        )
