"""The access line's timestamp (shared/logging.py utc_now_iso): what structlog's ISO TimeStamper writes."""
from __future__ import annotations

import datetime
import re

import structlog

from shared.logging import utc_now_iso


def test_the_timestamp_is_utc_iso_8601_with_microseconds_like_structlogs():
    before = datetime.datetime.now(datetime.UTC)
    ours = utc_now_iso()
    theirs = structlog.processors.TimeStamper(fmt="iso", utc=True)(None, "info", {})["timestamp"]
    after = datetime.datetime.now(datetime.UTC)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", ours), ours
    # (isoformat leaves the fraction out in the one microsecond in a million where it is zero)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?Z", theirs), theirs
    parsed = datetime.datetime.fromisoformat(ours.replace("Z", "+00:00"))
    assert before - datetime.timedelta(microseconds=1) <= parsed <= after


def test_each_call_tells_the_time_of_that_call():
    stamps = [utc_now_iso() for _ in range(2000)]
    assert stamps == sorted(stamps)
    assert len(set(stamps)) > 1
