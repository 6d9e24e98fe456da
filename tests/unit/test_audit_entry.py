"""A usage-log entry's metadata is always storable as jsonb (shared/model/audit.py)."""
from __future__ import annotations

import json

from shared.model.audit import Entry


def test_nul_and_lone_surrogates_are_written_out_not_sent_to_postgresql():
    entry = Entry("login_failure", metadata={"useragent": "curl\x00/\udc80", "names": ["a\x00", 3], "n": 1})
    stored = entry.args()[8]
    assert "\\u0000" not in stored and "\\udc80" not in stored
    assert json.loads(stored) == {"useragent": "curl\\x00/?", "names": ["a\\x00", 3], "n": 1}


def test_ordinary_and_non_bmp_text_is_kept_as_it_is():
    entry = Entry("pull_repo", metadata={"tag": "v1", "note": "rocket \U0001F680 café"})
    assert json.loads(entry.args()[8]) == {"tag": "v1", "note": "rocket \U0001F680 café"}
