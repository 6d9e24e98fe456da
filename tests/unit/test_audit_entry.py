"""A usage-log entry's metadata is always storable as jsonb (shared/model/audit.py)."""
from __future__ import annotations

import json

from shared.model.audit import Entry


def test_nul_and_lone_surrogates_are_written_out_not_sent_to_postgresql():
    entry = Entry("login_failure", metadata={"useragent": "curl\x00/\udc80", "names": ["a\x00", 3], "n": 1})
    stored = entry.args()[8]
    assert "\\u0000" not in stored and "\\udc80" not in stored
    assert json.loads(stored) == {"useragent": "curl\\x00/?", "names": ["a\\x00", 3], "n": 1}
