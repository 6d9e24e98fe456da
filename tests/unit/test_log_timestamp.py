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


def test_the_formatted_second_follows_the_clock(monkeypatch):
    import shared.logging as logging_module

    # (binary fractions: a float of this size holds them exactly)
    clock = iter([1_796_000_000.75, 1_796_000_001.0, 1_796_000_001.25, 1_795_999_999.5])  # the last goes back
    monkeypatch.setattr(logging_module.time, "time", lambda: next(clock))
    assert [utc_now_iso() for _ in range(4)] == [
        "2026-11-30T00:53:20.750000Z", "2026-11-30T00:53:21.000000Z", "2026-11-30T00:53:21.250000Z",
        "2026-11-30T00:53:19.500000Z"]
