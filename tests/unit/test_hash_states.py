"""Running hashes of uploads kept between PATCH requests (services/gateway/state.py HashStates)."""
from __future__ import annotations

import hashlib
import uuid

from services.gateway.state import HashState, HashStates


def state(data: bytes) -> HashState:
    return HashState(len(data), hashlib.sha256(data))


def test_a_state_is_found_only_at_its_size():
    states = HashStates()
    upload = uuid.uuid4()
    kept = state(b"first chunk")
    states.put(upload, kept)
    assert states.get(upload, len(b"first chunk")) is kept
    # Another process appended a chunk: the size moved on and this hash is stale.
    assert states.get(upload, len(b"first chunk") + 5) is None
    assert states.get(uuid.uuid4(), 11) is None


def test_a_stale_state_is_replaced_by_put():
    states = HashStates()
    upload = uuid.uuid4()
    states.put(upload, state(b"a"))
    newer = state(b"ab")
    states.put(upload, newer)
    assert states.get(upload, 2) is newer and states.get(upload, 1) is None
    assert len(states) == 1


def test_least_recently_used_goes_first_when_full():
    states = HashStates(capacity=2)
    first, second, third = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    states.put(first, state(b"1"))
    states.put(second, state(b"2"))
    assert states.get(first, 1) is not None  # first is now the most recently used
    states.put(third, state(b"3"))
    assert len(states) == 2
    assert states.get(second, 1) is None
    assert states.get(first, 1) is not None and states.get(third, 1) is not None


def test_a_miss_does_not_refresh():
    states = HashStates(capacity=2)
    first, second, third = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    states.put(first, state(b"1"))
    states.put(second, state(b"2"))
    assert states.get(first, 99) is None  # wrong size: not a use
    states.put(third, state(b"3"))
    assert states.get(first, 1) is None and states.get(second, 1) is not None


def test_drop():
    states = HashStates()
    upload = uuid.uuid4()
    states.put(upload, state(b"x"))
    states.drop(upload)
    states.drop(uuid.uuid4())  # dropping what is not there is fine
    assert states.get(upload, 1) is None and len(states) == 0


def test_the_hash_continues_where_it_stopped():
    states = HashStates()
    upload = uuid.uuid4()
    states.put(upload, state(b"hello "))
    found = states.get(upload, 6)
    assert found is not None
    found.hasher.update(b"world")
    assert found.hasher.hexdigest() == hashlib.sha256(b"hello world").hexdigest()
