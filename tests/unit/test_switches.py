"""Feature switches are chosen once from the config; each pair answers the same questions
(shared/switches.py)."""
from __future__ import annotations

import pytest

from shared.config import parse_config
from shared.errors import READ_ONLY_MESSAGE, RegistryError
from shared.switches import CheckedAccess, NotReplicating, ReadOnlyRegistry, Replicating, Switches, UncheckedAccess, WritesAllowed


def switches(**doc) -> Switches:
    return Switches.from_config(parse_config({"SERVER_HOSTNAME": "registry.example", **doc}))


def test_the_defaults_check_access_allow_writes_and_do_not_replicate():
    chosen = switches()  # Quay's defaults: FEATURE_STORAGE_REPLICATION is off
    assert isinstance(chosen.access, CheckedAccess)
    assert isinstance(chosen.writes, WritesAllowed)
    assert isinstance(chosen.replication, NotReplicating)
    replicating = switches(FEATURE_STORAGE_REPLICATION=True, DISTRIBUTED_STORAGE_PREFERENCE=["us"],
                           DISTRIBUTED_STORAGE_CONFIG={"us": ["LocalStorage", {"storage_path": "/tmp/unused"}]})
    assert isinstance(replicating.replication, Replicating)


def test_each_flag_picks_the_other_half_of_its_pair():
    chosen = switches(MERIDIAN_INSECURE_OPEN_ACCESS=True, REGISTRY_STATE="readonly",
                      INSTANCE_SERVICE_KEY_LOCATION="k.pem", INSTANCE_SERVICE_KEY_KID_LOCATION="k.kid")
    assert isinstance(chosen.access, UncheckedAccess)
    assert isinstance(chosen.writes, ReadOnlyRegistry)
    assert isinstance(chosen.replication, NotReplicating)


def test_checked_access_keeps_what_the_permissions_grant():
    access = CheckedAccess()
    assert access.requires_credentials() and not access.grants_everything()
    assert access.role_of_anonymous(None) is None
    assert access.role_of_anonymous("read") == "read"


def test_unchecked_access_makes_an_anonymous_caller_admin():
    access = UncheckedAccess()
    assert not access.requires_credentials() and access.grants_everything()
    assert access.role_of_anonymous(None) == "admin"


def test_read_only_refuses_with_quays_message_and_writable_does_not():
    WritesAllowed().refuse_if_read_only()
    assert WritesAllowed().problem() is None
    with pytest.raises(RegistryError) as refused:
        ReadOnlyRegistry().refuse_if_read_only()
    assert refused.value.status == 405 and READ_ONLY_MESSAGE in str(refused.value.message)
    assert ReadOnlyRegistry().problem() == READ_ONLY_MESSAGE


def test_replication_targets_are_the_configured_ones_or_none():
    assert Replicating().targets(["eu", "us"]) == ["eu", "us"]
    assert NotReplicating().targets(["eu", "us"]) == []
